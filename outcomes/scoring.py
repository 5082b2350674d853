"""Instrument scoring: SWEMWBS, PHQ-9 / GAD-7, ONS4, the Jacobson & Truax index, Wilson intervals.

Pure functions of plain values (no database), so every rule of shared/domain/brief.md and metrics.md
can be unit-tested on its own. The SQL aggregation in `outcomes.metrics` uses the same tables and
thresholds (imported from here) so the two cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

# --- SWEMWBS -------------------------------------------------------------------------------------

SWEMWBS_ITEMS = 7
SWEMWBS_RAW_MIN = 7
SWEMWBS_RAW_MAX = 35
# The published raw -> metric conversion table (brief.md), raw 7..35 in order.
_SWEMWBS_METRIC_VALUES = (
    7.00, 9.51, 11.25, 12.40, 13.33, 14.08, 14.75, 15.32, 15.84, 16.36, 16.88, 17.43, 17.98, 18.59,
    19.25, 19.98, 20.73, 21.54, 22.35, 23.21, 24.11, 25.03, 26.02, 27.03, 28.13, 29.31, 30.70, 32.55,
    35.00,
)  # fmt: skip
SWEMWBS_METRIC: dict[int, float] = dict(
    zip(range(SWEMWBS_RAW_MIN, SWEMWBS_RAW_MAX + 1), _SWEMWBS_METRIC_VALUES, strict=True)
)
# The same table in hundredths of a point: SQL sums and compares these integers, so SQLite (floats)
# and PostgreSQL (numeric) give bit-identical means and thresholds.
SWEMWBS_METRIC_CENTI: dict[int, int] = {raw: round(v * 100) for raw, v in SWEMWBS_METRIC.items()}
# Meaningful individual change: about 3 metric points (2.77 x SEM, SEM ~1.03).
SWEMWBS_RELIABLE_CHANGE = 3.00
SWEMWBS_RELIABLE_CHANGE_CENTI = 300


def swemwbs_raw(items: Sequence[int | None]) -> int | None:
    """Raw SWEMWBS score (7..35), or None unless all 7 items are answered 1..5 (no imputation)."""
    if len(items) != SWEMWBS_ITEMS:
        raise ValueError(f"SWEMWBS has {SWEMWBS_ITEMS} items, got {len(items)}")
    total = 0
    for item in items:
        if item is None or isinstance(item, bool) or item not in (1, 2, 3, 4, 5):
            return None
        total += item
    return total


def swemwbs_metric(items: Sequence[int | None]) -> float | None:
    """SWEMWBS metric score by the published conversion table, or None when any item is missing."""
    raw = swemwbs_raw(items)
    return None if raw is None else SWEMWBS_METRIC[raw]


Change = Literal["improved", "deteriorated", "no_change"]


def swemwbs_change(baseline: float, exit_: float) -> Change:
    """Reliable change between two metric scores: a rise or fall of 3.00 points or more."""
    # Compare in hundredths: 19.98 - 16.98 is 2.9999999999999982 in binary floating point.
    diff = round(exit_ * 100) - round(baseline * 100)
    if diff >= SWEMWBS_RELIABLE_CHANGE_CENTI:
        return "improved"
    if diff <= -SWEMWBS_RELIABLE_CHANGE_CENTI:
        return "deteriorated"
    return "no_change"


# --- PHQ-9 and GAD-7, as in NHS Talking Therapies ----------------------------------------------

PHQ9_ITEMS = 9
GAD7_ITEMS = 7
# The items' keys in `Response.extra_answers` (the question ids of the phq9 / gad7 instruments).
PHQ9_KEYS: tuple[str, ...] = tuple(f"phq9_{i}" for i in range(1, PHQ9_ITEMS + 1))
GAD7_KEYS: tuple[str, ...] = tuple(f"gad7_{i}" for i in range(1, GAD7_ITEMS + 1))
PHQ9_MAX = 27
GAD7_MAX = 21
PHQ9_CASENESS = 10  # a case at PHQ-9 >= 10
GAD7_CASENESS = 8  # a case at GAD-7 >= 8
PHQ9_RELIABLE_CHANGE = 6
GAD7_RELIABLE_CHANGE = 4


def _items_total(items: Sequence[int | None], count: int, name: str) -> int | None:
    if len(items) != count:
        raise ValueError(f"{name} has {count} items, got {len(items)}")
    # Whole numbers only: True is not 1 and 2.0 is not 2 (answers are the instruments' integer codes),
    # as the SQL of outcomes.metrics reads them.
    if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= 3 for i in items):
        return None
    return sum(i for i in items if i is not None)


def phq9_score(items: Sequence[int | None]) -> int | None:
    """PHQ-9 total (0..27) from 9 items scored 0..3, or None when any item is missing."""
    return _items_total(items, PHQ9_ITEMS, "PHQ-9")


def gad7_score(items: Sequence[int | None]) -> int | None:
    """GAD-7 total (0..21) from 7 items scored 0..3, or None when any item is missing."""
    return _items_total(items, GAD7_ITEMS, "GAD-7")


def _check(value: int, maximum: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ValueError(f"{name} score must be a whole number 0..{maximum}, got {value!r}")


def is_case(phq9: int, gad7: int) -> bool:
    """Caseness: PHQ-9 >= 10 or GAD-7 >= 8."""
    _check(phq9, PHQ9_MAX, "PHQ-9")
    _check(gad7, GAD7_MAX, "GAD-7")
    return phq9 >= PHQ9_CASENESS or gad7 >= GAD7_CASENESS


@dataclass(frozen=True, slots=True)
class TalkingTherapiesOutcome:
    """The NHS Talking Therapies outcome of one pair of PHQ-9 / GAD-7 measurements."""

    case_at_start: bool
    case_at_end: bool
    reliable_improvement: bool
    reliable_deterioration: bool
    recovery: bool
    reliable_recovery: bool


def talking_therapies_outcome(
    phq9_start: int, gad7_start: int, phq9_end: int, gad7_end: int
) -> TalkingTherapiesOutcome:
    """Caseness, reliable improvement / deterioration, recovery and reliable recovery.

    Reliable improvement: PHQ-9 down by 6+ or GAD-7 down by 4+, and (as NHS Talking Therapies counts
    it) neither measure reliably deteriorated (up by 6+ / 4+); a conflicting pair counts as a reliable
    deterioration. Recovery: a case at the start and below both thresholds at the end. Reliable
    recovery: both recovery and reliable improvement.
    """
    start = is_case(phq9_start, gad7_start)
    end = is_case(phq9_end, gad7_end)
    phq_change = phq9_end - phq9_start
    gad_change = gad7_end - gad7_start
    down = phq_change <= -PHQ9_RELIABLE_CHANGE or gad_change <= -GAD7_RELIABLE_CHANGE
    up = phq_change >= PHQ9_RELIABLE_CHANGE or gad_change >= GAD7_RELIABLE_CHANGE
    improvement = down and not up
    recovery = start and not end
    return TalkingTherapiesOutcome(
        case_at_start=start,
        case_at_end=end,
        reliable_improvement=improvement,
        reliable_deterioration=up,
        recovery=recovery,
        reliable_recovery=recovery and improvement,
    )


# --- ONS4 personal wellbeing -------------------------------------------------------------------

Ons4Item = Literal["life_satisfaction", "worthwhile", "happy", "anxious"]


def ons4_band(item: Ons4Item, value: int) -> str:
    """The ONS band of a 0..10 answer: low / medium / high / very_high (anxiety: very_low .. high)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ValueError(f"ONS4 answers are whole numbers 0..10, got {value!r}")
    if item == "anxious":
        # Anxiety runs the other way: a low score is good.
        if value <= 1:
            return "very_low"
        if value <= 3:
            return "low"
        if value <= 5:
            return "medium"
        return "high"
    if item not in ("life_satisfaction", "worthwhile", "happy"):
        raise ValueError(f"unknown ONS4 item {item!r}")
    if value <= 4:
        return "low"
    if value <= 6:
        return "medium"
    if value <= 8:
        return "high"
    return "very_high"


