"""The provider report: 8 quarters of improvement and response rates against all providers, reach."""

from __future__ import annotations

import datetime as dt
import zipfile
from io import BytesIO
from typing import Any

import pytest
from openpyxl import load_workbook

from exports.disclosure import SUPPRESSED
from exports.provider_report import build_provider_report, quarter_codes, render_provider_report
from exports.workbook import to_bytes

C = SUPPRESSED


def test_quarter_codes() -> None:
    assert quarter_codes("2025-26-Q3") == [
        "2023-24-Q4",
        "2024-25-Q1",
        "2024-25-Q2",
        "2024-25-Q3",
        "2024-25-Q4",
        "2025-26-Q1",
        "2025-26-Q2",
        "2025-26-Q3",
    ]
    assert quarter_codes("2025-26")[-1] == "2025-26-Q4"
    assert quarter_codes("2025-26-H1")[-1] == "2025-26-Q2"
    assert len(quarter_codes("2025-26-Q1", 3)) == 3


def _whole(result: dict[str, Any]) -> dict[str, Any]:
    return result["groups"][0]["metrics"]


def _expected(engine: Any, src: Any, period: str) -> Any:
    result = engine(src.period or period, src.provider)
    if src.by:
        metrics = next(g["metrics"] for g in result["groups"] if tuple(sorted(g["by"].items())) == src.by)
    else:
        metrics = _whole(result)
    value = metrics[src.metric]
    if src.field == "share":
        return value / _whole(result)[src.metric]
    if isinstance(value, dict):
        if src.field in ("numerator", "denominator"):
            return value[src.field]
        if src.field == "pct":
            return None if value["pct"] is None else value["pct"] / 100
        ci = value["ci95"]
        return None if ci is None else ci[0 if src.field == "ci_lo" else 1] / 100
    return value


@pytest.fixture
def report(fake_provider_engine: Any) -> tuple[Any, list[Any], bytes]:
    wb, sources = render_provider_report(
        fake_provider_engine,
        "ROSA",
        "2025-26-Q3",
        provider_name="ROSA (Rape support)",
        generated_at=dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC),
    )
    data = to_bytes(wb)
    return load_workbook(BytesIO(data)), sources, data


def test_every_figure_matches_and_own_figures_are_controlled(report: Any, fake_provider_engine: Any) -> None:
    wb, sources, _ = report
    hidden = 0
    for src in sources:
        cell = wb[src.sheet][src.coordinate]
        want = _expected(fake_provider_engine, src, "2025-26-Q3")
        if cell.value == C:
            assert src.provider is not None, f"all-provider total suppressed: {src}"
            hidden += 1
            continue
        if src.provider is not None and src.field in ("value", "numerator", "denominator"):
            assert not 1 <= cell.value <= 4, src
        if src.provider is not None and src.field in ("pct", "ci_lo", "ci_hi"):
            rate = _expected_rate(fake_provider_engine, src)
            assert rate["denominator"] >= 10, src
        if want is None:
            assert cell.value == "[z]", src
        else:
            assert cell.value == pytest.approx(want, rel=1e-12), src
    assert hidden > 0


def _expected_rate(engine: Any, src: Any) -> dict[str, Any]:
    return _whole(engine(src.period, src.provider))[src.metric]


def test_calls_cover_eight_quarters_for_provider_and_all(report: Any, fake_provider_engine: Any) -> None:
    calls = set(fake_provider_engine.calls)
    for q in quarter_codes("2025-26-Q3"):
        assert (q, "ROSA") in calls and (q, None) in calls


def test_sheets_and_line_charts(report: Any) -> None:
    wb, _, data = report
    assert wb.sheetnames == ["Summary", "Improvement", "Response rates", "Demographics reach", "Definitions"]
    with zipfile.ZipFile(BytesIO(data)) as z:
        charts = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 7  # six outcome areas and the response rate
    assert all("lineChart" in xml for xml in charts)
    # Suppressed quarters are gaps in the line, not falls to zero.
    assert all('dispBlanksAs val="gap"' in xml and 'plotVisOnly val="0"' in xml for xml in charts)
    summary = wb["Summary"]
    facts = {summary.cell(r, 1).value: summary.cell(r, 2).value for r in range(1, 12)}
    assert facts["Generated at (UK time)"] == dt.datetime(2026, 1, 15, 12, 0)  # GMT in January
    reach = wb["Demographics reach"]
    titles = [reach.cell(r, 1).value for r in range(1, reach.max_row + 1)]
    assert {"Age band", "Sex", "Ethnicity", "Disability"} <= set(titles)


def test_missing_demographics_are_noted(fake_provider_engine: Any) -> None:
    fake_provider_engine.keys = ()
    wb = load_workbook(BytesIO(build_provider_report(fake_provider_engine, "ROSA", "2025-26")))
    notes = [c.value for c in wb["Demographics reach"]["A"] if c.value]
    assert any("No demographic breakdowns" in str(v) for v in notes)


def test_provider_keyed_group_is_accepted(result_factory: Any, metrics_factory: Any) -> None:
    def engine(period: str, provider: str | None) -> dict[str, Any]:
        if provider:
            return result_factory([({"provider": provider}, metrics_factory(300))], period)
        return result_factory([({}, metrics_factory(3000))], period)

    wb = load_workbook(BytesIO(build_provider_report(engine, "VS01", "2025-26-Q2")))
    ws = wb["Response rates"]
    values = [ws.cell(r, 2).value for r in range(1, ws.max_row + 1)]
    assert 60 in values  # episodes closed = 300 // 5 for the provider
