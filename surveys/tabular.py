"""Reading an uploaded CSV or XLSX file into a header and rows of text, refusing what is not a clean table.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first record row 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (spreadsheet row number, cells)


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
    if not table.rows:
        raise _whole_file("the file has a header but no rows")
    return table


def _read_csv(data: bytes) -> Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _whole_file(
            f"the file is not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8' and try again"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
        rows = [(number, row) for number, row in enumerate(reader, start=2) if "".join(row).strip()]
    except StopIteration:
        raise _whole_file("the file is empty") from None
    except csv.Error as exc:
        raise _whole_file(f"the CSV is malformed: {exc}") from None
    return Table(header=header, rows=rows)


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
        rows: list[tuple[int, list[str]]] = []
        for number, raw in enumerate(values, start=2):
            cells = [_cell_text(v) for v in raw[: len(header)]]
            for index, cell in enumerate(cells):
                if cell.startswith("="):
                    raise FileRejected([Problem(number, header[index], "is a formula; paste values only")])
            if any(cells):
                rows.append((number, cells + [""] * (len(header) - len(cells))))
        return Table(header=header, rows=rows)
    finally:
        book.close()