# --- Jacobson & Truax reliable change index -----------------------------------------------------

RCI_CRITICAL = 1.96


def reliable_change_index(before: float, after: float, sd: float, reliability: float) -> float:
    """RC = (after - before) / S_diff with S_diff = SD1 * sqrt(2) * sqrt(1 - r) (Jacobson & Truax)."""
    if sd <= 0:
        raise ValueError(f"reference SD must be positive, got {sd!r}")
    if not 0 <= reliability < 1:
        raise ValueError(f"reliability r must be in [0, 1), got {reliability!r}")
    s_diff = sd * math.sqrt(2) * math.sqrt(1 - reliability)
    return (after - before) / s_diff


def reliable_change(before: float, after: float, sd: float, reliability: float) -> Change:
    """Improved / deteriorated when |RC| > 1.96 (a higher score is better), else no_change."""
    rc = reliable_change_index(before, after, sd, reliability)
    if rc > RCI_CRITICAL:
        return "improved"
    if rc < -RCI_CRITICAL:
        return "deteriorated"
    return "no_change"


# --- Rates with Wilson score intervals ----------------------------------------------------------

WILSON_Z = 1.959964


class Rate(TypedDict):
    """A reported rate: numerator, denominator, percentage 0..100 and its 95% interval (percent)."""

    numerator: int
    denominator: int
    pct: float | None
    ci95: list[float] | None


def wilson_interval(numerator: int, denominator: int, z: float = WILSON_Z) -> tuple[float, float] | None:
    """Wilson score interval for a proportion, as fractions 0..1 (no continuity correction).

    None on a zero denominator: there is no proportion to bound.
    """
    if denominator < 0 or numerator < 0 or numerator > denominator:
        raise ValueError(f"need 0 <= numerator <= denominator, got {numerator}/{denominator}")
    if denominator == 0:
        return None
    n = denominator
    p = numerator / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = (z / (1 + z2 / n)) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Analytically the bound is exactly 0 (1) at 0 (n) successes; float dust (2.8e-17) must not show.
    lo = 0.0 if numerator == 0 else max(0.0, centre - half)
    hi = 1.0 if numerator == n else min(1.0, centre + half)
    return lo, hi


def rate(numerator: int, denominator: int) -> Rate:
    """The rate object of metrics.md: pct and ci95 in percent, unrounded, null on a zero denominator."""
    interval = wilson_interval(numerator, denominator)
    if interval is None:
        return {"numerator": numerator, "denominator": denominator, "pct": None, "ci95": None}
    return {
        "numerator": numerator,
        "denominator": denominator,
        "pct": 100.0 * numerator / denominator,
        "ci95": [100.0 * interval[0], 100.0 * interval[1]],
    }
