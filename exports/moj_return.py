"""The MoJ victim services return: an xlsx workbook laid out by a TOML file.

The MoJ's layout changes and is not published, so sheets, tables, rows and columns come from
configuration (``exports/layouts/moj-return.toml`` by default) and map onto metric names and breakdowns
of ``domain/metrics.md``. Figures come from a callable (period, breakdown keys) -> metrics dict, so this
module never queries a table; disclosure control is applied to every table below whole-area totals.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl.chart import BarChart, Reference
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from exports.definitions import (
    AREAS,
    BREAKDOWN_LABELS,
    METRIC_DEFINITIONS,
    RIGHTS,
    RIGHTS_BANDS,
    STATUSES,
    UNKNOWN_VALUES,
    value_label,
)
from exports.disclosure import DEFAULT_THRESHOLD, MIN_DENOMINATOR, SUPPRESSED, suppress_metrics
from exports.workbook import (
    CellSource,
    Kind,
    SheetWriter,
    figure,
    naive_local,
    new_workbook,
    protect_sheet,
    setup_page,
    share,
    software_version,
    to_bytes,
)

DEFAULT_LAYOUT = Path(__file__).with_name("layouts") / "moj-return.toml"
GetMetrics = Callable[[str, list[str]], Mapping[str, Any]]

_ROW_KINDS = {"breakdown", "items", "whole", "unknown_share"}
_RATE_FIELDS = {"pct", "numerator", "denominator", "ci_lo", "ci_hi"}
_ITEM_LISTS: dict[str, list[tuple[str, str]]] = {
    "areas": list(AREAS.items()),
    "rights": [(k, f"{k}. {v}") for k, v in RIGHTS.items()],
    "rights_bands": [(b, f"{b} rights received") for b in RIGHTS_BANDS],
    "statuses": [(s, s.replace("_", " ").capitalize()) for s in STATUSES],
}


# Hidden chart-data columns start at column AD, right of any table of the default layout.
_CHART_COL = 30
_Placed = tuple[int, int, int, dict[str, int], list[tuple[str, list[tuple[Any, Kind]], bool]]]


class LayoutError(ValueError):
    """The layout file does not describe a workbook this module can build."""


def load_layout(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check a return layout (TOML); the default layout when ``path`` is None."""
    file = Path(path) if path is not None else DEFAULT_LAYOUT
    with file.open("rb") as fh:
        layout = tomllib.load(fh)
    sheets = layout.get("sheets")
    if not isinstance(sheets, list) or not sheets:
        raise LayoutError(f"{file}: a layout needs at least one [[sheets]]")
    names: set[str] = set()
    for sheet in sheets:
        name = sheet.get("name")
        if not isinstance(name, str) or not name or len(name) > 31 or any(ch in name for ch in "[]:*?/\\"):
            raise LayoutError(f"{file}: sheet name {name!r} is not a valid Excel sheet name")
        if name in names:
            raise LayoutError(f"{file}: sheet name {name!r} is used twice")
        names.add(name)
        kind = sheet.get("kind", "tables")
        if kind not in {"cover", "tables", "definitions"}:
            raise LayoutError(f"{file}: sheet {name!r} has unknown kind {kind!r}")
        tables: dict[str, set[str]] = {}
        for table in sheet.get("tables", []):
            rows = table.get("rows")
            if rows not in _ROW_KINDS:
                raise LayoutError(
                    f"{file}: table {table.get('id')!r} rows must be one of {sorted(_ROW_KINDS)}"
                )
            if rows == "breakdown" and not table.get("by"):
                raise LayoutError(f"{file}: table {table.get('id')!r} needs `by` (a breakdown key)")
            if rows == "items" and not (table.get("items") or table.get("items_from") in _ITEM_LISTS):
                raise LayoutError(
                    f"{file}: table {table.get('id')!r} needs `items` or `items_from` in "
                    f"{sorted(_ITEM_LISTS)}"
                )
            if not table.get("columns"):
                raise LayoutError(f"{file}: table {table.get('id')!r} has no columns")
            tables[table.get("id", "")] = {c["id"] for c in table["columns"] if "id" in c}
        for chart in sheet.get("charts", []):
            target = chart.get("table")
            if target not in tables:
                raise LayoutError(f"{file}: chart {chart.get('title')!r} names unknown table {target!r}")
            missing = set(chart.get("columns", [])) - tables[target]
            if missing or not chart.get("columns"):
                raise LayoutError(
                    f"{file}: chart {chart.get('title')!r} names unknown columns {sorted(missing)}"
                )
    return layout


