"""The statements and the merging of their rows, without a database."""

from __future__ import annotations

from datetime import date

import pytest

from outcomes.metrics import build_statements, combine, metric_names


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
@pytest.mark.parametrize("by", [[], ["provider", "sex"]])
@pytest.mark.parametrize("provider", [None, "VS"])
def test_placeholders_match_arguments(dialect: str, by: list[str], provider: str | None) -> None:
    statements = build_statements(dialect, date(2025, 4, 1), date(2026, 3, 31), by, provider)  # type: ignore[arg-type]
    names = [s.name for s in statements]
    assert names == ["volumes", "victims", "outcomes"]
    for st in statements:
        assert st.sql.count("{}") == len(st.args)
        assert set(st.args) <= {date(2025, 4, 1), date(2026, 3, 31), provider}
        assert ("VS" in st.args) == (provider is not None)
        assert "{" not in st.sql.replace("{}", "")  # nothing else Piccolo would read as a placeholder


def test_dialects_differ_only_in_how_they_pick_and_fence() -> None:
    sqlite = {s.name: s for s in build_statements("sqlite", date(2025, 4, 1), date(2025, 6, 30))}
    pg = {s.name: s for s in build_statements("postgres", date(2025, 4, 1), date(2025, 6, 30))}
    assert "julianday(s.completed_at)" in sqlite["outcomes"].sql and "LATERAL" not in sqlite["outcomes"].sql
    assert "LATERAL" in pg["outcomes"].sql and "julianday" not in pg["outcomes"].sql
    assert pg["victims"].settings == ("SET LOCAL enable_hashagg = off",)
    assert sqlite["victims"].settings == ()


def test_combine_sums_groups_and_takes_distinct_victims_from_their_own_statement() -> None:
    results = {
        "volumes": [
            {"g0": "VS", "received": 3, "closed": 2, "st_referred": 3, "victims_referred": 3},
            {"g0": "ROSA", "received": 1, "closed": 0, "st_referred": 1, "victims_referred": 1},
            {"g0": "BAR", "received": 0, "closed": 0, "st_referred": 0, "victims_referred": 0},
        ],
        "victims": [{"victims_referred": 3, "victims_supported": 1}],
        "outcomes": [{"g0": "VS", "exits": 1, "hn_cope": 1, "hy_cope": 1, "dsum_cope": None}],
    }
    groups = combine(results, ["provider"])
    assert [g["by"] for g in groups] == [{}, {"provider": "BAR"}, {"provider": "ROSA"}, {"provider": "VS"}]
    whole = groups[0]["metrics"]
    assert list(whole) == metric_names()
    assert (whole["referrals_received"], whole["episodes_closed"], whole["exit_responses"]) == (4, 2, 1)
    assert whole["victims_referred"] == 3  # not 3 + 1: a victim counts once in the whole area
    assert whole["exit_response_rate"]["pct"] == 50.0
    bar = groups[1]["metrics"]
    assert bar["victims_referred"] == 0 and bar["exit_responses"] == 0 and bar["mean_change.cope"] is None
