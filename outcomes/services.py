"""Queries of the outcomes domain: the metric set of metrics.md, computed in SQL on either engine."""

from __future__ import annotations

from typing import Any

from outcomes.metrics import Dialect, Tables, build_statements, check_breakdown, combine, session_settings
from outcomes.periods import parse_period
from surveys.tables import Organisation, Referral, Response


def table_names() -> Tables:
    """The tables' names as Piccolo knows them (so a renamed table cannot break the raw SQL)."""
    return Tables(
        organisation=Organisation._meta.tablename,
        referral=Referral._meta.tablename,
        response=Response._meta.tablename,
    )


async def compute_metrics(
    period: str, by: list[str] | None = None, provider: str | None = None
) -> dict[str, Any]:
    """Every metric of metrics.md for `period`, for the whole area and each `by` group.

    Returns `{"period": {"code", "start", "end"}, "groups": [{"by": {...}, "metrics": {...}}, ...]}`,
    whole area first. `provider` (an organisation code) restricts everything, groups included, to
    that provider's referrals. Raises ValueError for a bad period, breakdown or unknown provider.
    """
    p = parse_period(period)
    attrs = check_breakdown(by)
    if provider is not None:
        found = await Organisation.exists().where(Organisation.code == provider)
        if not found:
            raise ValueError(f"unknown provider {provider!r}")
    engine = Referral._meta.db
    dialect: Dialect = "sqlite" if engine.engine_type == "sqlite" else "postgres"
    statements = build_statements(dialect, p.start, p.end, attrs, provider, table_names())
    results: dict[str, list[dict[str, Any]]] = {}
    # One read transaction: every statement sees the same data, and the session settings stay local.
    own = engine.current_transaction.get() is None  # inside a caller's transaction: join it
    async with engine.transaction():
        for setting in session_settings(dialect, own_transaction=own):
            await Referral.raw(setting)
        for st in statements:
            for setting in st.settings:
                await Referral.raw(setting)
            results[st.name] = await Referral.raw(st.sql, *st.args)
    return {"period": p.as_dict(), "groups": combine(results, attrs)}
