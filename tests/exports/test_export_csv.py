"""Tidy CSV of any metrics dict."""

from __future__ import annotations

import csv
import io
from typing import Any

from exports.csv_export import csv_columns, metrics_to_csv, metrics_to_rows
from exports.definitions import BREAKDOWN_KEYS
from exports.synthetic import synthetic_result


def _read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_columns() -> None:
    result = synthetic_result("2025-26", ["service"])
    assert csv_columns(result) == [
        "period",
        *BREAKDOWN_KEYS,
        "metric",
        "numerator",
        "denominator",
        "value",
        "pct",
        "ci_lo",
        "ci_hi",
    ]


def test_unsuppressed_round_trip_equals_the_input() -> None:
    result = synthetic_result("2025-26-Q2", ["service", "sex"], referrals=5000)
    rows = _read(metrics_to_csv(result, suppress=False))
    assert len(rows) == sum(len(g["metrics"]) for g in result["groups"])
    index = {(r["service"], r["sex"], r["metric"]): r for r in rows}
    for g in result["groups"]:
        by = g["by"]
        for name, value in g["metrics"].items():
            row = index[(by.get("service", ""), by.get("sex", ""), name)]
            assert row["period"] == "2025-26-Q2"
            if isinstance(value, dict):
                assert int(row["numerator"]) == value["numerator"]
                assert int(row["denominator"]) == value["denominator"]
                if value["pct"] is None:
                    assert row["pct"] == row["ci_lo"] == ""
                else:
                    assert float(row["pct"]) == value["pct"] == float(row["value"])
                    assert [float(row["ci_lo"]), float(row["ci_hi"])] == value["ci95"]
            elif value is None:
                assert row["value"] == ""
            elif isinstance(value, float):
                assert float(row["value"]) == value
            else:
                assert int(row["value"]) == value


def test_suppressed_by_default() -> None:
    result = synthetic_result("2025-26", ["crime_group", "ethnicity"], referrals=2000, seed=3)
    rows = _read(metrics_to_csv(result))
    below = [r for r in rows if r["crime_group"] or r["ethnicity"]]
    assert any(r["value"] == "[c]" for r in below)
    for r in below:
        for col in ("value", "numerator", "denominator"):
            if r[col] not in ("", "[c]") and r["pct"] == "" and "." not in r[col]:
                assert not 1 <= int(r[col]) <= 4, r


def test_extra_keys_and_formula_text(result_factory: Any, metrics_factory: Any) -> None:
    evil = "=cmd|' /C calc'!A0"
    result = result_factory(
        [({}, metrics_factory(100, mean_change__cope=-0.5)), ({"region": evil}, metrics_factory(100))]
    )
    text = metrics_to_csv(result)
    header = text.splitlines()[0].split(",")
    assert header[len(BREAKDOWN_KEYS) + 1] == "region"
    rows = _read(text)
    assert rows[-1]["region"] == "'" + evil
    # A negative number is a number, not a formula: no quote.
    mean = next(r for r in rows if r["metric"] == "mean_change.cope" and not r["region"])
    assert mean["value"] == "-0.5"
    assert next(metrics_to_rows(result))["period"] == "2025-26"
