"""Exports fed by the metrics engine: every figure is fetched first (the engine is async), then the
pure builders lay it out. Exports never query tables themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exports.csv_export import metrics_to_csv
from exports.moj_return import build_moj_return, required_breakdowns
from exports.provider_report import build_provider_report, required_calls
from outcomes.services import compute_metrics
from settings import get_settings

REACH_BREAKDOWNS = ("age_band", "sex", "ethnicity", "disability")


async def metrics_with_splits(period: str, keys: list[str], provider: str | None = None) -> dict[str, Any]:
    """The whole area followed by each one-key split, in one result (not their cross product)."""
    whole = await compute_metrics(period, [], provider)
    for key in keys:
        split = await compute_metrics(period, [key], provider)
        whole["groups"] += split["groups"][1:]
    return whole


async def moj_return(period: str, layout_path: str | Path | None = None) -> bytes:
    """The MoJ return workbook for a period (layout from the default file or another)."""
    keys = required_breakdowns(layout_path)
    fetched: dict[tuple[str, ...], dict[str, Any]] = {(): await compute_metrics(period, [])}
    for key in keys:
        fetched[(key,)] = await compute_metrics(period, [key])
    settings = get_settings()
    return build_moj_return(
        lambda _period, by: fetched[tuple(by)],
        period,
        layout_path,
        area=settings.area_name,
        contact=settings.contact_email,
        suppression_threshold=settings.suppression_threshold,
    )


async def provider_report(provider: str, period: str) -> bytes:
    """One provider's report: 8 quarters of outcomes against all providers, response rates, reach."""
    fetched: dict[tuple[str, str | None], dict[str, Any]] = {}
    for when, who in required_calls(period, provider):
        if when == period:
            fetched[(when, who)] = await metrics_with_splits(when, list(REACH_BREAKDOWNS), who)
        else:
            fetched[(when, who)] = await compute_metrics(when, [], who)
    return build_provider_report(
        lambda when, who: fetched[(when, who)],
        provider,
        period,
        suppression_threshold=get_settings().suppression_threshold,
    )


async def metrics_csv(period: str, by: list[str], provider: str | None = None) -> str:
    """Any metrics table in tidy form, with disclosure control applied."""
    result = await compute_metrics(period, by, provider)
    return metrics_to_csv(result, suppress=True, threshold=get_settings().suppression_threshold)
