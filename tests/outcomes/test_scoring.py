"""Pure scoring rules: SWEMWBS, PHQ-9 / GAD-7, ONS4, the RCI and Wilson rates."""

from __future__ import annotations

import math

import pytest

from outcomes import scoring as s


def test_swemwbs_table_ends_and_length() -> None:
    assert len(s.SWEMWBS_METRIC) == 29
    assert s.SWEMWBS_METRIC[7] == 7.00
    assert s.SWEMWBS_METRIC[8] == 9.51
    assert s.SWEMWBS_METRIC[21] == 19.25
    assert s.SWEMWBS_METRIC[22] == 19.98
    assert s.SWEMWBS_METRIC[35] == 35.00
    assert s.SWEMWBS_METRIC_CENTI[34] == 3255
    values = list(s.SWEMWBS_METRIC.values())
    assert values == sorted(values)


def test_swemwbs_metric_needs_all_seven_items_in_range() -> None:
    assert s.swemwbs_metric([1] * 7) == 7.00
    assert s.swemwbs_metric([5] * 7) == 35.00
    assert s.swemwbs_metric([3, 3, 3, 3, 3, 3, 3]) == 19.25
    assert s.swemwbs_metric([4, 3, 3, 3, 3, 3, 3]) == 19.98
    assert s.swemwbs_metric([3, 3, 3, 3, 3, 3, None]) is None  # no imputation
    assert s.swemwbs_metric([3, 3, 3, 3, 3, 3, 0]) is None
    assert s.swemwbs_metric([3, 3, 3, 3, 3, 3, 6]) is None
    with pytest.raises(ValueError, match="7 items"):
        s.swemwbs_metric([3] * 6)


def test_swemwbs_reliable_change_is_three_points_inclusive() -> None:
    assert s.swemwbs_change(16.98, 19.98) == "improved"  # exactly 3.00, despite float dust
    assert s.swemwbs_change(19.98, 16.98) == "deteriorated"
    assert s.swemwbs_change(17.43, 20.42) == "no_change"
    assert s.swemwbs_change(20.0, 20.0) == "no_change"


def test_phq9_gad7_scores() -> None:
    assert s.phq9_score([3] * 9) == 27
    assert s.gad7_score([3] * 7) == 21
    assert s.phq9_score([3] * 8 + [None]) is None
    assert s.gad7_score([4] + [0] * 6) is None
    with pytest.raises(ValueError):
        s.phq9_score([1] * 7)


def test_caseness_thresholds() -> None:
    assert s.is_case(10, 0)
    assert not s.is_case(9, 7)
    assert s.is_case(0, 8)
    with pytest.raises(ValueError):
        s.is_case(28, 0)
    with pytest.raises(ValueError):
        s.is_case(0, 22)


def test_talking_therapies_recovery_and_reliable_recovery() -> None:
    out = s.talking_therapies_outcome(16, 12, 8, 6)  # case -> not case, PHQ down 8, GAD down 6
    assert out.case_at_start and not out.case_at_end
    assert out.reliable_improvement and out.recovery and out.reliable_recovery
    small = s.talking_therapies_outcome(10, 5, 9, 5)  # recovered, but by 1 point only
    assert small.recovery and not small.reliable_improvement and not small.reliable_recovery
    gad_only = s.talking_therapies_outcome(12, 12, 11, 8)  # GAD down 4 counts; still a case
    assert gad_only.reliable_improvement and not gad_only.recovery
    phq5 = s.talking_therapies_outcome(12, 5, 7, 5)  # PHQ down 5 is not reliable
    assert not phq5.reliable_improvement and phq5.recovery
    not_case = s.talking_therapies_outcome(9, 7, 2, 1)  # never a case: no recovery to make
    assert not not_case.recovery and not_case.reliable_improvement
    worse = s.talking_therapies_outcome(5, 3, 11, 7)
    assert worse.reliable_deterioration and not worse.reliable_improvement
    mixed = s.talking_therapies_outcome(20, 5, 14, 9)  # PHQ down 6, GAD up 4: NHS counts deterioration
    assert mixed.reliable_deterioration and not mixed.reliable_improvement


def test_ons4_bands() -> None:
    assert [s.ons4_band("happy", v) for v in (0, 4, 5, 6, 7, 8, 9, 10)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "very_high",
        "very_high",
    ]
    assert [s.ons4_band("anxious", v) for v in (0, 1, 2, 3, 4, 5, 6, 10)] == [
        "very_low",
        "very_low",
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    with pytest.raises(ValueError):
        s.ons4_band("happy", 11)
    with pytest.raises(ValueError):
        s.ons4_band("sleepy", 3)  # type: ignore[arg-type]


def test_jacobson_truax_index() -> None:
    # SD 5, r 0.8: S_diff = 5 * sqrt(2) * sqrt(0.2) = 3.1623
    assert s.reliable_change_index(10, 20, 5, 0.8) == pytest.approx(10 / (5 * math.sqrt(2) * math.sqrt(0.2)))
    s_diff = 5 * math.sqrt(2) * math.sqrt(0.2)
    assert s.reliable_change(10, 10 + 1.97 * s_diff, 5, 0.8) == "improved"
    assert s.reliable_change(10, 10 + 1.95 * s_diff, 5, 0.8) == "no_change"
    assert s.reliable_change(10, 10 - 1.97 * s_diff, 5, 0.8) == "deteriorated"
    with pytest.raises(ValueError):
        s.reliable_change_index(1, 2, 0, 0.5)
    with pytest.raises(ValueError):
        s.reliable_change_index(1, 2, 1, 1.0)


def test_wilson_known_values() -> None:
    # 8 of 10: the textbook Wilson interval is 0.4902 .. 0.9433.
    r = s.rate(8, 10)
    assert r["numerator"] == 8 and r["denominator"] == 10
    assert r["pct"] == pytest.approx(80.0)
    assert r["ci95"] is not None
    assert r["ci95"][0] == pytest.approx(49.016, abs=1e-3)
    assert r["ci95"][1] == pytest.approx(94.332, abs=1e-3)
    lo, hi = s.wilson_interval(0, 5) or (None, None)
    assert lo == 0.0 and hi == pytest.approx(0.43448, abs=1e-5)
    lo, hi = s.wilson_interval(5, 5) or (None, None)
    assert hi == 1.0 and lo == pytest.approx(0.56552, abs=1e-5)


def test_rate_zero_denominator_is_null() -> None:
    assert s.rate(0, 0) == {"numerator": 0, "denominator": 0, "pct": None, "ci95": None}
    with pytest.raises(ValueError):
        s.rate(3, 2)
