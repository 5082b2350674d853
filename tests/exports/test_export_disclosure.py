"""Disclosure control: primary and secondary suppression, rates, means, themes (metrics.md)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exports.disclosure import (
    SUPPRESSED,
    _solve,
    is_suppressed,
    published_numbers,
    suppress_count,
    suppress_metrics,
    suppress_table,
    themes_visible,
)
from exports.synthetic import rate, synthetic_result

C = SUPPRESSED


# -- plain tables --------------------------------------------------------------------------------------


def test_counts_one_to_threshold_are_hidden_zero_stays() -> None:
    assert [suppress_count(v) for v in (0, 1, 4, 5, None)] == [0, C, C, 5, None]
    assert suppress_count(7, threshold=7) == C


def test_primary_only_without_totals() -> None:
    t = suppress_table([[3, 10], [0, 5]])
    assert t.cells == [[C, 10], [0, 5]]
    assert t.secondary == set()


def test_secondary_hides_next_smallest_in_row_and_column() -> None:
    t = suppress_table([[3, 10, 20], [5, 6, 7]], row_totals=[33, 18], col_totals=[8, 16, 27])
    # 3 is primary; its row then loses 10 (next smallest), its column 5; 10's column then loses 6.
    assert t.cells == [[C, C, 20], [C, C, 7]]
    assert t.secondary == {(0, 1), (1, 0), (1, 1)}
    assert t.row_totals == [33, 18] and t.col_totals == [8, 16, 27]


def test_secondary_prefers_a_nonzero_cell() -> None:
    # Hiding the 0 would leave the hidden pair summing to 3: no protection at all.
    t = suppress_table([[3, 0, 100]], row_totals=[103])
    assert t.cells == [[C, 0, C]]


def test_hidden_total_needs_no_secondary() -> None:
    t = suppress_table([[2, 0, 0]], row_totals=[2])
    assert t.cells == [[C, 0, 0]] and t.row_totals == [C]


def test_exempt_totals_stay_and_single_cell_line_is_reported_by_total() -> None:
    t = suppress_table([[2, 30]], row_totals=[32], col_totals=[2, 30], exempt_totals=True)
    assert t.col_totals == [2, 30]
    assert t.cells == [[C, C]]


def test_grand_total_protects_hidden_row_totals() -> None:
    t = suppress_table([[1, 0], [20, 30]], row_totals=[1, 50], col_totals=[21, 30], grand_total=51)
    # Row total 1 is primary; grand total 51 - 50 would give it back, so 50 hides as well.
    assert t.row_totals == [C, C]


def test_ragged_table_rejected() -> None:
    with pytest.raises(ValueError):
        suppress_table([[1, 2], [3]])


def test_themes_visible_needs_five_distinct_victims() -> None:
    assert themes_visible({"waiting": 5, "police": 4, "housing": 12}) == ["waiting", "housing"]
    assert themes_visible({"a": 3}, min_victims=3) == ["a"]


# -- property-based ------------------------------------------------------------------------------------

tables = st.integers(min_value=1, max_value=6).flatmap(
    lambda cols: st.lists(
        st.lists(st.integers(min_value=0, max_value=40), min_size=cols, max_size=cols), min_size=1, max_size=7
    )
)


def _lines(cells: list[list[Any]], rows: list[Any] | None, cols: list[Any] | None):
    if rows is not None:
        for r, row in enumerate(cells):
            yield row, rows[r]
    if cols is not None:
        for c in range(len(cells[0])):
            yield [row[c] for row in cells], cols[c]


@settings(max_examples=300, deadline=None)
@given(
    cells=tables,
    threshold=st.integers(min_value=1, max_value=7),
    with_rows=st.booleans(),
    with_cols=st.booleans(),
    exempt=st.booleans(),
)
def test_no_small_count_shown_and_nothing_derivable(
    cells: list[list[int]], threshold: int, with_rows: bool, with_cols: bool, exempt: bool
) -> None:
    row_totals = [sum(r) for r in cells] if with_rows else None
    col_totals = [sum(c) for c in zip(*cells, strict=True)] if with_cols else None
    t = suppress_table(cells, row_totals, col_totals, threshold, exempt_totals=exempt)

    shown = [v for row in t.cells for v in row if not is_suppressed(v)]
    shown += [v for v in (t.row_totals or []) + (t.col_totals or []) if not is_suppressed(v) and not exempt]
    assert not [v for v in shown if 1 <= v <= threshold]
    # Shown cells are unchanged.
    for r, row in enumerate(t.cells):
        for c, v in enumerate(row):
            assert is_suppressed(v) or v == cells[r][c]

    for members, total in _lines(t.cells, t.row_totals, t.col_totals):
        if is_suppressed(total):
            continue
        hidden = [m for m in members if is_suppressed(m)]
        if len(members) == 1 and hidden and exempt:
            # A one-cell line equals its exempt total: nothing can protect it (whole-area figure).
            continue
        # Exactly one hidden member next to a shown total is recovered by subtraction.
        assert len(hidden) != 1


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(st.integers(0, 30), st.integers(0, 12), min_size=3, max_size=12),
    data=st.data(),
)
def test_solver_lines_are_closed(values: dict[int, int], data: st.DataObject) -> None:
    keys = sorted(values)
    lines = []
    for _ in range(data.draw(st.integers(0, 5))):
        members = data.draw(st.lists(st.sampled_from(keys), min_size=2, max_size=len(keys) - 1, unique=True))
        rest = [k for k in keys if k not in members]
        total = data.draw(st.sampled_from(rest)) if rest else None
        lines.append((members, total))
    hidden = _solve(values, lines, 4)
    assert all(not 1 <= values[k] <= 4 for k in keys if k not in hidden)
    for members, total in lines:
        if total is not None and total not in hidden:
            assert sum(m in hidden for m in members) != 1


# -- the metrics dict ----------------------------------------------------------------------------------


def test_whole_area_untouched_and_groups_suppressed(metrics_factory: Any, result_factory: Any) -> None:
    whole = metrics_factory(400, referrals_by_status__declined=3)
    small = metrics_factory(30)  # closed 6, exits 3: tiny counts and denominators
    big = metrics_factory(370)
    result = result_factory([({}, whole), ({"service": "sav"}, small), ({"service": "general"}, big)])
    out = suppress_metrics(result)
    assert out["groups"][0]["metrics"] == whole
    assert out["period"] == result["period"]
    s = out["groups"][1]["metrics"]
    assert s["exit_responses"] == C  # 3
    assert s["exit_response_rate"]["pct"] == C and s["exit_response_rate"]["ci95"] == C
    assert s["exit_response_rate"]["denominator"] == 6  # 6 is shown, only its percentage is not
    assert s["mean_change.cope"] == C  # paired 2 < 10
    assert s["mean_baseline.swemwbs"] == C  # paired 1
    # The rate's numerator and the count it repeats are one decision.
    assert s["helped.cope"] == s["helped_pct.cope"]["numerator"] == C
    # Column secondary: exits 3 hidden for sav, so general's 37 hides too (total 40 shown).
    assert out["groups"][2]["metrics"]["exit_responses"] == C
    # Input not mutated.
    assert result["groups"][1]["metrics"]["exit_responses"] == 3


def test_status_row_adds_to_referrals(metrics_factory: Any, result_factory: Any) -> None:
    g = metrics_factory(100, referrals_by_status__declined=2, referrals_by_status__referred=18)
    result = result_factory([({}, metrics_factory(1000)), ({"sex": "female"}, g)])
    m = suppress_metrics(result)["groups"][1]["metrics"]
    statuses = [v for k, v in m.items() if k.startswith("referrals_by_status.")]
    assert m["referrals_received"] == 100
    assert statuses.count(C) >= 2


def test_rate_with_shown_denominator_hides_pct_when_numerator_hidden(
    metrics_factory: Any, result_factory: Any
) -> None:
    g = metrics_factory(200, satisfied=3, satisfied_pct=rate(3, 20))
    result = result_factory([({}, metrics_factory(2000)), ({"sex": "male"}, g), ({"sex": "female"}, g)])
    m = suppress_metrics(result)["groups"][1]["metrics"]
    # 3 of 20 = 15%: with 20 shown, 15% gives the 3 back.
    assert m["satisfied_pct"]["numerator"] == C
    assert m["satisfied_pct"]["pct"] == C


def test_null_mean_and_zero_denominator_stay_null(metrics_factory: Any, result_factory: Any) -> None:
    g = metrics_factory(
        200, paired_n__swemwbs=0, mean_change__swemwbs=None, answered=0, satisfied=0, satisfied_pct=rate(0, 0)
    )
    result = result_factory([({}, metrics_factory(2000)), ({"sex": "male"}, g), ({"sex": "female"}, g)])
    m = suppress_metrics(result)["groups"][1]["metrics"]
    assert m["mean_change.swemwbs"] is None
    assert m["satisfied_pct"] == {"numerator": 0, "denominator": 0, "pct": None, "ci95": None}


def test_provider_whole_group_suppressed_when_not_exempt(metrics_factory: Any, result_factory: Any) -> None:
    out = suppress_metrics(result_factory([({}, metrics_factory(20))]), whole_exempt=False)
    m = out["groups"][0]["metrics"]
    assert m["referrals_received"] == 20 and m["exit_responses"] == C


@pytest.mark.parametrize("seed", range(5))
def test_synthetic_results_publish_no_small_counts(seed: int) -> None:
    result = synthetic_result("2025-26", ["service", "crime_group", "ethnicity"], seed=seed, referrals=3000)
    out = suppress_metrics(result)
    hidden = 0
    for i, name, part, value in published_numbers(out):
        if i == 0:
            continue
        if part in ("value", "numerator", "denominator") and isinstance(value, int):
            assert not 1 <= value <= 4, (i, name, part, value)
    for g in out["groups"][1:]:
        for v in g["metrics"].values():
            hidden += v == C or (isinstance(v, dict) and v.get("pct") == C)
            if isinstance(v, dict) and isinstance(v.get("pct"), float):
                assert v["denominator"] >= 10
    assert hidden > 0
    # Columns across each breakdown never have exactly one [c] (whole-area totals are shown).
    for key in ("service", "crime_group", "ethnicity"):
        groups = [g["metrics"] for g in out["groups"] if set(g["by"]) == {key}]
        for name, v in out["groups"][0]["metrics"].items():
            if isinstance(v, int):
                assert sum(g[name] == C for g in groups) != 1, (key, name)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(min_value=0, max_value=15), min_size=7, max_size=7), min_size=1, max_size=6)
)
def test_metrics_dict_statuses_never_derivable(groups: list[list[int]]) -> None:
    """Random breakdowns of referrals by status: no [c] recoverable from a row or column total."""
    statuses = ["referred", "contacted", "declined", "uncontactable", "out_of_scope", "supported", "closed"]

    def metrics(parts: list[int]) -> dict[str, int]:
        m = {f"referrals_by_status.{s}": v for s, v in zip(statuses, parts, strict=True)}
        m["referrals_received"] = sum(parts)
        return m

    whole = [sum(col) for col in zip(*groups, strict=True)]
    result = {
        "groups": [{"by": {}, "metrics": metrics(whole)}]
        + [{"by": {"sex": f"s{i}"}, "metrics": metrics(g)} for i, g in enumerate(groups)]
    }
    out = [g["metrics"] for g in suppress_metrics(result)["groups"][1:]]
    for m in out:
        assert not [v for v in m.values() if isinstance(v, int) and 1 <= v <= 4]
        if m["referrals_received"] != C:
            assert sum(m[f"referrals_by_status.{s}"] == C for s in statuses) != 1
    if len(out) > 1:
        for name in out[0]:
            assert sum(m[name] == C for m in out) != 1, name
