"""Workbook craft shared by every export: named styles, typed cells, tables, notes and page setup.

All workbooks are built in memory with openpyxl. Numbers stay numbers (so users can compute with them):
percentages are stored as fractions with a ``0.0%`` format, counts with ``#,##0``. Cells that cannot be
shown carry the GSS shorthand as text: ``[c]`` confidential (disclosure control), ``[z]`` not applicable
(zero denominator, nothing paired), ``[x]`` not available (the metric was not supplied).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.chart import Reference
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Protection, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from exports.disclosure import SUPPRESSED

NOT_APPLICABLE = "[z]"
NOT_AVAILABLE = "[x]"
LONDON = ZoneInfo("Europe/London")

Kind = Literal["count", "pct", "mean", "text", "share"]

SUPPRESSED_NOTE = (
    "[c] = confidential: a count of 1 to 4, a percentage, mean or interval on fewer than 10, or a figure "
    "hidden so that another [c] cannot be worked out from a total."
)
SHORTHAND_NOTE = "[z] = not applicable (nothing to divide by). [x] = not available (not supplied)."

_THIN = Side(style="thin", color="808080")


@dataclass(frozen=True)
class CellSource:
    """Where a published figure came from: for tests and audit, never written to the workbook.

    ``by`` is the group's breakdown as sorted (key, value) pairs; ``field`` is value, pct, numerator,
    denominator, ci_lo, ci_hi or share; ``period`` / ``provider`` say which call supplied it when a
    workbook draws on several (None: the workbook's own period / all providers).
    """

    sheet: str
    coordinate: str
    by: tuple[tuple[str, str], ...]
    metric: str
    field: str
    period: str | None = None
    provider: str | None = None


def _styles() -> list[NamedStyle]:
    right = Alignment(horizontal="right", vertical="top")
    return [
        NamedStyle(name="vop_title", font=Font(bold=True, size=14)),
        NamedStyle(name="vop_subtitle", font=Font(italic=True, size=10, color="404040")),
        NamedStyle(name="vop_table_title", font=Font(bold=True, size=11)),
        NamedStyle(
            name="vop_header",
            font=Font(bold=True),
            fill=PatternFill("solid", fgColor="D9E1F2"),
            border=Border(bottom=_THIN, top=_THIN),
            alignment=Alignment(horizontal="center", vertical="center", wrap_text=True),
        ),
        NamedStyle(name="vop_label", alignment=Alignment(horizontal="left", vertical="top")),
        NamedStyle(
            name="vop_total_label",
            font=Font(bold=True),
            alignment=Alignment(horizontal="left", vertical="top"),
        ),
        NamedStyle(name="vop_count", number_format="#,##0", alignment=right),
        NamedStyle(name="vop_pct", number_format="0.0%", alignment=right),
        NamedStyle(name="vop_mean", number_format="0.00", alignment=right),
        NamedStyle(name="vop_marker", alignment=right, font=Font(color="7F7F7F")),
        NamedStyle(
            name="vop_note",
            font=Font(italic=True, size=9, color="404040"),
            alignment=Alignment(wrap_text=False, vertical="top"),
        ),
        NamedStyle(
            name="vop_narrative",
            fill=PatternFill("solid", fgColor="FFF2CC"),
            border=Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN),
            alignment=Alignment(wrap_text=True, vertical="top"),
            # Narrative cells are the only ones a user is meant to type in.
            protection=Protection(locked=False),
        ),
        NamedStyle(name="vop_text", alignment=Alignment(horizontal="left", vertical="top", wrap_text=True)),
    ]


def new_workbook() -> Workbook:
    """An empty workbook with the ``vop_*`` named styles registered (and its default sheet removed)."""
    wb = Workbook()
    wb.remove(wb.active)
    for style in _styles():
        wb.add_named_style(style)
    return wb


def software_version() -> str:
    """The installed vop version written on every workbook ("unknown" when not installed)."""
    try:
        return importlib.metadata.version("vop")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def to_bytes(wb: Workbook) -> bytes:
    """Serialise a workbook to xlsx bytes."""
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()


def naive_local(moment: dt.datetime, tz: dt.tzinfo = LONDON) -> dt.datetime:
    """A datetime openpyxl accepts: aware values become naive wall-clock time in ``tz``.

    openpyxl rejects aware datetimes ("Excel does not support timezones"); the reader of a return thinks
    in UK local time, so convert rather than drop the offset.
    """
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(tz).replace(tzinfo=None)


def set_text(cell: Cell, value: Any) -> Cell:
    """Write text that must stay text: openpyxl stores any string starting with '=' as a formula, and
    a group label from a provider's system is not to be trusted as one."""
    cell.value = value
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"
    return cell


@dataclass
class SheetWriter:
    """Writes title, tables and notes down one worksheet, keeping what page setup needs."""

    ws: Worksheet
    comment_suppressed: bool = True
    row: int = 1
    first_header_row: int | None = None
    title_rows: int = 0
    tables: int = 0
    suppressed_cells: int = 0
    markers_used: set[str] = field(default_factory=set)
    widths: dict[int, float] = field(default_factory=dict)

    def title(self, text: str, subtitle: str | None = None) -> None:
        """Sheet title in A1 and an optional subtitle under it."""
        self.ws.cell(self.row, 1, text).style = "vop_title"
        self.row += 1
        if subtitle:
            self.ws.cell(self.row, 1, subtitle).style = "vop_subtitle"
            self.row += 1
        self.title_rows = self.row - 1
        self.row += 1

    def _width(self, col: int, text: str, cap: float = 48) -> None:
        longest = max((len(part) for part in text.split("\n")), default=0)
        self.widths[col] = min(cap, max(self.widths.get(col, 8.0), longest + 2))

    def value(self, row: int, col: int, value: Any, kind: Kind) -> Cell:
        """Write one figure with its style; markers and None become the GSS shorthand."""
        cell = self.ws.cell(row, col)
        if value is None:
            cell.value = NOT_APPLICABLE
            cell.style = "vop_marker"
            self.markers_used.add(NOT_APPLICABLE)
        elif isinstance(value, str) and value in (SUPPRESSED, NOT_AVAILABLE, NOT_APPLICABLE):
            cell.value = value
            cell.style = "vop_marker"
            self.markers_used.add(value)
            if value == SUPPRESSED:
                self.suppressed_cells += 1
                if self.comment_suppressed:
                    # Same words on every [c]: saying which were hidden only as secondary would tell a
                    # reader those are the larger ones.
                    cell.comment = Comment(SUPPRESSED_NOTE, "vop", width=260, height=90)
        elif kind == "text":
            set_text(cell, value)
            cell.style = "vop_label"
        elif kind in ("pct", "share"):
            # Engine percentages are 0-100; Excel formats fractions, so divide once here.
            cell.value = value / 100 if kind == "pct" else value
            cell.style = "vop_pct"
        elif kind == "mean":
            cell.value = value
            cell.style = "vop_mean"
        else:
            cell.value = value
            cell.style = "vop_count"
        return cell

    def table(
        self,
        title: str | None,
        headers: Sequence[str],
        rows: Sequence[tuple[str, Sequence[tuple[Any, Kind]], bool]],
        note: str | None = None,
    ) -> tuple[int, int, int]:
        """Write a table: ``rows`` are (label, [(value, kind)...], is_total). Returns (header row, first
        data row, last data row)."""
        if title:
            self.ws.cell(self.row, 1, title).style = "vop_table_title"
            self.row += 1
        header_row = self.row
        self.tables += 1
        if self.first_header_row is None:
            self.first_header_row = header_row
        for c, text in enumerate(headers, start=1):
            self.ws.cell(header_row, c, text).style = "vop_header"
            self._width(c, text if c == 1 else "", 48)
            if c > 1:
                # Headers wrap, so data columns stay narrow; long words still need room.
                self.widths[c] = max(
                    self.widths.get(c, 8.0), min(16.0, max(len(w) for w in text.split()) + 2)
                )
        self.ws.row_dimensions[header_row].height = 45
        first = header_row + 1
        r = first
        for label, values, is_total in rows:
            label_cell = set_text(self.ws.cell(r, 1), label)
            label_cell.style = "vop_total_label" if is_total else "vop_label"
            self._width(1, str(label))
            for c, (v, kind) in enumerate(values, start=2):
                self.value(r, c, v, kind)
            r += 1
        self.row = r
        if note:
            self.ws.cell(self.row, 1, note).style = "vop_note"
            self.row += 1
        self.row += 1
        return header_row, first, r - 1

    def chart_series(
        self, col: int, header_row: int, title: str, values: Sequence[tuple[Any, Kind]]
    ) -> Reference:
        """Write a chart's numbers into a hidden column and return their reference (title included).

        Charts read cells, and a spreadsheet plots the text ``[c]`` as 0: a suppressed or missing figure
        must be a gap, not a fall to zero. So the chart reads a hidden copy with blanks in those places.
        """
        self.ws.cell(header_row, col, title)
        for i, (v, kind) in enumerate(values, start=1):
            number = None
            if isinstance(v, int | float) and not isinstance(v, bool):
                number = v / 100 if kind == "pct" else v
            cell = self.ws.cell(header_row + i, col, number)
            cell.number_format = "0.0%" if kind in ("pct", "share") else "General"
        self.ws.column_dimensions[get_column_letter(col)].hidden = True
        return Reference(self.ws, min_col=col, min_row=header_row, max_row=header_row + len(values))

    def note(self, text: str) -> None:
        """A note line under the tables."""
        self.ws.cell(self.row, 1, text).style = "vop_note"
        self.row += 1

    def finish(self, *, landscape: bool = True, protect: bool = True, freeze_col: int = 2) -> None:
        """Footnotes for the markers used, column widths, frozen header, print setup and protection."""
        if SUPPRESSED in self.markers_used:
            self.note(SUPPRESSED_NOTE)
        if self.markers_used - {SUPPRESSED}:
            self.note(SHORTHAND_NOTE)
        for col, width in self.widths.items():
            dim = self.ws.column_dimensions[get_column_letter(col)]
            if not dim.hidden:
                dim.width = width
        if self.first_header_row is not None:
            # One table: its header stays in view and on every printed page. Several stacked tables:
            # the first table's header would mislabel the others, so the sheet's title block stays
            # instead.
            top = self.first_header_row if self.tables == 1 else self.title_rows
            if top:
                self.ws.freeze_panes = self.ws.cell(top + 1, freeze_col)
                self.ws.print_title_rows = f"1:{top}" if self.tables != 1 else f"{top}:{top}"
            self.ws.print_title_cols = "A:A"
        setup_page(self.ws, landscape=landscape)
        if protect:
            protect_sheet(self.ws)


def setup_page(ws: Worksheet, *, landscape: bool = True) -> None:
    """A4 landscape, fitted to one page wide (any number of pages tall)."""
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.gridLines = False


def protect_sheet(ws: Worksheet) -> None:
    """Lock computed cells against accidental edits; users may still resize, sort and filter.

    No password: this guards the figures from slips, it is not a security boundary.
    """
    ws.protection.sheet = True
    ws.protection.formatColumns = False
    ws.protection.formatRows = False
    ws.protection.selectLockedCells = False
    ws.protection.selectUnlockedCells = False


def figure(metrics: Mapping[str, Any], metric: str, fld: str | None) -> tuple[Any, Kind]:
    """One published figure and how to format it; ``[x]`` when the metric was not supplied."""
    if metric not in metrics:
        return NOT_AVAILABLE, "count"
    value = metrics[metric]
    if isinstance(value, Mapping):
        part = fld or "pct"
        if part in ("numerator", "denominator"):
            return value.get(part), "count"
        if part == "pct":
            return value.get("pct"), "pct"
        if part in ("ci_lo", "ci_hi"):
            ci = value.get("ci95")
            if ci is None or ci == SUPPRESSED:
                return ci, "pct"
            return ci[0 if part == "ci_lo" else 1], "pct"
        raise ValueError(f"field {part!r} does not apply to rate {metric!r}")
    if fld not in (None, "value"):
        raise ValueError(f"field {fld!r} does not apply to {metric!r} (not a rate)")
    if isinstance(value, float) or (value is None and metric.startswith("mean_")):
        return value, "mean"
    return value, "count"


def share(count: Any, total: Any) -> tuple[Any, Kind]:
    """A count as a fraction of a total; hidden when the count is (a shown total would give it back)."""
    if count == SUPPRESSED:
        return SUPPRESSED, "share"
    if not isinstance(count, int) or not isinstance(total, int) or total == 0:
        return None, "share"
    return count / total, "share"
