"""API shapes of the surveys domain: explicit msgspec Structs, separate from the tables."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from litestar.params import PathParameter

# A row id in a path. Ids beyond a 32-bit integer cannot exist, and PostgreSQL refuses them with an
# error, so they are refused here first (400).
RowId = Annotated[int, PathParameter(ge=1, le=2_147_483_647)]

Service = Literal["general", "sav", "cse", "da", "hate", "other"]
Source = Literal["police", "self", "agency", "other"]
CrimeType = Literal[
    "violence_with_injury", "violence_without_injury", "stalking_harassment", "homicide", "rape",
    "other_sexual", "robbery", "burglary_residential", "burglary_business", "vehicle", "theft_person",
    "theft_other", "criminal_damage_arson", "fraud_cyber", "hate_incident", "asb", "road_traffic", "cse",
    "other",
]  # fmt: skip
AgeBand = Literal["0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"]
Sex = Literal["female", "male", "unknown"]
Ethnicity = Literal["asian", "black", "mixed", "white", "other", "unknown"]
Disability = Literal["yes", "no", "unknown"]
Status = Literal["referred", "contacted", "declined", "uncontactable", "out_of_scope", "supported", "closed"]
Channel = Literal["email", "sms", "phone", "none"]
Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,20}$", description="organisation code")]
ReferralId = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]


class OrganisationRead(msgspec.Struct):
    code: str
    name: str
    kind: Literal["provider", "commissioner"]
    service: Service | None


class ReferralCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A referral as a provider sends it; `person_id` is hashed on arrival and never stored."""

    provider: Code
    referral_id: ReferralId
    person_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
    referral_date: dt.date
    source: Source
    crime_type: CrimeType
    status: Status
    domestic_abuse: bool = False
    hate_crime: bool = False
    repeat_victim: bool = False
    age_band: AgeBand = "unknown"
    sex: Sex = "unknown"
    ethnicity: Ethnicity = "unknown"
    disability: Disability = "unknown"
    support_start: dt.date | None = None
    support_end: dt.date | None = None
    contact_email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    contact_phone: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    preferred_channel: Channel = "none"
    safe_to_contact: bool = False
    consent_to_survey: bool = False


class ReferralUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A partial update: only the fields present change (`null` clears an optional one)."""

    referral_date: dt.date | msgspec.UnsetType = msgspec.UNSET
    source: Source | msgspec.UnsetType = msgspec.UNSET
    crime_type: CrimeType | msgspec.UnsetType = msgspec.UNSET
    status: Status | msgspec.UnsetType = msgspec.UNSET
    domestic_abuse: bool | msgspec.UnsetType = msgspec.UNSET
    hate_crime: bool | msgspec.UnsetType = msgspec.UNSET
    repeat_victim: bool | msgspec.UnsetType = msgspec.UNSET
    age_band: AgeBand | msgspec.UnsetType = msgspec.UNSET
    sex: Sex | msgspec.UnsetType = msgspec.UNSET
    ethnicity: Ethnicity | msgspec.UnsetType = msgspec.UNSET
    disability: Disability | msgspec.UnsetType = msgspec.UNSET
    support_start: dt.date | msgspec.UnsetType | None = msgspec.UNSET
    support_end: dt.date | msgspec.UnsetType | None = msgspec.UNSET
    contact_email: Annotated[str, msgspec.Meta(max_length=254)] | msgspec.UnsetType | None = msgspec.UNSET
    contact_phone: Annotated[str, msgspec.Meta(max_length=20)] | msgspec.UnsetType | None = msgspec.UNSET
    preferred_channel: Channel | msgspec.UnsetType = msgspec.UNSET
    safe_to_contact: bool | msgspec.UnsetType = msgspec.UNSET
    consent_to_survey: bool | msgspec.UnsetType = msgspec.UNSET


class ReferralRead(msgspec.Struct):
    """A referral as the API shows it: contact details only as whether they are held."""

    provider: str
    referral_id: str
    referral_date: dt.date
    source: Source
    crime_type: CrimeType
    status: Status
    domestic_abuse: bool
    hate_crime: bool
    repeat_victim: bool
    age_band: AgeBand
    sex: Sex
    ethnicity: Ethnicity
    disability: Disability
    support_start: dt.date | None
    support_end: dt.date | None
    has_contact_email: bool
    has_contact_phone: bool
    preferred_channel: Channel
    safe_to_contact: bool
    consent_to_survey: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class ReferralPage(msgspec.Struct):
    items: list[ReferralRead]
    total: int
    page: int
    page_size: int


class ImportProblem(msgspec.Struct):
    row: int
    column: str
    reason: str


class ImportSummary(msgspec.Struct):
    rows: int
    created: int
    updated: int


class Health(msgspec.Struct):
    status: Literal["ok"]
    database: str
    version: str


# --- coordinated surveys: schedule, contact history, invitations, call tasks (issue 3) --------------

WaveName = Literal["baseline", "exit", "follow_up"]


class WaveRead(msgspec.Struct):
    """Where one wave of a referral stands (contact_rules.WaveState)."""

    wave: WaveName
    state: Literal["upcoming", "due", "invited", "completed", "expired", "missed", "void", "blocked"]
    due_on: dt.date | None
    last_day: dt.date | None
    reason: str


class ReasonRead(msgspec.Struct):
    code: str
    detail: str


class ReferralSchedule(msgspec.Struct):
    """A referral's waves and what the contact rules say about the person now (across providers)."""

    provider: str
    referral_id: str
    contact_allowed: bool
    channel: str | None
    action: Literal["send_invitation", "send_reminder", "wait", "none"]
    next_check_at: dt.datetime | None
    opted_out: bool
    snoozed_until: dt.datetime | None
    waves: list[WaveRead]
    reasons: list[ReasonRead]
    lang: str = "en"  # the language of the person's messages and survey pages (en or cy)


class ContactEventRead(msgspec.Struct):
    """One line of the contact history: codes and plain sentences, never message text or contacts."""

    at: dt.datetime
    kind: str
    wave: str
    reasons: list[str]
    detail: str
    actor: str
    invitation_id: int | None


class SnoozeCreate(msgspec.Struct, forbid_unknown_fields=True):
    """ "Not now" on the person's behalf: until a date, or for a number of days (one of the two)."""

    until: dt.date | None = None
    days: Annotated[int, msgspec.Meta(ge=1, le=366)] | None = None


class ContactPreferenceRead(msgspec.Struct):
    opted_out: bool
    snoozed_until: dt.datetime | None


class InvitationItemRead(msgspec.Struct):
    provider: str
    referral_id: str
    wave: WaveName


InvitationStatus = Literal["queued", "sent", "completed", "expired", "cancelled", "failed"]


class InvitationRead(msgspec.Struct):
    id: int
    status: InvitationStatus
    channel: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    expires_at: dt.datetime
    completed_at: dt.datetime | None
    reminders_sent: int
    items: list[InvitationItemRead]


class InvitationPage(msgspec.Struct):
    items: list[InvitationRead]
    total: int
    page: int
    page_size: int


CallTaskStatus = Literal["open", "done", "no_answer", "declined", "cancelled", "superseded"]


class CallTaskRead(msgspec.Struct):
    """An assisted invitation: the provider's practitioner calls and completes the survey with the person."""

    id: int
    provider: str
    status: CallTaskStatus
    created_at: dt.datetime
    due_at: dt.datetime
    closed_at: dt.datetime | None
    items: list[InvitationItemRead]


class CallTaskClose(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Literal["done", "no_answer", "declined"]


class PhoneLink(msgspec.Struct):
    """A fresh phone-mode survey link, shown once."""

    url: str
    expires_at: dt.datetime
