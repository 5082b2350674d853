"""The MoJ return: every published figure equals the engine's, suppressed where it must be, and the
workbook has the craft the return needs (styles, frozen headers, protection, charts, definitions)."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections import defaultdict
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from exports.definitions import METRIC_DEFINITIONS
from exports.disclosure import SUPPRESSED
from exports.moj_return import LayoutError, build_moj_return, load_layout, render_moj_return
from exports.workbook import CellSource, to_bytes

C = SUPPRESSED
PCT_FIELDS = {"pct", "ci_lo", "ci_hi"}


def _raw_metrics(engine: Any, period: str, by: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    if not by:
        return engine(period, [])["groups"][0]["metrics"]
    ((key, value),) = by
    for g in engine(period, [key])["groups"]:
        if g["by"] == {key: value}:
            return g["metrics"]
    raise AssertionError(f"no group {by}")


def expected(metrics: dict[str, Any], whole: dict[str, Any], src: CellSource) -> Any:
    """The figure a cell should show, as a spreadsheet stores it (percentages as fractions)."""
    value = metrics.get(src.metric)
    if src.field == "share":
        return value / whole[src.metric]
    if isinstance(value, dict):
        if src.field in ("numerator", "denominator"):
            return value[src.field]
        if src.field == "pct":
            return None if value["pct"] is None else value["pct"] / 100
        ci = value["ci95"]
        return None if ci is None else ci[0 if src.field == "ci_lo" else 1] / 100
    return value


@pytest.fixture
def built(fake_engine: Any) -> tuple[Any, list[CellSource], Any]:
    wb, sources = render_moj_return(
        fake_engine,
        "2025-26",
        area="Warwickshire",
        contact="returns@opcc.example",
        generated_at=dt.datetime(2026, 4, 20, 9, 30, tzinfo=dt.UTC),
    )
    data = to_bytes(wb)
    return load_workbook(BytesIO(data)), sources, data


def test_every_figure_matches_the_engine(built: Any, fake_engine: Any) -> None:
    wb, sources, _ = built
    whole = _raw_metrics(fake_engine, "2025-26", ())
    assert len(sources) > 300
    hidden = 0
    for src in sources:
        cell = wb[src.sheet][src.coordinate]
        want = expected(_raw_metrics(fake_engine, "2025-26", src.by), whole, src)
        if cell.value == C:
            assert src.by, f"whole-area figure suppressed: {src}"
            hidden += 1
            continue
        if want is None:
            assert cell.value == "[z]", src
        elif isinstance(want, float):
            assert cell.value == pytest.approx(want, rel=1e-12), src
        else:
            assert cell.value == want, src
    assert hidden > 10  # the synthetic area has small groups: suppression did happen


def test_no_published_count_is_one_to_four(built: Any) -> None:
    wb, sources, _ = built
    whole_cells = {(s.sheet, s.coordinate) for s in sources if not s.by}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if ws.column_dimensions[cell.column_letter].hidden:
                    continue  # chart data copies of percentages
                if (ws.title, cell.coordinate) in whole_cells:
                    continue
                if isinstance(cell.value, int) and cell.number_format == "#,##0":
                    assert not 1 <= cell.value <= 4, (ws.title, cell.coordinate, cell.value)


def test_small_denominators_hide_percentages(built: Any, fake_engine: Any) -> None:
    wb, sources, _ = built
    checked = 0
    for src in sources:
        if src.by and src.field in PCT_FIELDS:
            m = _raw_metrics(fake_engine, "2025-26", src.by)[src.metric]
            if m["denominator"] < 10:
                assert wb[src.sheet][src.coordinate].value == C
                checked += 1
    assert checked > 0


def test_no_column_or_row_has_a_single_c_next_to_a_shown_total(built: Any) -> None:
    wb, sources, _ = built
    columns: dict[tuple[str, str, str, str, str], list[Any]] = defaultdict(list)
    rows: dict[tuple[str, int], dict[str, Any]] = defaultdict(dict)
    for s in sources:
        if not s.by or s.field not in ("value", "numerator", "denominator"):
            continue
        cell = wb[s.sheet][s.coordinate]
        columns[(s.sheet, cell.column_letter, s.by[0][0], s.metric, s.field)].append(cell.value)
        if s.sheet == "Volumes":
            rows[(s.sheet, cell.row)][s.metric] = cell.value
    for key, values in columns.items():
        assert values.count(C) != 1, key  # the whole-area total above is always shown
    for key, row in rows.items():
        statuses = [v for k, v in row.items() if k.startswith("referrals_by_status.")]
        if statuses and row.get("referrals_received") != C:
            assert statuses.count(C) != 1, key


def test_sheets_charts_and_definitions(built: Any) -> None:
    wb, _, data = built
    assert wb.sheetnames == [
        "Cover",
        "Volumes",
        "Outcomes",
        "Demographics",
        "Satisfaction & Code",
        "Data quality",
        "Definitions",
    ]
    with zipfile.ZipFile(BytesIO(data)) as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 2
        xml = z.read("xl/charts/chart1.xml").decode()
        assert "barChart" in xml and "Helped and improved" in xml
    defs = wb["Definitions"]
    names = [defs.cell(r, 1).value for r in range(1, defs.max_row + 1)]
    for name, _ in METRIC_DEFINITIONS:
        assert name in names


def test_cover_and_workbook_craft(built: Any) -> None:
    wb, _, _ = built
    cover = wb["Cover"]
    facts = {cover.cell(r, 1).value: cover.cell(r, 2).value for r in range(1, 20)}
    assert facts["Area"] == "Warwickshire"
    assert facts["Period"] == "2025-26"
    assert facts["Contact"] == "returns@opcc.example"
    # 09:30 UTC on 20 April is 10:30 in London (BST), written without a zone.
    assert facts["Generated at (UK time)"] == dt.datetime(2026, 4, 20, 10, 30)
    assert str(facts["Software version"]).startswith("vop ")
    narrative = [c for c in cover["B"] if c.style == "vop_narrative"]
    assert len(narrative) == 4
    assert all(c.protection.locked is False for c in narrative)
    validated = {str(r) for dv in cover.data_validations.dataValidation for r in dv.sqref.ranges}
    assert {c.coordinate for c in narrative} <= validated
    assert {"vop_header", "vop_count", "vop_pct"} <= set(wb.named_styles)
    for ws in wb.worksheets:
        assert ws.protection.sheet, ws.title
        assert ws.page_setup.orientation == "landscape"
    outcomes = wb["Outcomes"]
    assert outcomes.freeze_panes is not None and outcomes.print_title_rows
    pct_cells = [
        c
        for row in outcomes.iter_rows()
        for c in row
        if c.number_format == "0.0%" and not outcomes.column_dimensions[c.column_letter].hidden
    ]
    assert pct_cells and all(c.alignment.horizontal == "right" for c in pct_cells)
    counts = [c for row in wb["Volumes"].iter_rows() for c in row if c.number_format == "#,##0"]
    assert counts
    vol = wb["Volumes"]
    suppressed = [c for row in vol.iter_rows() for c in row if c.value == C]
    assert suppressed and all(c.comment is not None for c in suppressed)
    footnotes = [c.value for c in vol["A"] if isinstance(c.value, str) and c.value.startswith("[c] =")]
    assert footnotes


def test_build_returns_bytes_and_accepts_a_naive_time(fake_engine: Any) -> None:
    data = build_moj_return(fake_engine, "2025-26", generated_at=dt.datetime(2026, 4, 20, 9, 30))
    assert data[:2] == b"PK"
    cover = load_workbook(BytesIO(data))["Cover"]
    facts = {cover.cell(r, 1).value: cover.cell(r, 2).value for r in range(1, 20)}
    assert facts["Generated at (UK time)"] == dt.datetime(2026, 4, 20, 9, 30)


def test_engine_called_once_per_breakdown(fake_engine: Any) -> None:
    build_moj_return(fake_engine, "2025-26")
    assert sorted(fake_engine.calls) == sorted(
        [("2025-26", ())]
        + [
            ("2025-26", (k,))
            for k in ("service", "provider", "crime_group", "age_band", "sex", "ethnicity", "disability")
        ]
    )


def test_custom_layout_file(tmp_path: Path, fake_engine: Any) -> None:
    layout = tmp_path / "tiny.toml"
    layout.write_text(
        """