def _breakdown_keys(layout: Mapping[str, Any]) -> list[str]:
    keys: list[str] = []
    for sheet in layout["sheets"]:
        for table in sheet.get("tables", []):
            wanted = [table["by"]] if table.get("rows") == "breakdown" else list(table.get("keys", []))
            keys.extend(k for k in wanted if k not in keys)
    return keys


def required_breakdowns(layout_path: str | Path | None = None) -> list[str]:
    """The breakdown keys a layout asks for, in order: ``build_moj_return`` calls
    ``get_metrics(period, [])`` and then ``get_metrics(period, [key])`` for each of these.

    For an async engine, fetch these results first and pass a getter that looks them up.
    """
    return _breakdown_keys(load_layout(layout_path))


@dataclass
class _Figures:
    """The figures one return needs: the whole area raw, each breakdown raw and published."""

    period: dict[str, Any]
    whole: dict[str, Any]
    raw: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    published: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _gather(
    get_metrics: GetMetrics, period: str, keys: Sequence[str], threshold: int, min_denominator: int
) -> _Figures:
    whole_result = get_metrics(period, [])
    whole: Mapping[str, Any] = next(
        (g for g in whole_result.get("groups", []) if not g.get("by")), {"by": {}, "metrics": {}}
    )
    figures = _Figures(
        period=dict(whole_result.get("period", {"code": period})), whole=dict(whole["metrics"])
    )
    for key in keys:
        result = get_metrics(period, [key])
        # Only this key's groups; the whole-area group closes every column (the shown total).
        groups = [g for g in result.get("groups", []) if not g.get("by") or set(g["by"]) == {key}]
        if not any(not g.get("by") for g in groups):
            groups.insert(0, {"by": {}, "metrics": figures.whole})
        published = suppress_metrics({"groups": groups}, threshold, min_denominator)["groups"]
        figures.raw[key] = [g for g in groups if g.get("by")]
        figures.published[key] = [g for g in published if g.get("by")]
    return figures


