"""A provider's own report: its improvement per outcome area over the last 8 quarters against all
providers, its response rates, and whom it reaches.

Figures come from a callable (period, provider code or None for all providers) -> metrics dict; the
provider's own figures are below whole-area totals, so all of them pass disclosure control (its whole
group included); the all-provider figures are whole-area totals and are shown as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openpyxl.chart import LineChart, Reference
from openpyxl.workbook.workbook import Workbook

from exports.definitions import AREAS, BREAKDOWN_LABELS, METRIC_DEFINITIONS, value_label
from exports.disclosure import DEFAULT_THRESHOLD, MIN_DENOMINATOR, SUPPRESSED, suppress_metrics
from exports.workbook import (
    CellSource,
    Kind,
    SheetWriter,
    figure,
    naive_local,
    new_workbook,
    share,
    software_version,
    to_bytes,
)
from outcomes.periods import last_quarters

GetMetricsFor = Callable[[str, str | None], Mapping[str, Any]]
DEMOGRAPHIC_KEYS: tuple[str, ...] = ("age_band", "sex", "ethnicity", "disability")
QUARTERS = 8
# Hidden chart-data columns sit far right of every table (column AD onwards).
_CHART_COL = 30

Row = tuple[str, list[tuple[Any, Kind]], bool]


def quarter_codes(period: str, count: int = QUARTERS) -> list[str]:
    """The ``count`` quarter codes ending with the quarter holding the period's last day, oldest first
    (``2025-26-Q3`` -> ``2023-24-Q4`` .. ``2025-26-Q3``; a year ends with its Q4)."""
    return [p.code for p in last_quarters(period, count)]


def required_calls(period: str, provider_code: str) -> list[tuple[str, str | None]]:
    """Every (period, provider) that ``build_provider_report`` asks ``get_metrics_for`` for: each of the
    8 quarters and ``period`` itself, for the provider and for all providers (None).

    For an async engine, fetch these first and pass a getter that looks them up.
    """
    periods = quarter_codes(period)
    if period not in periods:
        periods.append(period)
    return [(p, who) for p in periods for who in (provider_code, None)]


def _whole(result: Mapping[str, Any]) -> dict[str, Any]:
    """The result's own total: the group with no breakdown, or the single provider group."""
    groups = list(result.get("groups", []))
    for g in groups:
        if not g.get("by"):
            return dict(g.get("metrics", {}))
    for g in groups:
        if set(g.get("by", {})) == {"provider"}:
            return dict(g.get("metrics", {}))
    return {}


def _publish(result: Mapping[str, Any], threshold: int, min_denominator: int, *, own: bool) -> dict[str, Any]:
    """Suppress a result; ``own``: the provider's figures, whose total is itself below the area's."""
    groups = list(result.get("groups", []))
    if not any(not g.get("by") for g in groups):
        # A provider-keyed group stands in for the total, so make it the whole for suppression.
        groups = [{"by": {}, "metrics": _whole(result)}] + [
            g for g in groups if set(g.get("by", {})) != {"provider"}
        ]
    return suppress_metrics({**result, "groups": groups}, threshold, min_denominator, whole_exempt=not own)