name = "Tiny"
version = "1"
[[sheets]]
name = "By sex"
[[sheets.tables]]
id = "t"
title = "Referrals by sex"
rows = "breakdown"
by = "sex"
total_row = false
columns = [{ metric = "referrals_received", label = "Referrals" },
           { metric = "helped_pct.cope", field = "numerator", label = "Helped" },
           { metric = "no_such_metric", label = "Missing" }]
[[sheets]]
name = "Definitions"
kind = "definitions"
"""
    )
    data = build_moj_return(fake_engine, "2025-26-Q1", layout_path=layout)
    wb = load_workbook(BytesIO(data))
    assert wb.sheetnames == ["By sex", "Definitions"]
    assert sorted(fake_engine.calls) == [("2025-26-Q1", ()), ("2025-26-Q1", ("sex",))]
    ws = wb["By sex"]
    labels = [ws.cell(r, 1).value for r in range(1, ws.max_row + 1)]
    assert "female" in labels and "All" not in labels
    assert "[x]" in [ws.cell(r, 4).value for r in range(1, ws.max_row + 1)]


def test_group_labels_are_never_formulas(result_factory: Any, metrics_factory: Any) -> None:
    evil = '=HYPERLINK("http://example.invalid","x")'

    def engine(period: str, by: list[str]) -> dict[str, Any]:
        groups = [({}, metrics_factory(500))]
        if by:
            groups += [({by[0]: evil}, metrics_factory(250)), ({by[0]: "b"}, metrics_factory(250))]
        return result_factory(groups, period)

    wb = load_workbook(BytesIO(build_moj_return(engine, "2025-26")))
    cells = [c for row in wb["Volumes"].iter_rows() for c in row if c.value == evil]
    assert cells and all(c.data_type == "s" for c in cells)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('[[sheets]]\nname = "A/B"\n', "valid Excel sheet name"),
        ('[[sheets]]\nname = "A"\nkind = "pie"\n', "unknown kind"),
        (
            '[[sheets]]\nname = "A"\n[[sheets.tables]]\nid = "t"\nrows = "breakdown"\n'
            'columns = [{metric = "x"}]\n',
            "needs `by`",
        ),
        (
            '[[sheets]]\nname = "A"\n[[sheets.tables]]\nid = "t"\nrows = "whole"\n'
            'columns = [{metric = "x"}]\n'
            '[[sheets.charts]]\ntable = "t"\ncolumns = ["nope"]\n',
            "unknown columns",
        ),
    ],
)
def test_layout_errors(tmp_path: Path, snippet: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(snippet)
    with pytest.raises(LayoutError, match=message):
        load_layout(path)


def test_default_layout_loads() -> None:
    layout = load_layout()
    assert layout["sheets"][0]["kind"] == "cover"
