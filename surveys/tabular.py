"""Reading an uploaded CSV or XLSX file into a header and rows of text, refusing what is not a clean table.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first record row 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat

MAX_FILE_BYTES = 100 * 1024 * 1024
XLSX_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a file is rejected: where (row, column) and why."""

    row: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "column": self.column, "reason": self.reason}


class FileRejected(ValueError):
    """The file as a whole, or some of its rows, break the format; nothing of it was stored."""

    def __init__(self, problems: list[Problem], total: int | None = None) -> None:
        self.problems = problems
        self.total = total if total is not None else len(problems)
        super().__init__(f"{self.total} problem(s); first: row {problems[0].row} {problems[0].reason}")


BLOCK_ROWS = 2_000


@dataclass(frozen=True, slots=True)
class Table:
    """A file's header and record rows; importers read the cells a column at a time, by blocks of rows.

    Blank rows are left out (and keep their number). Cells come out as text with surrounding whitespace
    removed; a row shorter than the header has "" for its missing cells, and a row with text beyond the
    header is listed in `overlong`.

    A plain CSV keeps each row as its line of text, split into cells only when its block is read: a
    block's cells fit in the processor's cache while they are checked, and the ones not kept as values
    are freed block by block instead of all being held at once (a 100 MB file has millions of cells).
    """

    header: list[str]
    numbers: list[int]  # the spreadsheet row number of each record row
    lines: list[str] = field(default_factory=list)  # plain CSV: each record row's line of text
    rows: list[list[str]] = field(default_factory=list)  # any other file: each record row's cells
    trim: bool = True  # whether a cell may have whitespace around it
    overlong: list[tuple[int, int]] = field(default_factory=list)  # (record index, number of cells)

    @property
    def size(self) -> int:
        return len(self.numbers)

    def blocks(self, size: int = BLOCK_ROWS) -> Iterator[tuple[int, list[list[str]]]]:
        """(index of its first row, the cells of each column in header order) of consecutive blocks of
        `size` rows."""
        width = len(self.header)
        for start in range(0, self.size, size):
            if self.lines:
                cells = ",".join(self.lines[start : start + size]).split(",")
                columns = [cells[position::width] for position in range(width)]
            else:
                columns = [list(column) for column in zip(*self.rows[start : start + size], strict=True)]
            yield start, [list(map(str.strip, column)) for column in columns] if self.trim else columns

    @property
    def columns(self) -> list[list[str]]:
        """Every column whole (small files, and tests)."""
        whole: list[list[str]] = [[] for _ in self.header]
        for _, block in self.blocks():
            for column, cells in zip(whole, block, strict=True):
                column += cells
        return whole


def _whole_file(reason: str) -> FileRejected:
    return FileRejected([Problem(row=0, column="", reason=reason)])


def read_table(data: bytes, filename: str = "") -> Table:
    """Header and rows of a CSV (UTF-8) or XLSX file (one sheet, values not formulas)."""
    if not data or not data.strip():
        raise _whole_file("the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise _whole_file(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it")
    if data.startswith(XLSX_MAGIC) or filename.lower().endswith(".xlsx"):
        table = _read_xlsx(data)
    else:
        table = _read_csv(data)
    if not table.header or not any(table.header):
        raise _whole_file("the file has no header row")
    if not table.numbers:
        raise _whole_file("the file has a header but no rows")
    return table


def _from_rows(header: list[str], rows: list[list[str]], numbers: list[int]) -> Table:
    """A Table from rows of raw cells (blank rows already left out)."""
    width = len(header)
    overlong: list[tuple[int, int]] = []
    if set(map(len, rows)) - {width}:  # ragged rows are rare: a file edited by hand
        overlong = [
            (index, len(row))
            for index, row in enumerate(rows)
            if len(row) > width and any(cell.strip() for cell in row[width:])
        ]
        rows = [row + [""] * (width - len(row)) if len(row) < width else row[:width] for row in rows]
    return Table(header=header, numbers=numbers, rows=rows, overlong=overlong)


def _read_csv(data: bytes) -> Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _whole_file(
            f"the file is not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8' and try again"
        ) from None
    return _read_plain_csv(text) or _read_quoted_csv(text)


