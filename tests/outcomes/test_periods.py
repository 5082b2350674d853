"""Period codes of metrics.md: financial years, halves, quarters, ranges."""

from __future__ import annotations

from datetime import date

import pytest

from outcomes.periods import Period, last_quarters, parse_period, previous_period


@pytest.mark.parametrize(
    ("code", "start", "end"),
    [
        ("2025-26", date(2025, 4, 1), date(2026, 3, 31)),
        ("2025-26-H1", date(2025, 4, 1), date(2025, 9, 30)),
        ("2025-26-H2", date(2025, 10, 1), date(2026, 3, 31)),
        ("2025-26-Q1", date(2025, 4, 1), date(2025, 6, 30)),
        ("2025-26-Q2", date(2025, 7, 1), date(2025, 9, 30)),
        ("2025-26-Q3", date(2025, 10, 1), date(2025, 12, 31)),
        ("2025-26-Q4", date(2026, 1, 1), date(2026, 3, 31)),  # Jan-Mar of the next calendar year
        ("1999-00", date(1999, 4, 1), date(2000, 3, 31)),
        ("2023-24-Q4", date(2024, 1, 1), date(2024, 3, 31)),
        ("2025-07-01..2025-09-30", date(2025, 7, 1), date(2025, 9, 30)),
        ("2025-07-01..2025-07-01", date(2025, 7, 1), date(2025, 7, 1)),
    ],
)
def test_parse(code: str, start: date, end: date) -> None:
    p = parse_period(code)
    assert (p.code, p.start, p.end) == (code, start, end)
    assert p.as_dict() == {"code": code, "start": start.isoformat(), "end": end.isoformat()}
    assert start in p and end in p


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("2025-27", "April to March"),
        ("2025-26-Q5", "unknown period"),
        ("2025-26-H3", "unknown period"),
        ("25-26", "unknown period"),
        ("", "unknown period"),
        ("2025-02-30..2025-03-01", "not a real calendar date"),
        ("2025-09-30..2025-07-01", "before the start"),
    ],
)
def test_bad_codes(code: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_period(code)


@pytest.mark.parametrize(
    ("code", "previous"),
    [
        ("2025-26", "2024-25"),
        ("2025-26-H1", "2024-25-H2"),
        ("2025-26-H2", "2025-26-H1"),
        ("2025-26-Q1", "2024-25-Q4"),
        ("2025-26-Q4", "2025-26-Q3"),
        ("2025-07-01..2025-09-30", "2025-04-01..2025-06-30"),
        ("2024-03-01..2024-03-31", "2024-02-01..2024-02-29"),
        ("2025-07-10..2025-07-19", "2025-06-30..2025-07-09"),
        ("2025-01-01..2025-12-31", "2024-01-01..2024-12-31"),
    ],
)
def test_previous(code: str, previous: str) -> None:
    assert previous_period(code).code == previous
    assert previous_period(code) == parse_period(previous)


def test_last_quarters() -> None:
    assert [q.code for q in last_quarters("2025-26", 4)] == [
        "2025-26-Q1",
        "2025-26-Q2",
        "2025-26-Q3",
        "2025-26-Q4",
    ]
    assert [q.code for q in last_quarters("2025-26-Q1", 2)] == ["2024-25-Q4", "2025-26-Q1"]
    assert [q.code for q in last_quarters(parse_period("2025-08-01..2025-11-15"), 1)] == ["2025-26-Q3"]
    with pytest.raises(ValueError):
        last_quarters("2025-26", 0)


def test_period_is_a_value() -> None:
    assert parse_period(" 2025-26 ") == Period("2025-26", date(2025, 4, 1), date(2026, 3, 31))