class _ReturnBuilder:
    def __init__(self, layout: Mapping[str, Any], figures: _Figures, options: Mapping[str, Any]) -> None:
        self.layout = layout
        self.figures = figures
        self.options = options
        self.wb: Workbook = new_workbook()
        self.sources: list[CellSource] = []

    # -- sheets -------------------------------------------------------------------------------------------
    def build(self) -> Workbook:
        for sheet in self.layout["sheets"]:
            kind = sheet.get("kind", "tables")
            ws = self.wb.create_sheet(sheet["name"])
            if kind == "cover":
                self._cover(ws, sheet)
            elif kind == "definitions":
                self._definitions(ws, sheet)
            else:
                self._tables(ws, sheet)
        return self.wb

    def _subtitle(self) -> str:
        p = self.figures.period
        span = f" ({p['start']} to {p['end']})" if p.get("start") and p.get("end") else ""
        area = f"{self.options['area']} · " if self.options["area"] else ""
        return f"{area}period {p.get('code', '')}{span}"

    def _cover(self, ws: Worksheet, sheet: Mapping[str, Any]) -> None:
        w = SheetWriter(ws, comment_suppressed=False)
        w.title(self.layout.get("title", "Victim services return"), self._subtitle())
        p = self.figures.period
        opts = self.options
        facts: list[tuple[str, Any, str | None]] = [
            ("Area", opts["area"], None),
            ("Period", p.get("code", ""), None),
            ("Period start", _date(p.get("start")), "yyyy-mm-dd"),
            ("Period end", _date(p.get("end")), "yyyy-mm-dd"),
            ("Generated at (UK time)", opts["generated_at"], "yyyy-mm-dd hh:mm"),
            ("Software version", f"vop {opts['version']}", None),
            (
                "Return layout",
                f"{self.layout.get('name', '')} {self.layout.get('version', '')}".strip(),
                None,
            ),
            ("Contact", opts["contact"], None),
            (
                "Disclosure control",
                f"Below whole-area totals: counts of 1 to {opts['threshold']} and percentages, means or "
                f"intervals on fewer than {opts['min_denominator']} are shown as [c], with secondary "
                "suppression so no [c] can be worked out from a total.",
                None,
            ),
        ]
        for label, value, fmt in facts:
            ws.cell(w.row, 1, label).style = "vop_total_label"
            cell = ws.cell(w.row, 2)
            cell.value = value
            cell.style = "vop_text"
            if fmt:
                cell.number_format = fmt
            w.row += 1
        w.row += 1
        narratives = sheet.get("narrative", [])
        if narratives:
            ws.cell(w.row, 1, "Narrative").style = "vop_table_title"
            ws.cell(w.row, 2, "Type in the shaded cells; everything else is locked.").style = "vop_note"
            w.row += 1
        for item in narratives:
            limit = int(item.get("max_length", 2000))
            ws.cell(w.row, 1, item["label"]).style = "vop_text"
            cell = ws.cell(w.row, 2)
            cell.style = "vop_narrative"
            dv = DataValidation(
                type="textLength",
                operator="lessThanOrEqual",
                formula1=str(limit),
                allow_blank=True,
                showInputMessage=True,
                showErrorMessage=True,
                promptTitle="Narrative",
                prompt=f"Free text, up to {limit} characters. No names or details that identify a victim.",
                errorTitle="Too long",
                error=f"Keep this to {limit} characters or fewer.",
            )
            ws.add_data_validation(dv)
            dv.add(cell)
            ws.row_dimensions[w.row].height = 90
            w.row += 1
        ws.column_dimensions["A"].width = 42
        ws.column_dimensions["B"].width = 100
        setup_page(ws, landscape=True)
        protect_sheet(ws)

    def _definitions(self, ws: Worksheet, sheet: Mapping[str, Any]) -> None:
        w = SheetWriter(ws, comment_suppressed=False)
        w.title("Definitions", "From the platform's metric contract (metrics.md); [a] is an outcome area.")
        rows = [(name, [(text, "text")], False) for name, text in METRIC_DEFINITIONS]
        w.table(None, ["Metric", "Definition"], rows)  # type: ignore[arg-type]
        area_rows = [(k, [(v, "text")], False) for k, v in AREAS.items()]
        w.table("Outcome areas", ["Area", "Meaning"], area_rows)  # type: ignore[arg-type]
        w.finish(landscape=True)
        ws.column_dimensions["A"].width = 32
        ws.column_dimensions["B"].width = 110

    def _tables(self, ws: Worksheet, sheet: Mapping[str, Any]) -> None:
        w = SheetWriter(ws, comment_suppressed=self.options["comment_suppressed"])
        w.title(sheet.get("title", sheet["name"]), self._subtitle())
        placed: dict[str, _Placed] = {}
        for table in sheet.get("tables", []):
            headers, rows, sources = self._table_rows(table)
            header_row, first, last = w.table(table.get("title"), headers, rows, table.get("note"))
            ids = {c["id"]: i + 2 for i, c in enumerate(table["columns"]) if "id" in c}
            placed[table.get("id", "")] = (header_row, first, last, ids, rows)
            for r, row_sources in enumerate(sources):
                for c, src in enumerate(row_sources):
                    if src is not None:
                        coord = ws.cell(first + r, c + 2).coordinate
                        self.sources.append(CellSource(sheet["name"], coord, *src))
        for chart_spec in sheet.get("charts", []):
            self._chart(w, chart_spec, placed[chart_spec["table"]])
        w.finish()

    # -- tables -------------------------------------------------------------------------------------------
    def _table_rows(
        self, table: Mapping[str, Any]
    ) -> tuple[
        list[str],
        list[tuple[str, list[tuple[Any, Kind]], bool]],
        list[list[tuple[tuple[tuple[str, str], ...], str, str] | None]],
    ]:
        kind = table["rows"]
        columns = table["columns"]
        first_header = {
            "breakdown": BREAKDOWN_LABELS.get(table.get("by", ""), str(table.get("by", "")).capitalize()),
            "items": table.get("item_label", "Item"),
            "whole": "",
            "unknown_share": "Attribute",
        }[kind]
        if kind == "items" and table.get("items_from") == "areas":
            first_header = table.get("item_label", "Outcome area")
        elif kind == "items" and table.get("items_from") == "rights":
            first_header = table.get("item_label", "Right (Victims' Code)")
        elif kind == "items" and table.get("items_from") == "rights_bands":
            first_header = table.get("item_label", "Rights received")
        headers = [first_header] + [c.get("label") or c.get("metric", c.get("field", "")) for c in columns]
        rows: list[tuple[str, list[tuple[Any, Kind]], bool]] = []
        sources: list[list[tuple[tuple[tuple[str, str], ...], str, str] | None]] = []
        total_label = table.get(
            "total_label", f"All ({self.options['area']})" if self.options["area"] else "All"
        )

        def add(
            label: str, metrics: Mapping[str, Any], by: dict[str, str], item: str | None, total: bool
        ) -> None:
            values: list[tuple[Any, Kind]] = []
            srcs: list[tuple[tuple[tuple[str, str], ...], str, str] | None] = []
            for col in columns:
                metric = col["metric"].replace("{item}", item) if item is not None else col["metric"]
                fld = col.get("field")
                if fld == "share":
                    values.append(share(metrics.get(metric), self.figures.whole.get(metric)))
                else:
                    values.append(figure(metrics, metric, fld))
                srcs.append((tuple(sorted(by.items())), metric, fld or "value"))
            rows.append((label, values, total))
            sources.append(srcs)

        if kind == "breakdown":
            key = table["by"]
            if table.get("total_row", True):
                add(total_label, self.figures.whole, {}, None, True)
            for g in self.figures.published.get(key, []):
                add(value_label(key, g["by"][key]), g["metrics"], dict(g["by"]), None, False)
        elif kind == "items":
            items = [(i["key"], i.get("label", i["key"])) for i in table.get("items", [])] or _ITEM_LISTS[
                table["items_from"]
            ]
            for key, label in items:
                add(label, self.figures.whole, {}, str(key), False)
        elif kind == "whole":
            add(total_label, self.figures.whole, {}, None, True)
        else:
            metric = table.get("metric", "referrals_received")
            total = self.figures.whole.get(metric)
            for key in table.get("keys", []):
                unknown_groups = [
                    g
                    for g in self.figures.published.get(key, [])
                    if str(g["by"][key]).strip().lower() in UNKNOWN_VALUES
                ]
                counts = [g["metrics"].get(metric, 0) for g in unknown_groups]
                count: Any = (
                    SUPPRESSED if SUPPRESSED in counts else sum(c for c in counts if isinstance(c, int))
                )
                by = dict(unknown_groups[0]["by"]) if len(unknown_groups) == 1 else {key: "unknown"}
                values: list[tuple[Any, Kind]] = []
                srcs: list[tuple[tuple[tuple[str, str], ...], str, str] | None] = []
                for col in columns:
                    fld = col.get("field", "unknown")
                    if fld == "unknown":
                        values.append((count, "count"))
                        srcs.append((tuple(sorted(by.items())), metric, "value"))
                    elif fld == "total":
                        values.append((total, "count"))
                        srcs.append(((), metric, "value"))
                    elif fld == "share":
                        values.append(share(count, total))
                        srcs.append((tuple(sorted(by.items())), metric, "share"))
                    else:
                        raise LayoutError(
                            f"unknown_share column field must be unknown, total or share: {fld!r}"
                        )
                rows.append((BREAKDOWN_LABELS.get(key, key), values, False))
                sources.append(srcs)
        return headers, rows, sources

    def _chart(
        self,
        writer: SheetWriter,
        spec: Mapping[str, Any],
        placed: _Placed,
    ) -> None:
        ws = writer.ws
        header_row, first, last, ids, rows = placed
        chart = BarChart()
        chart.type = "bar" if spec.get("type", "bar") == "bar" else "col"
        chart.style = 10
        chart.title = spec.get("title")
        chart.y_axis.title = spec.get("y_title")
        chart.y_axis.numFmt = "0%"
        chart.y_axis.scaling.min = 0
        chart.y_axis.scaling.max = 1
        # openpyxl >= 3.1 writes axes as deleted unless told otherwise; Excel then draws no axis labels.
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        if chart.type == "bar":
            # Horizontal bars list categories bottom-up; reverse so they read in the table's order.
            chart.x_axis.scaling.orientation = "maxMin"
        # The chart reads hidden copies of its columns, with gaps where the table shows [c] or [z].
        chart.visible_cells_only = False
        chart.display_blanks = "gap"
        for i, col_id in enumerate(spec["columns"]):
            col = ids[col_id]
            title = str(ws.cell(header_row, col).value)
            values = [row[1][col - 2] for row in rows]
            # Each chart of the sheet gets its own block of hidden columns.
            ref = writer.chart_series(_CHART_COL + 4 * len(ws._charts) + i, header_row, title, values)
            chart.add_data(ref, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
        chart.height = max(7.5, 1.1 * (last - first + 1) + 3)
        chart.width = 18
        # Below the tables, not beside them: a landscape page fitted to width stays legible.
        ws.add_chart(chart, spec.get("anchor", ws.cell(writer.row, 1).coordinate))
        writer.row += int(chart.height / 0.53) + 2


def _date(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return text
    return text


def render_moj_return(
    get_metrics: GetMetrics,
    period: str,
    layout_path: str | Path | None = None,
    area: str = "",
    contact: str = "",
    suppression_threshold: int = DEFAULT_THRESHOLD,
    *,
    min_denominator: int = MIN_DENOMINATOR,
    generated_at: dt.datetime | None = None,
    comment_suppressed: bool = True,
) -> tuple[Workbook, list[CellSource]]:
    """Build the return as an openpyxl workbook plus where each published figure came from.

    :func:`build_moj_return` is the entry point; this one exists so tests and audits can check every
    cell against the metrics it was taken from.
    """
    layout = load_layout(layout_path)
    figures = _gather(get_metrics, period, _breakdown_keys(layout), suppression_threshold, min_denominator)
    moment = generated_at or dt.datetime.now(dt.UTC)
    options = {
        "area": area,
        "contact": contact,
        "threshold": suppression_threshold,
        "min_denominator": min_denominator,
        "generated_at": naive_local(moment),
        "version": software_version(),
        "comment_suppressed": comment_suppressed,
    }
    builder = _ReturnBuilder(layout, figures, options)
    return builder.build(), builder.sources


def build_moj_return(
    get_metrics: GetMetrics,
    period: str,
    layout_path: str | Path | None = None,
    area: str = "",
    contact: str = "",
    suppression_threshold: int = DEFAULT_THRESHOLD,
    *,
    min_denominator: int = MIN_DENOMINATOR,
    generated_at: dt.datetime | None = None,
) -> bytes:
    """Build the MoJ return for ``period`` as xlsx bytes.

    ``get_metrics(period, by)`` returns the metrics engine's dict for the period split by the keys in
    ``by`` (``[]``: the whole area only); it is called once for the whole area and once per breakdown key
    the layout uses. ``layout_path`` is a TOML layout (default ``exports/layouts/moj-return.toml``).
    Figures below whole-area totals are suppressed with ``suppression_threshold`` (counts 1..threshold)
    and ``min_denominator`` (percentages, means and intervals). ``generated_at`` defaults to now; aware
    datetimes are written as UK local time.
    """
    wb, _ = render_moj_return(
        get_metrics,
        period,
        layout_path,
        area,
        contact,
        suppression_threshold,
        min_denominator=min_denominator,
        generated_at=generated_at,
    )
    return to_bytes(wb)
