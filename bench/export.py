"""Benchmark: build the MoJ return (and a provider report, and the CSV) from synthetic metric dicts.

Two sizes: a PCC area's year (~22k referrals, 8 providers, 11 crime groups) and a national-sized one
(~1.2M referrals, 400 providers, 150 crime groups, every breakdown of the default layout). The
synthetic engine's dicts are made before the clock starts, so the figures time the export alone:
disclosure control, workbook building and serialisation. Goal: under 2 s for the PCC year.

    .venv/bin/python bench/export.py            # prints timings; the last line is one JSON object
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exports.csv_export import metrics_to_csv
from exports.moj_return import _breakdown_keys, build_moj_return, load_layout
from exports.provider_report import build_provider_report, quarter_codes
from exports.synthetic import DEFAULT_VALUES, synthetic_result

PERIOD = "2025-26"


def engine(referrals: int, values: dict[str, list[str]]) -> tuple[Callable[[str, list[str]], Any], int]:
    """A precomputed fake engine for the default layout's breakdowns; returns it and its group count."""
    cache: dict[tuple[str, tuple[str, ...]], Any] = {}
    keys = _breakdown_keys(load_layout())
    cache[(PERIOD, ())] = synthetic_result(PERIOD, [], referrals=referrals, values=values)
    groups = 1
    for key in keys:
        cache[(PERIOD, (key,))] = synthetic_result(PERIOD, [key], referrals=referrals, values=values)
        groups += len(cache[(PERIOD, (key,))]["groups"]) - 1
    return (lambda period, by: cache[(period, tuple(by))]), groups


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` runs, and the last result."""
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    pcc_engine, pcc_groups = engine(22_470, {})
    national_values = {
        **DEFAULT_VALUES,
        "provider": [f"P{i:03d}" for i in range(400)],
        "crime_group": [f"crime_{i:03d}" for i in range(150)],
    }
    nat_engine, nat_groups = engine(1_200_000, national_values)

    pcc_s, pcc_bytes = timed(lambda: build_moj_return(pcc_engine, PERIOD, area="PCC area"), 5)
    print(f"MoJ return, PCC year ({pcc_groups} groups): {pcc_s:.3f} s, {len(pcc_bytes):,} bytes")
    nat_s, nat_bytes = timed(lambda: build_moj_return(nat_engine, PERIOD, area="England and Wales"), 3)
    print(f"MoJ return, national ({nat_groups} groups): {nat_s:.3f} s, {len(nat_bytes):,} bytes")

    quarters = {
        q: synthetic_result(q, ["age_band", "sex", "ethnicity", "disability"]) for q in quarter_codes(PERIOD)
    }
    quarters[PERIOD] = synthetic_result(PERIOD, ["age_band", "sex", "ethnicity", "disability"])
    prov_s, _ = timed(lambda: build_provider_report(lambda p, _prov: quarters[p], "P001", PERIOD), 5)
    print(f"Provider report (8 quarters): {prov_s:.3f} s")

    national_csv_input = nat_engine(PERIOD, ["provider"])
    csv_s, text = timed(lambda: metrics_to_csv(national_csv_input), 3)
    print(f"CSV, national by provider: {csv_s:.3f} s, {text.count(chr(10)):,} rows")

    print(
        json.dumps(
            {
                "pcc_moj_return_s": round(pcc_s, 4),
                "national_moj_return_s": round(nat_s, 4),
                "provider_report_s": round(prov_s, 4),
                "national_csv_s": round(csv_s, 4),
                "pcc_groups": pcc_groups,
                "national_groups": nat_groups,
                "pcc_bytes": len(pcc_bytes),
                "national_bytes": len(nat_bytes),
                "goal_pcc_s": 2.0,
                "pcc_within_goal": pcc_s < 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
