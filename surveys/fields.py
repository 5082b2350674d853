"""The columns of data-formats.md and how each text value is read, shared by file imports and the API.

A reader either returns the typed value or raises FieldError(reason). Readers work on text because both
CSV and XLSX cells and JSON bodies are brought to text first: one set of rules, one set of messages.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

SERVICES = ("general", "sav", "cse", "da", "hate", "other")
ORG_KINDS = ("provider", "commissioner")
SOURCES = ("police", "self", "agency", "other")
CRIME_TYPES = (
    "violence_with_injury", "violence_without_injury", "stalking_harassment", "homicide", "rape",
    "other_sexual", "robbery", "burglary_residential", "burglary_business", "vehicle", "theft_person",
    "theft_other", "criminal_damage_arson", "fraud_cyber", "hate_incident", "asb", "road_traffic", "cse",
    "other",
)  # fmt: skip
AGE_BANDS = ("0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown")
SEXES = ("female", "male", "unknown")
ETHNICITIES = ("asian", "black", "mixed", "white", "other", "unknown")
DISABILITIES = ("yes", "no", "unknown")
STATUSES = ("referred", "contacted", "declined", "uncontactable", "out_of_scope", "supported", "closed")
CHANNELS = ("email", "sms", "phone", "none")
ROLES = ("provider", "opcc", "vrg", "admin")

ORG_CODE_RE = re.compile(r"^[A-Za-z0-9-]{1,20}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?[0-9 ()-]{7,20}$")


class FieldError(ValueError):
    """A value that breaks the format; the message is the reason shown to the person importing."""


# A reader is called on one cell's text (the API, and the slow path of an import). Most also read a whole
# column at once through `.column(cells)`: C-level passes (a dict lookup per cell, a check of each
# distinct value) instead of a Python call per cell, which is what lets a year of referrals validate in a
# fraction of a second. `column` receives cells already stripped of surrounding whitespace (as imports
# strip them) and returns values equal to `[reader(cell) for cell in cells]` (possibly the list it was
# given), or None when any cell is bad: the import then reads that column cell by cell, so that every bad
# cell is named with the reader's own message. Rules and messages live only in `__call__`; `column` only
# accepts what `__call__` accepts.


class _Enum:
    """One word of a fixed list."""

    __slots__ = ("allowed", "shown")

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = {word: word for word in allowed}
        self.shown = ", ".join(allowed)

    def __call__(self, raw: str) -> str:
        if raw not in self.allowed:
            shown = self.shown
            raise FieldError(f"{raw!r} is not one of: {shown}" if raw else f"is required (one of: {shown})")
        return raw

    def column(self, cells: list[str]) -> list[str] | None:
        # The list's own words rather than the cells, so that a file's cells are freed once read.
        try:
            return list(map(self.allowed.__getitem__, cells))
        except KeyError:
            return None


def read_enum(allowed: tuple[str, ...]) -> Callable[[str], str]:
    return _Enum(allowed)


_BOOLS = {"true": True, "false": False}


class _Bool:
    """`true` or `false`."""

    __slots__ = ()

    def __call__(self, raw: str) -> bool:
        if raw in _BOOLS:
            return _BOOLS[raw]
        raise FieldError(f"{raw!r} must be true or false" if raw else "is required (true or false)")

    def column(self, cells: list[str]) -> list[bool] | None:
        try:
            return list(map(_BOOLS.__getitem__, cells))
        except KeyError:
            return None


read_bool = _Bool()

# fromisoformat alone also takes other ISO 8601 forms of ten characters (2025-W01-1 is 2024-12-30).
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@lru_cache(maxsize=4096)  # a file repeats a few hundred dates in every block of rows it is read by
def _iso_date(raw: str) -> dt.date:
    """The date of YYYY-MM-DD text; ValueError for any other text."""
    if not _DATE_RE.fullmatch(raw):
        raise ValueError(raw)
    return dt.date.fromisoformat(raw)


class _Date:
    """A date YYYY-MM-DD; when optional, empty is None."""

    __slots__ = ("optional",)

    def __init__(self, *, optional: bool) -> None:
        self.optional = optional

    def __call__(self, raw: str) -> dt.date | None:
        if not raw:
            if self.optional:
                return None
            raise FieldError("is required (a date YYYY-MM-DD)")
        try:
            return _iso_date(raw)
        except ValueError:
            raise FieldError(f"{raw!r} is not a date in the form YYYY-MM-DD") from None

    def column(self, cells: list[str]) -> list[dt.date | None] | None:
        # A column holds a few hundred distinct dates: each is parsed once, then looked up.
        dates: dict[str, dt.date | None] = {}
        try:
            for raw in set(cells):
                dates[raw] = self(raw)
        except FieldError:
            return None
        return list(map(dates.__getitem__, cells))


read_date = _Date(optional=False)
read_optional_date = _Date(optional=True)


class _Text:
    """Required free text of at most `max_length` characters, trimmed."""

    __slots__ = ("max_length",)

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def __call__(self, raw: str) -> str:
        if not raw.strip():
            raise FieldError("is required")
        if len(raw) > self.max_length:
            raise FieldError(f"is longer than {self.max_length} characters")
        return raw.strip()

    def column(self, cells: list[str]) -> list[str] | None:
        if all(cells) and max(map(len, cells), default=0) <= self.max_length:
            return cells
        return None


def read_text(max_length: int) -> Callable[[str], str]:
    return _Text(max_length)


class _OrgCode:
    """An organisation code: 1-20 letters, digits or '-'."""

    __slots__ = ()

    def __call__(self, raw: str) -> str:
        if not ORG_CODE_RE.match(raw):
            raise FieldError(
                f"{raw!r} is not a code of 1-20 letters, digits or '-'" if raw else "is required"
            )
        return raw

    def column(self, cells: list[str]) -> list[str] | None:
        # A file names a handful of organisations: each distinct code is checked once (and kept once).
        codes = {code: code for code in set(cells)}
        return list(map(codes.__getitem__, cells)) if all(map(ORG_CODE_RE.match, codes)) else None


read_org_code = _OrgCode()


class _Contact:
    """An optional email address or phone number; empty is None. The value itself is never echoed in a
    message: it is personal data."""

    __slots__ = ("max_length", "pattern", "reason")

    def __init__(self, pattern: re.Pattern[str], reason: str, max_length: int | None = None) -> None:
        self.pattern, self.reason, self.max_length = pattern, reason, max_length

    def __call__(self, raw: str) -> str | None:
        if not raw:
            return None
        if (self.max_length is not None and len(raw) > self.max_length) or not self.pattern.match(raw):
            raise FieldError(self.reason)
        return raw

    def column(self, cells: list[str]) -> list[str | None] | None:
        present = list(filter(None, cells))
        if self.max_length is not None and max(map(len, present), default=0) > self.max_length:
            return None
        if not all(map(self.pattern.match, present)):
            return None
        return [cell or None for cell in cells]


read_email = _Contact(EMAIL_RE, "is not an email address", max_length=254)
read_phone = _Contact(PHONE_RE, "is not a phone number")


ORGANISATION_READERS: dict[str, Callable[[str], Any]] = {
    "code": read_org_code,
    "name": read_text(200),
    "kind": read_enum(ORG_KINDS),
    "service": lambda raw: read_enum(SERVICES)(raw) if raw else None,
}

REFERRAL_READERS: dict[str, Callable[[str], Any]] = {
    "provider": read_org_code,
    "referral_id": read_text(100),
    "person_id": read_text(200),
    "referral_date": read_date,
    "source": read_enum(SOURCES),
    "crime_type": read_enum(CRIME_TYPES),
    "domestic_abuse": read_bool,
    "hate_crime": read_bool,
    "repeat_victim": read_bool,
    "age_band": read_enum(AGE_BANDS),
    "sex": read_enum(SEXES),
    "ethnicity": read_enum(ETHNICITIES),
    "disability": read_enum(DISABILITIES),
    "status": read_enum(STATUSES),
    "support_start": read_optional_date,
    "support_end": read_optional_date,
    "contact_email": read_email,
    "contact_phone": read_phone,
    "preferred_channel": read_enum(CHANNELS),
    "safe_to_contact": read_bool,
    "consent_to_survey": read_bool,
}

# Columns a file may leave out: optional values. Every other column must be present.
REFERRAL_OPTIONAL = frozenset({"support_start", "support_end", "contact_email", "contact_phone"})
ORGANISATION_OPTIONAL = frozenset({"service"})


def check_organisation(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Rules across columns of an organisation: (column, reason) for each one broken."""
    if values.get("kind") == "provider" and not values.get("service"):
        return [("service", "is required for a provider")]
    if values.get("kind") == "commissioner" and values.get("service"):
        return [("service", "must be empty for a commissioner")]
    return []


def check_referral(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules across columns of a referral: (column, reason) for each one broken."""
    one = {name: [values.get(name)] for name in ("support_start", "support_end")}
    return [(column, reason) for _, column, reason in check_referral_columns(one)]


def check_referral_columns(columns: Mapping[str, Sequence[Any]]) -> list[tuple[int, str, str]]:
    """The referral rules over whole columns (a file import): (index, column, reason) for each one broken.

    The one definition of the rules: check_referral runs a single row through it.
    """
    problems: list[tuple[int, str, str]] = []
    for index, (start, end) in enumerate(zip(columns["support_start"], columns["support_end"], strict=True)):
        if end is None:
            continue  # every rule is about an end date
        if start is None:
            problems.append((index, "support_end", "is set but support_start is empty"))
        elif end < start:
            problems.append(
                (index, "support_end", f"{end.isoformat()} is before support_start {start.isoformat()}")
            )
    return problems
