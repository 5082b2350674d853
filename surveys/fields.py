"""The columns of data-formats.md and how each text value is read, shared by file imports and the API.

A reader either returns the typed value or raises FieldError(reason). Readers work on text because both
CSV and XLSX cells and JSON bodies are brought to text first: one set of rules, one set of messages.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
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


def read_enum(allowed: tuple[str, ...]) -> Callable[[str], str]:
    allowed_set = frozenset(allowed)
    shown = ", ".join(allowed)

    def read(raw: str) -> str:
        if raw not in allowed_set:
            raise FieldError(f"{raw!r} is not one of: {shown}" if raw else f"is required (one of: {shown})")
        return raw

    return read


def read_bool(raw: str) -> bool:
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise FieldError(f"{raw!r} must be true or false" if raw else "is required (true or false)")


def read_date(raw: str) -> dt.date:
    if not raw:
        raise FieldError("is required (a date YYYY-MM-DD)")
    try:
        if len(raw) != 10:
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise FieldError(f"{raw!r} is not a date in the form YYYY-MM-DD") from None


def read_optional_date(raw: str) -> dt.date | None:
    return read_date(raw) if raw else None


def read_text(max_length: int) -> Callable[[str], str]:
    def read(raw: str) -> str:
        if not raw.strip():
            raise FieldError("is required")
        if len(raw) > max_length:
            raise FieldError(f"is longer than {max_length} characters")
        return raw.strip()

    return read


def read_org_code(raw: str) -> str:
    if not ORG_CODE_RE.match(raw):
        raise FieldError(f"{raw!r} is not a code of 1-20 letters, digits or '-'" if raw else "is required")
    return raw


def read_email(raw: str) -> str | None:
    if not raw:
        return None
    if len(raw) > 254 or not EMAIL_RE.match(raw):
        raise FieldError("is not an email address")  # the value itself is never echoed: personal data
    return raw


def read_phone(raw: str) -> str | None:
    if not raw:
        return None
    if not PHONE_RE.match(raw):
        raise FieldError("is not a phone number")
    return raw


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


def check_referral(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Rules across columns of a referral: (column, reason) for each one broken."""
    problems: list[tuple[str, str]] = []
    start, end = values.get("support_start"), values.get("support_end")
    if end is not None and start is None:
        problems.append(("support_end", "is set but support_start is empty"))
    elif start is not None and end is not None and end < start:
        problems.append(("support_end", f"{end.isoformat()} is before support_start {start.isoformat()}"))
    return problems