class _ProviderReport:
    def __init__(
        self,
        get_metrics_for: GetMetricsFor,
        provider: str,
        period: str,
        options: Mapping[str, Any],
    ) -> None:
        self.get = get_metrics_for
        self.provider = provider
        self.period = period
        self.options = options
        self.quarters = quarter_codes(period)
        self.wb: Workbook = new_workbook()
        self.sources: list[CellSource] = []
        self._cache: dict[tuple[str, str | None], tuple[dict[str, Any], dict[str, Any]]] = {}

    def fetch(self, period: str, provider: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(raw, published) result for one call, fetched once."""
        key = (period, provider)
        if key not in self._cache:
            raw = dict(self.get(period, provider))
            t, m = self.options["threshold"], self.options["min_denominator"]
            self._cache[key] = (raw, _publish(raw, t, m, own=provider is not None))
        return self._cache[key]

    def own(self, period: str) -> dict[str, Any]:
        return _whole(self.fetch(period, self.provider)[1])

    def everyone(self, period: str) -> dict[str, Any]:
        return _whole(self.fetch(period, None)[1])

    def _record(
        self,
        sheet: str,
        first_row: int,
        cells: list[list[tuple[str, str, str, str | None, tuple[tuple[str, str], ...]] | None]],
    ) -> None:
        ws = self.wb[sheet]
        for r, row in enumerate(cells):
            for c, src in enumerate(row):
                if src is not None:
                    metric, fld, period, provider, by = src
                    coord = ws.cell(first_row + r, c + 2).coordinate
                    self.sources.append(CellSource(sheet, coord, by, metric, fld, period, provider))

    def subtitle(self) -> str:
        return f"Provider {self.options['name']} · quarters {self.quarters[0]} to {self.quarters[-1]}"

    # -- sheets -------------------------------------------------------------------------------------------
    def build(self) -> Workbook:
        self.summary()
        self.improvement()
        self.responses()
        self.reach()
        self.definitions()
        return self.wb

    def summary(self) -> None:
        ws = self.wb.create_sheet("Summary")
        w = SheetWriter(ws)
        w.title(f"Provider outcomes report: {self.options['name']}", self.subtitle())
        facts = [
            ("Provider", self.provider),
            ("Period", self.period),
            ("Quarters shown", f"{self.quarters[0]} to {self.quarters[-1]}"),
            ("Generated at (UK time)", self.options["generated_at"]),
            ("Software version", f"vop {self.options['version']}"),
        ]
        for label, value in facts:
            ws.cell(w.row, 1, label).style = "vop_total_label"
            cell = ws.cell(w.row, 2, value)
            # Unwrapped, so the text runs on into the empty cells beside it.
            cell.style = "vop_label"
            if isinstance(value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            w.row += 1
        w.row += 1
        spec: list[tuple[str, str, str | None]] = [
            ("Referrals received", "referrals_received", None),
            ("Victims supported", "victims_supported", None),
            ("Episodes closed", "episodes_closed", None),
            ("Exit responses", "exit_responses", None),
            ("Exit response rate", "exit_response_rate", "pct"),
            ("Helped to cope or recover", "helped_cope_and_recover_pct", "pct"),
            ("Satisfied", "satisfied_pct", "pct"),
        ]
        own, everyone = self.own(self.period), self.everyone(self.period)
        rows: list[Row] = []
        srcs: list[list[Any]] = []
        for label, metric, fld in spec:
            rows.append((label, [figure(own, metric, fld), figure(everyone, metric, fld)], False))
            srcs.append(
                [
                    (metric, fld or "value", self.period, self.provider, ()),
                    (metric, fld or "value", self.period, None, ()),
                ]
            )
        _, first, _ = w.table(
            f"Period {self.period}", ["Figure", self.options["name"], "All providers"], rows
        )
        self._record("Summary", first, srcs)
        w.finish(landscape=False)
        # Dates do not run on into the next cell as text does; give them room.
        ws.column_dimensions["B"].width = max(ws.column_dimensions["B"].width or 0, 18)

    def _line_chart(
        self,
        w: SheetWriter,
        title: str,
        header_row: int,
        last: int,
        series: Sequence[tuple[str, Sequence[tuple[Any, Kind]]]],
    ) -> None:
        chart = LineChart()
        chart.title = title
        chart.style = 2
        chart.y_axis.numFmt = "0%"
        chart.y_axis.scaling.min = 0
        chart.y_axis.scaling.max = 1
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        # The chart reads hidden columns (blanks where a figure is [c]); plot them and leave gaps.
        chart.visible_cells_only = False
        chart.display_blanks = "gap"
        for i, (name, values) in enumerate(series):
            chart.add_data(w.chart_series(_CHART_COL + i, header_row, name, values), titles_from_data=True)
        for s in chart.series:
            s.smooth = False
        chart.set_categories(Reference(w.ws, min_col=1, min_row=header_row + 1, max_row=last))
        chart.height = 7
        chart.width = 15
        # Beside its table: eight quarters make a short table and the two read together.
        w.ws.add_chart(chart, w.ws.cell(header_row - 1, 9).coordinate)

    def improvement(self) -> None:
        ws = self.wb.create_sheet("Improvement")
        w = SheetWriter(ws, comment_suppressed=self.options["comment_suppressed"])
        w.title("Improvement per outcome area: this provider and all providers", self.subtitle())
        headers = [
            "Quarter",
            "Paired (n)",
            "Improved",
            "Improved %",
            "95% CI low",
            "95% CI high",
            "All providers %",
        ]
        for area, area_label in self.options["areas"].items():
            rate = f"improved_pct.{area}"
            rows: list[Row] = []
            srcs: list[list[Any]] = []
            for q in self.quarters:
                own, everyone = self.own(q), self.everyone(q)
                fields = ("denominator", "numerator", "pct", "ci_lo", "ci_hi")
                values = [figure(own, rate, f) for f in fields] + [figure(everyone, rate, "pct")]
                rows.append((q, values, False))
                srcs.append([(rate, f, q, self.provider, ()) for f in fields] + [(rate, "pct", q, None, ())])
            start = w.row
            header_row, first, last = w.table(area_label, headers, rows)
            self._record("Improvement", first, srcs)
            series = [
                (f"{self.options['name']} improved %", [r[1][2] for r in rows]),
                ("All providers improved %", [r[1][5] for r in rows]),
            ]
            self._line_chart(w, f"Improved: {area_label}", header_row, last, series)
            # Leave room for the chart (about 15 rows at the default height) before the next block.
            w.row = max(w.row, start + 16)
        w.finish()

    def responses(self) -> None:
        ws = self.wb.create_sheet("Response rates")
        w = SheetWriter(ws, comment_suppressed=self.options["comment_suppressed"])
        w.title("Exit response rate: this provider and all providers", self.subtitle())
        headers = [
            "Quarter",
            "Episodes closed",
            "Exit responses",
            "Response rate",
            "95% CI low",
            "95% CI high",
            "All providers rate",
        ]
        rows: list[Row] = []
        srcs: list[list[Any]] = []
        rate = "exit_response_rate"
        for q in self.quarters:
            own, everyone = self.own(q), self.everyone(q)
            fields = ("denominator", "numerator", "pct", "ci_lo", "ci_hi")
            rows.append((q, [figure(own, rate, f) for f in fields] + [figure(everyone, rate, "pct")], False))
            srcs.append([(rate, f, q, self.provider, ()) for f in fields] + [(rate, "pct", q, None, ())])
        header_row, first, last = w.table(None, headers, rows)
        self._record("Response rates", first, srcs)
        series = [
            (f"{self.options['name']} response rate", [r[1][2] for r in rows]),
            ("All providers response rate", [r[1][5] for r in rows]),
        ]
        self._line_chart(w, "Exit response rate", header_row, last, series)
        w.row = max(w.row, header_row + 16)
        w.finish()

    def reach(self) -> None:
        ws = self.wb.create_sheet("Demographics reach")
        w = SheetWriter(ws, comment_suppressed=self.options["comment_suppressed"])
        w.title(f"Whom the provider reaches, period {self.period}", self.subtitle())
        _, pub_own = self.fetch(self.period, self.provider)
        _, pub_all = self.fetch(self.period, None)
        own_total = _whole(pub_own).get("referrals_received")
        all_total = _whole(pub_all).get("referrals_received")
        any_table = False
        for key in DEMOGRAPHIC_KEYS:
            own_groups = [g for g in pub_own.get("groups", []) if set(g.get("by", {})) == {key}]
            if not own_groups:
                continue
            any_table = True
            all_groups = {
                str(g["by"][key]): g["metrics"]
                for g in pub_all.get("groups", [])
                if set(g.get("by", {})) == {key}
            }
            rows: list[Row] = []
            srcs: list[list[Any]] = []
            for g in own_groups:
                value = g["by"][key]
                m = g["metrics"]
                other = all_groups.get(str(value), {})
                by = tuple(sorted(g["by"].items()))
                rows.append(
                    (
                        value_label(key, value),
                        [
                            figure(m, "referrals_received", None),
                            share(m.get("referrals_received"), own_total),
                            figure(m, "victims_supported", None),
                            share(other.get("referrals_received"), all_total) if other else (None, "share"),
                        ],
                        False,
                    )
                )
                srcs.append(
                    [
                        ("referrals_received", "value", self.period, self.provider, by),
                        ("referrals_received", "share", self.period, self.provider, by),
                        ("victims_supported", "value", self.period, self.provider, by),
                        ("referrals_received", "share", self.period, None, by) if other else None,
                    ]
                )
            headers = [
                BREAKDOWN_LABELS[key],
                "Referrals received",
                "Share of the provider's referrals",
                "Victims supported",
                "Share of all providers' referrals",
            ]
            _, first, _ = w.table(BREAKDOWN_LABELS[key], headers, rows)
            self._record("Demographics reach", first, srcs)
        if not any_table:
            w.note("No demographic breakdowns were supplied for this provider and period.")
        w.finish()

    def definitions(self) -> None:
        ws = self.wb.create_sheet("Definitions")
        w = SheetWriter(ws, comment_suppressed=False)
        w.title("Definitions", "From the platform's metric contract (metrics.md); [a] is an outcome area.")
        rows: list[Row] = [(name, [(text, "text")], False) for name, text in METRIC_DEFINITIONS]
        w.table(None, ["Metric", "Definition"], rows)
        w.finish()
        ws.column_dimensions["A"].width = 32
        ws.column_dimensions["B"].width = 110


def render_provider_report(
    get_metrics_for: GetMetricsFor,
    provider_code: str,
    period: str,
    *,
    provider_name: str | None = None,
    areas: Mapping[str, str] | None = None,
    suppression_threshold: int = DEFAULT_THRESHOLD,
    min_denominator: int = MIN_DENOMINATOR,
    generated_at: dt.datetime | None = None,
    comment_suppressed: bool = True,
) -> tuple[Workbook, list[CellSource]]:
    """The provider report as a workbook plus where each figure came from (for tests and audit)."""
    options = {
        "name": provider_name or provider_code,
        "areas": dict(areas or AREAS),
        "threshold": suppression_threshold,
        "min_denominator": min_denominator,
        "generated_at": naive_local(generated_at or dt.datetime.now(dt.UTC)),
        "version": software_version(),
        "comment_suppressed": comment_suppressed,
    }
    report = _ProviderReport(get_metrics_for, provider_code, period, options)
    return report.build(), report.sources


def build_provider_report(
    get_metrics_for: GetMetricsFor,
    provider_code: str,
    period: str,
    *,
    provider_name: str | None = None,
    areas: Mapping[str, str] | None = None,
    suppression_threshold: int = DEFAULT_THRESHOLD,
    min_denominator: int = MIN_DENOMINATOR,
    generated_at: dt.datetime | None = None,
) -> bytes:
    """Build one provider's report as xlsx bytes.

    ``get_metrics_for(period, provider)`` returns the metrics dict for one period, for the provider
    (``provider_code``) or all providers (``None``). It is called for each of the 8 quarters ending with
    ``period`` and for ``period`` itself; for the demographics sheet the dict for ``period`` should carry
    groups split by age_band, sex, ethnicity and disability (missing breakdowns are left out). The
    provider's figures, its total included, pass disclosure control; the all-provider figures are totals.
    """
    wb, _ = render_provider_report(
        get_metrics_for,
        provider_code,
        period,
        provider_name=provider_name,
        areas=areas,
        suppression_threshold=suppression_threshold,
        min_denominator=min_denominator,
        generated_at=generated_at,
    )
    return to_bytes(wb)


__all__ = ["SUPPRESSED", "build_provider_report", "quarter_codes", "render_provider_report", "required_calls"]
