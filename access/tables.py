"""Tables of access: API keys (stored hashed) and the append-only audit trail."""

from __future__ import annotations

from piccolo.columns import ForeignKey, OnDelete, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from surveys.tables import Organisation


class ApiKey(Table):
    """An API key bound to one organisation and one role; only its SHA-256 is stored."""

    organisation = ForeignKey(references=Organisation, on_delete=OnDelete.restrict, null=False)
    role = Varchar(length=20, null=False)  # provider | opcc | vrg | admin
    key_hash = Varchar(length=64, null=False, unique=True)
    prefix = Varchar(length=16, null=False)  # shown in listings so a key can be recognised, never used
    label = Varchar(length=200, null=False, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class AuditEvent(Table):
    """Who did what to which record, when (UTC). Never holds answers or contact details."""

    at = Timestamptz(default=TimestamptzNow(), index=True)
    actor = Varchar(length=100, null=False)  # "key:<prefix>", "cli", "survey-link", "anonymous"
    role = Varchar(length=20, null=False, default="")
    organisation = Varchar(length=20, null=False, default="")
    action = Varchar(length=60, null=False, index=True)
    subject_type = Varchar(length=40, null=False, default="")
    subject_id = Varchar(length=100, null=False, default="")
    client = Varchar(length=64, null=False, default="")
    detail = Text(null=False, default="{}")
