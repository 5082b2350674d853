"""Reporting periods: UK financial years (April to March), halves, quarters and any date range.

Codes (metrics.md): `2025-26` (2025-04-01 .. 2026-03-31), `2025-26-H1` / `-H2` (Apr-Sep / Oct-Mar),
`2025-26-Q1` .. `-Q4` (Apr-Jun, Jul-Sep, Oct-Dec, Jan-Mar), `2025-07-01..2025-09-30` (inclusive).
Both end days are inside the period; dates are calendar dates, never times of day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_YEAR = re.compile(r"^(\d{4})-(\d{2})(?:-(H[12]|Q[1-4]))?$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
# First month (of the financial year, April = 0) and length in months of each part.
_PARTS: dict[str | None, tuple[int, int]] = {
    None: (0, 12),
    "H1": (0, 6),
    "H2": (6, 6),
    "Q1": (0, 3),
    "Q2": (3, 3),
    "Q3": (6, 3),
    "Q4": (9, 3),
}
_FORMATS = "2025-26, 2025-26-H1, 2025-26-H2, 2025-26-Q1 .. 2025-26-Q4 or 2025-07-01..2025-09-30"


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period: its code and its first and last day (both inclusive)."""

    code: str
    start: date
    end: date

    def as_dict(self) -> dict[str, str]:
        """The JSON shape of the API: code and ISO dates."""
        return {"code": self.code, "start": self.start.isoformat(), "end": self.end.isoformat()}

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


def _month_start(fy: int, offset: int) -> date:
    """First day of the month `offset` months after April of financial year `fy`."""
    month0 = 3 + offset  # April is month index 3 (0-based)
    return date(fy + month0 // 12, month0 % 12 + 1, 1)


def _fy_code(fy: int) -> str:
    return f"{fy}-{(fy + 1) % 100:02d}"


def _financial(fy: int, part: str | None) -> Period:
    first, months = _PARTS[part]
    start = _month_start(fy, first)
    end = _month_start(fy, first + months) - timedelta(days=1)
    code = _fy_code(fy) + (f"-{part}" if part else "")
    return Period(code, start, end)


def _iso(text: str, code: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"period {code!r}: {text!r} is not a real calendar date (YYYY-MM-DD)") from None


def parse_period(code: str) -> Period:
    """Parse a period code; raises ValueError naming the accepted forms when the code is not one."""
    if not isinstance(code, str):
        raise ValueError(f"a period code is text, got {type(code).__name__}")
    text = code.strip()
    if m := _RANGE.match(text):
        start, end = _iso(m.group(1), text), _iso(m.group(2), text)
        if end < start:
            raise ValueError(f"period {text!r}: the end {end} is before the start {start}")
        return Period(f"{start.isoformat()}..{end.isoformat()}", start, end)
    if m := _YEAR.match(text):
        fy, tail = int(m.group(1)), int(m.group(2))
        if tail != (fy + 1) % 100:
            raise ValueError(
                f"period {text!r}: a financial year runs April to March, so {fy} is followed by "
                f"{(fy + 1) % 100:02d} (write {_fy_code(fy)})"
            )
        return _financial(fy, m.group(3))
    raise ValueError(f"unknown period {code!r}; write one of {_FORMATS}")


def _quarter_of(day: date) -> Period:
    fy = day.year if day.month >= 4 else day.year - 1
    index = ((day.month - 4) % 12) // 3 + 1
    return _financial(fy, f"Q{index}")


def previous_period(period: Period | str) -> Period:
    """The period of the same kind just before: previous year, half or quarter; for a date range, the
    same number of whole months before it when it spans whole months, else the same number of days."""
    p = parse_period(period) if isinstance(period, str) else period
    if m := _YEAR.match(p.code):
        fy, part = int(m.group(1)), m.group(3)
        if part is None:
            return _financial(fy - 1, None)
        kind, index = part[0], int(part[1])
        if index > 1:
            return _financial(fy, f"{kind}{index - 1}")
        return _financial(fy - 1, f"{kind}{4 if kind == 'Q' else 2}")
    if p.start.day == 1 and (p.end + timedelta(days=1)).day == 1:
        # Whole calendar months: the same number of months before (Jul-Sep -> Apr-Jun), not of days.
        months = (p.end.year - p.start.year) * 12 + p.end.month - p.start.month + 1
        index = p.start.year * 12 + p.start.month - 1 - months
        start = date(index // 12, index % 12 + 1, 1)
        end = p.start - timedelta(days=1)
        return Period(f"{start.isoformat()}..{end.isoformat()}", start, end)
    length = (p.end - p.start).days + 1
    end = p.start - timedelta(days=1)
    start = end - timedelta(days=length - 1)
    return Period(f"{start.isoformat()}..{end.isoformat()}", start, end)


def last_quarters(period: Period | str, count: int) -> list[Period]:
    """The `count` quarters ending with the one that holds the period's last day, oldest first."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    p = parse_period(period) if isinstance(period, str) else period
    quarters = [_quarter_of(p.end)]
    while len(quarters) < count:
        quarters.append(previous_period(quarters[-1]))
    return quarters[::-1]
