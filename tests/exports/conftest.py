"""Fixtures for the export tests: hand-made metrics dicts in the engine's shape, and fake engines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from exports.definitions import AREAS, RIGHTS, RIGHTS_BANDS, STATUSES
from exports.synthetic import rate, synthetic_result

MetricsDict = dict[str, Any]


def make_metrics(n: int = 200, **overrides: Any) -> MetricsDict:
    """Every metric of metrics.md for one group, derived from ``n`` referrals by fixed fractions.

    Deterministic and readable: referrals n, victims 0.9n, statuses n/7 each (remainder to
    ``referred``), supported n/4, closed n/5, exit responses half of closed, and so on. ``overrides``
    replace single metrics, keyed by their dotted names passed as ``helped_pct__cope`` (``__`` for ``.``).
    """
    m: MetricsDict = {"referrals_received": n, "victims_referred": n * 9 // 10}
    share = n // len(STATUSES)
    for s in STATUSES:
        m[f"referrals_by_status.{s}"] = share
    m["referrals_by_status.referred"] += n - share * len(STATUSES)
    closed = n // 5
    exits = closed // 2
    m.update(victims_supported=n // 4, episodes_closed=closed, exit_responses=exits)
    m["exit_response_rate"] = rate(exits, closed)
    for i, a in enumerate(AREAS):
        helped_n = exits - i
        helped = max(0, helped_n * 2 // 3)
        paired = max(0, exits * 3 // 4)
        improved = paired // 2
        deteriorated = paired // 10
        m[f"helped_n.{a}"] = max(0, helped_n)
        m[f"helped.{a}"] = helped
        m[f"helped_pct.{a}"] = rate(helped, max(0, helped_n))
        m[f"paired_n.{a}"] = paired
        m[f"improved.{a}"] = improved
        m[f"deteriorated.{a}"] = deteriorated
        m[f"no_change.{a}"] = paired - improved - deteriorated
        m[f"improved_pct.{a}"] = rate(improved, paired)
        m[f"mean_change.{a}"] = 0.5 + i / 10 if paired else None
    m["helped_cope_and_recover"] = exits * 7 // 10
    m["helped_cope_and_recover_pct"] = rate(exits * 7 // 10, exits)
    m["answered"] = exits
    m["satisfied"] = exits * 4 // 5
    m["satisfied_pct"] = rate(exits * 4 // 5, exits)
    for r in RIGHTS:
        m[f"rights_received.{r}"] = rate(exits * int(r) // 13, exits)
    for i, b in enumerate(RIGHTS_BANDS):
        den = exits // 4
        m[f"satisfied_pct_by_rights.{b}"] = rate(den * (i + 1) // 5, den)
    paired_sw = exits // 3
    m["paired_n.swemwbs"] = paired_sw
    m["mean_baseline.swemwbs"] = 18.25 if paired_sw else None
    m["mean_exit.swemwbs"] = 21.5 if paired_sw else None
    m["mean_change.swemwbs"] = 3.25 if paired_sw else None
    m["reliable_improvement.swemwbs"] = paired_sw // 2
    m["reliable_deterioration.swemwbs"] = paired_sw // 10
    for key, value in overrides.items():
        m[key.replace("__", ".")] = value
    return m


def make_result(groups: list[tuple[dict[str, str], MetricsDict]], period: str = "2025-26") -> MetricsDict:
    """A metrics-engine result from (by, metrics) pairs; put the whole-area group (``{}``) first."""
    from exports.synthetic import period_bounds

    start, end = period_bounds(period)
    return {
        "period": {"code": period, "start": start, "end": end},
        "groups": [{"by": by, "metrics": metrics} for by, metrics in groups],
    }


class FakeEngine:
    """A stand-in for the metrics engine: (period, by) -> synthetic result, recording its calls."""

    def __init__(self, seed: int = 1, referrals: int = 22_470, values: Mapping[str, list[str]] | None = None):
        self.seed = seed
        self.referrals = referrals
        self.values = values
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self._cache: dict[tuple[str, tuple[str, ...]], MetricsDict] = {}

    def __call__(self, period: str, by: list[str]) -> MetricsDict:
        key = (period, tuple(by))
        self.calls.append(key)
        if key not in self._cache:
            self._cache[key] = synthetic_result(
                period, by, seed=self.seed, referrals=self.referrals, values=self.values
            )
            # Each call is its own draw; make the whole-area group the same in every call, as a real
            # engine's would be.
            whole = synthetic_result(period, [], seed=self.seed, referrals=self.referrals)["groups"][0]
            groups = self._cache[key]["groups"]
            groups[0] = whole
            # A real area always has a few tiny groups; make sure disclosure control has work to do.
            if len(groups) > 3:
                groups[-1]["metrics"] = make_metrics(12)
                groups[-2]["metrics"] = make_metrics(45)
        return self._cache[key]


class FakeProviderEngine:
    """(period, provider or None) -> synthetic result with demographic breakdowns."""

    def __init__(self, keys: tuple[str, ...] = ("age_band", "sex", "ethnicity", "disability")):
        self.keys = keys
        self.calls: list[tuple[str, str | None]] = []
        self._cache: dict[tuple[str, str | None, tuple[str, ...]], MetricsDict] = {}

    def __call__(self, period: str, provider: str | None) -> MetricsDict:
        self.calls.append((period, provider))
        key = (period, provider, self.keys)
        if key not in self._cache:
            referrals = 900 if provider else 22_470
            self._cache[key] = synthetic_result(
                period, self.keys, seed=provider or "all", referrals=referrals
            )
        return self._cache[key]


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def fake_provider_engine() -> FakeProviderEngine:
    return FakeProviderEngine()


@pytest.fixture
def metrics_factory() -> Callable[..., MetricsDict]:
    return make_metrics


@pytest.fixture
def result_factory() -> Callable[..., MetricsDict]:
    return make_result
