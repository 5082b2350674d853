"""Synthetic metrics-engine results, shaped like ``outcomes``' output, for tests, benchmarks and demos.

Nothing here is real data and nothing in a production path imports it. The figures are only loosely
coherent (a breakdown's groups add up to the whole for referrals, other metrics are drawn per group),
and the weights leave a long tail of small groups so that disclosure control has work to do.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from exports.definitions import AREAS, RIGHTS, RIGHTS_BANDS, STATUSES

Z95 = 1.959964

DEFAULT_VALUES: dict[str, list[str]] = {
    "provider": ["VS01", "ROSA", "SAFE", "BARN", "REFU", "HATE", "ROAD", "CYBR"],
    "service": ["general", "sav", "cse", "da", "hate", "other"],
    "crime_group": [
        "violence",
        "sexual",
        "burglary",
        "robbery",
        "theft",
        "criminal_damage",
        "fraud",
        "stalking_harassment",
        "hate",
        "road",
        "other",
    ],
    "age_band": ["0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"],
    "sex": ["female", "male", "other", "unknown"],
    "ethnicity": ["asian", "black", "mixed", "white", "other", "unknown"],
    "disability": ["yes", "no", "unknown"],
    "source": ["police", "self", "agency", "other"],
    "domestic_abuse": ["yes", "no"],
    "hate_crime": ["yes", "no"],
    "repeat_victim": ["yes", "no", "unknown"],
}


def wilson(numerator: int, denominator: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score 95% interval in percent (no continuity correction); None on a zero denominator."""
    if denominator <= 0:
        return None
    p = numerator / denominator
    z2 = z * z
    centre = (p + z2 / (2 * denominator)) / (1 + z2 / denominator)
    half = z * math.sqrt(p * (1 - p) / denominator + z2 / (4 * denominator**2)) / (1 + z2 / denominator)
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    """A rate object as the engine returns it: pct 0-100 unrounded, ci95 Wilson; null on zero."""
    ci = wilson(numerator, denominator)
    return {
        "numerator": numerator,
        "denominator": denominator,
        "pct": 100 * numerator / denominator if denominator else None,
        "ci95": list(ci) if ci is not None else None,
    }


def _part(rng: random.Random, n: int, lo: float, hi: float) -> int:
    return max(0, min(n, round(n * rng.uniform(lo, hi))))


def _split(rng: random.Random, n: int, k: int, skew: float = 1.2) -> list[int]:
    """Split n into k parts with a long tail (Pareto weights), so some parts are tiny or zero."""
    weights = [rng.paretovariate(skew) for _ in range(k)]
    total = sum(weights)
    parts = [int(n * w / total) for w in weights]
    for i in rng.sample(range(k), k)[: n - sum(parts)]:
        parts[i] += 1
    return parts