def _read_quoted_csv(text: str) -> Table:
    """Any CSV, through the csv module."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
        rows = list(reader)
    except StopIteration:
        raise _whole_file("the file is empty") from None
    except csv.Error as exc:
        raise _whole_file(f"the CSV is malformed: {exc}") from None
    # Blank rows (no cells, or only spaces and commas) are skipped; C-level maps, not a Python loop per row.
    filled = list(map(str.strip, map("".join, rows)))
    if all(filled):
        return _from_rows(header, rows, list(range(2, len(rows) + 2)))
    kept = [(n, row) for n, (row, content) in enumerate(zip(rows, filled, strict=True), 2) if content]
    return _from_rows(header, [row for _, row in kept], [n for n, _ in kept])


# The whitespace str.strip() removes among ASCII characters, besides the space and the line end.
_OTHER_ASCII_SPACE = ("\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")
# A space ending a cell (before a comma or a line end) or starting one (after either).
_PADDING = re.compile(r" (?:(?=[,\r\n])|(?<=[,\n] ))")


def _read_plain_csv(text: str) -> Table | None:
    """The usual export (no quotes, one kind of line end, every row as wide as the header) read with str
    methods; the same table as the csv module gives, in a fraction of the time and memory. None for any
    other file, which _read_quoted_csv then reads.
    """
    if '"' in text:
        return None
    lines = text.split("\r\n")
    if not len(lines) - 1 == text.count("\r") == text.count("\n"):  # not Windows line ends throughout
        if "\r" in text:
            return None  # lone CRs (they end lines too), or mixed line ends
        lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the file's last line end
    if not lines or not lines[0]:
        return None  # an empty first line: left to the csv module
    header = [h.strip() for h in lines[0].split(",")]
    width = len(header)
    rows = lines[1:]
    numbers = list(range(2, len(rows) + 2))
    # Could a cell start or end with whitespace? Exact for ASCII text (the usual export), else assumed.
    if not text.isascii() or any(space in text for space in _OTHER_ASCII_SPACE):
        trim = True
    else:
        trim = bool(_PADDING.search(text)) or text[:1] == " " or text[-1:] == " "
    # Blank rows (nothing but spaces and commas) are skipped but keep their number. Untrimmed, a blank row
    # is an empty line or as many commas as the header has; one of any other width is ragged (below).
    if trim or "" in rows or "," * (width - 1) in rows:
        filled = list(map(str.strip, map(str.replace, rows, repeat(","), repeat(""))))
        if not all(filled):
            kept = [(n, row) for n, (row, content) in enumerate(zip(rows, filled, strict=True), 2) if content]
            rows, numbers = [row for _, row in kept], [n for n, _ in kept]
    if set(map(str.count, rows, repeat(","))) - {width - 1}:
        return None  # ragged rows
    return Table(header=header, numbers=numbers, lines=rows, trim=trim)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_xlsx(data: bytes) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # openpyxl raises many types for a damaged file
        raise _whole_file("the file is not a readable XLSX workbook") from None
    try:
        if len(book.sheetnames) != 1:
            raise _whole_file(
                f"the workbook has {len(book.sheetnames)} sheets ({', '.join(book.sheetnames)}); "
                "keep only the sheet to import"
            )
        sheet = book[book.sheetnames[0]]
        values = sheet.iter_rows(values_only=True)
        try:
            header = [_cell_text(v) for v in next(values)]
        except StopIteration:
            raise _whole_file("the file is empty") from None
        while header and header[-1] == "":
            header.pop()
        rows: list[list[str]] = []
        numbers: list[int] = []
        for number, raw in enumerate(values, start=2):
            cells = [_cell_text(v) for v in raw[: len(header)]]
            for index, cell in enumerate(cells):
                if cell.startswith("="):
                    raise FileRejected([Problem(number, header[index], "is a formula; paste values only")])
            if any(cells):
                rows.append(cells + [""] * (len(header) - len(cells)))
                numbers.append(number)
        return _from_rows(header, rows, numbers)
    finally:
        book.close()
