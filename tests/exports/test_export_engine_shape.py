"""The exports accept what the real engine shapes (outcomes.metrics.shape_metrics), null groups too.

Uses only the engine's pure shaping function on made-up aggregate rows: no database.
"""

from __future__ import annotations

import random
from io import BytesIO
from typing import Any

import pytest
from openpyxl import load_workbook

from exports.csv_export import metrics_to_csv
from exports.definitions import AREAS, RIGHTS
from exports.moj_return import render_moj_return, required_breakdowns
from exports.provider_report import build_provider_report, required_calls
from exports.workbook import to_bytes

metrics_module = pytest.importorskip("outcomes.metrics")


def _row(rng: random.Random, n: int) -> dict[str, Any]:
    """An aggregate row as the engine's SQL returns it (column names of outcomes.metrics)."""
    closed = n // 5
    exits = rng.randint(0, closed)
    row: dict[str, Any] = {"received": n, "victims_referred": n - n // 10, "closed": closed, "exits": exits}
    row["victims_supported"] = n // 4
    for s in ("referred", "contacted", "declined", "uncontactable", "out_of_scope", "supported", "closed"):
        row[f"st_{s}"] = n // 7
    for a in AREAS:
        hn = rng.randint(0, exits)
        pn = rng.randint(0, exits)
        up = rng.randint(0, pn)
        row.update({f"hn_{a}": hn, f"hy_{a}": rng.randint(0, hn), f"pn_{a}": pn, f"up_{a}": up})
        row[f"down_{a}"] = rng.randint(0, pn - up)
        row[f"dsum_{a}"] = rng.randint(-pn, 2 * pn) if pn else None
    row.update(
        hcr_n=exits, hcr=rng.randint(0, exits), sat_n=exits, sat_y=rng.randint(0, exits), rights_n=exits
    )
    for r in RIGHTS:
        row[f"right_{r}"] = rng.randint(0, exits)
    for i in range(4):
        row[f"band{i}_n"] = exits // 4
        row[f"band{i}_y"] = rng.randint(0, exits // 4)
    sw = rng.randint(0, exits)
    row.update(sw_n=sw, sw_bsum=1800 * sw, sw_xsum=2050 * sw, sw_up=sw // 3, sw_down=sw // 20)
    return row


def _engine(period: str, by: list[str]) -> dict[str, Any]:
    rng = random.Random(f"{period}{by}")
    shape = metrics_module.shape_metrics
    groups = [{"by": {}, "metrics": shape(_row(rng, 20_000))}]
    if by:
        values: list[Any] = ["a", "b", "c", None]  # the engine returns null for an unrecorded value
        sizes = [12_000, 7_900, 60, 40]
        groups += [
            {"by": {by[0]: v}, "metrics": shape(_row(rng, n))} for v, n in zip(values, sizes, strict=True)
        ]
    return {"period": {"code": period, "start": "2025-04-01", "end": "2026-03-31"}, "groups": groups}


def test_moj_return_from_engine_shaped_dicts() -> None:
    wb, sources = render_moj_return(_engine, "2025-26", area="Test area")
    book = load_workbook(BytesIO(to_bytes(wb)))
    labels = [c.value for c in book["Demographics"]["A"]]
    assert "Not recorded" in labels
    assert len(sources) > 200
    assert required_breakdowns()[:2] == ["service", "provider"]
    dq = book["Data quality"]
    rows = {dq.cell(r, 1).value: dq.cell(r, 2).value for r in range(1, dq.max_row + 1)}
    # The null group is the "not recorded" share of the data-quality sheet (40 referrals: shown).
    assert rows["Age band"] == 40


def test_provider_report_and_csv_from_engine_shaped_dicts() -> None:
    def get(period: str, provider: str | None) -> dict[str, Any]:
        return _engine(period, ["sex"])

    assert len(required_calls("2025-26-Q3", "P1")) == 16
    assert len(required_calls("2025-26", "P1")) == 18
    assert build_provider_report(get, "P1", "2025-26")[:2] == b"PK"
    text = metrics_to_csv(_engine("2025-26", ["sex"]))
    assert ",[x]," in text