def group_metrics(rng: random.Random, referrals: int) -> dict[str, Any]:
    """Every metric of metrics.md for one group with ``referrals`` referrals received."""
    m: dict[str, Any] = {"referrals_received": referrals}
    m["victims_referred"] = _part(rng, referrals, 0.85, 0.97)
    for status, n in zip(STATUSES, _split(rng, referrals, len(STATUSES), 2.0), strict=True):
        m[f"referrals_by_status.{status}"] = n
    m["victims_supported"] = _part(rng, referrals, 0.12, 0.3)
    closed = _part(rng, referrals, 0.1, 0.2)
    exits = _part(rng, closed, 0.2, 0.6)
    m["episodes_closed"] = closed
    m["exit_responses"] = exits
    m["exit_response_rate"] = rate(exits, closed)
    for area in AREAS:
        helped_n = _part(rng, exits, 0.7, 1.0)
        helped = _part(rng, helped_n, 0.45, 0.85)
        paired = _part(rng, exits, 0.5, 0.9)
        improved = _part(rng, paired, 0.3, 0.6)
        deteriorated = _part(rng, paired - improved, 0.0, 0.3)
        m[f"helped_n.{area}"] = helped_n
        m[f"helped.{area}"] = helped
        m[f"helped_pct.{area}"] = rate(helped, helped_n)
        m[f"paired_n.{area}"] = paired
        m[f"improved.{area}"] = improved
        m[f"deteriorated.{area}"] = deteriorated
        m[f"no_change.{area}"] = paired - improved - deteriorated
        m[f"improved_pct.{area}"] = rate(improved, paired)
        m[f"mean_change.{area}"] = rng.uniform(-0.3, 1.4) if paired else None
    either_n = _part(rng, exits, 0.8, 1.0)
    either = _part(rng, either_n, 0.5, 0.85)
    m["helped_cope_and_recover"] = either
    m["helped_cope_and_recover_pct"] = rate(either, either_n)
    answered = _part(rng, exits, 0.6, 0.95)
    satisfied = _part(rng, answered, 0.6, 0.9)
    m["answered"] = answered
    m["satisfied"] = satisfied
    m["satisfied_pct"] = rate(satisfied, answered)
    rights_n = _part(rng, exits, 0.5, 0.85)
    for r in RIGHTS:
        m[f"rights_received.{r}"] = rate(_part(rng, rights_n, 0.1, 0.95), rights_n)
    band_n = _split(rng, answered, len(RIGHTS_BANDS), 3.0)
    for band, n in zip(RIGHTS_BANDS, band_n, strict=True):
        m[f"satisfied_pct_by_rights.{band}"] = rate(_part(rng, n, 0.4, 0.95), n)
    paired_sw = _part(rng, exits, 0.2, 0.5)
    m["paired_n.swemwbs"] = paired_sw
    base = rng.uniform(16, 21)
    change = rng.uniform(0.5, 4.0)
    m["mean_baseline.swemwbs"] = base if paired_sw else None
    m["mean_exit.swemwbs"] = base + change if paired_sw else None
    m["mean_change.swemwbs"] = change if paired_sw else None
    rel_up = _part(rng, paired_sw, 0.2, 0.5)
    m["reliable_improvement.swemwbs"] = rel_up
    m["reliable_deterioration.swemwbs"] = _part(rng, paired_sw - rel_up, 0.0, 0.15)
    return m


def period_bounds(period: str) -> tuple[str, str]:
    """Start and end dates of a financial-year period code (``2025-26``, ``-H1``, ``-Q3``) or a range."""
    if ".." in period:
        start, end = period.split("..")
        return start, end
    year = int(period[:4])
    suffix = period[8:]
    spans = {
        "": ((year, 4, 1), (year + 1, 3, 31)),
        "H1": ((year, 4, 1), (year, 9, 30)),
        "H2": ((year, 10, 1), (year + 1, 3, 31)),
        "Q1": ((year, 4, 1), (year, 6, 30)),
        "Q2": ((year, 7, 1), (year, 9, 30)),
        "Q3": ((year, 10, 1), (year, 12, 31)),
        "Q4": ((year + 1, 1, 1), (year + 1, 3, 31)),
    }
    (y1, m1, d1), (y2, m2, d2) = spans[suffix.lstrip("-")]
    return f"{y1:04d}-{m1:02d}-{d1:02d}", f"{y2:04d}-{m2:02d}-{d2:02d}"


def synthetic_result(
    period: str,
    by: Sequence[str] = (),
    *,
    seed: int | str = 0,
    referrals: int = 22_470,
    values: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """A metrics-engine result for ``period`` split by each key of ``by`` (one breakdown per key).

    Same (period, by, seed) gives the same dict. ``values`` overrides the attribute values per key,
    e.g. 300 providers for a national-sized run.
    """
    vals = {**DEFAULT_VALUES, **(values or {})}
    rng = random.Random(f"{seed}|{period}|{referrals}")
    start, end = period_bounds(period)
    groups: list[dict[str, Any]] = [{"by": {}, "metrics": group_metrics(rng, referrals)}]
    for key in by:
        names = list(vals[key])
        for name, n in zip(names, _split(rng, referrals, len(names)), strict=True):
            groups.append({"by": {key: name}, "metrics": group_metrics(rng, n)})
    return {"period": {"code": period, "start": start, "end": end}, "groups": groups}
