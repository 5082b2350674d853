"""Queries of the surveys domain: organisations and referrals. No HTTP types here.

Scoping: a provider's principal sees and changes only its own organisation's referrals; asking for
another provider's referral is answered exactly as a referral that does not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from access.keys import Principal
from surveys import fields
from surveys.crypto import keyring
from surveys.importing import REFERRAL_DB_COLUMNS, provider_ids
from surveys.schemas import ReferralCreate, ReferralPage, ReferralRead, ReferralUpdate
from surveys.tables import Organisation, Referral


class NotFound(LookupError):
    """No such record, or none the caller may see."""


class Conflict(ValueError):
    """The record already exists."""


class Invalid(ValueError):
    """Field rules broken: a list of (field, reason)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{f}: {r}" for f, r in problems))


def visible_provider(principal: Principal, provider: str | None) -> str | None:
    """The provider filter a caller may use: a provider is held to its own organisation."""
    if principal.role == "provider":
        return principal.organisation_code
    return provider


# Every stored column but the keyed person hash, with the provider as its code.
_READ_COLUMNS = (
    Referral.provider.code.as_alias("provider"),
    *(getattr(Referral, name) for name in REFERRAL_DB_COLUMNS if name not in ("provider", "person_key")),
)


def _read(row: dict[str, Any]) -> ReferralRead:
    row = dict(row)
    row["has_contact_email"] = bool(row.pop("contact_email_enc"))
    row["has_contact_phone"] = bool(row.pop("contact_phone_enc"))
    for flag in ("domestic_abuse", "hate_crime", "repeat_victim", "safe_to_contact", "consent_to_survey"):
        row[flag] = bool(row[flag])
    return msgspec.convert(row, ReferralRead)


async def list_organisations() -> list[dict[str, Any]]:
    return (
        await Organisation.select(
            Organisation.code, Organisation.name, Organisation.kind, Organisation.service
        )
        .order_by(Organisation.code)
        .run()
    )


async def add_organisation(code: str, name: str, kind: str, service: str | None) -> None:
    values = {"code": code, "name": name, "kind": kind, "service": service}
    problems = []
    for column, read in fields.ORGANISATION_READERS.items():
        try:
            read(values[column] or "")
        except fields.FieldError as exc:
            problems.append((column, str(exc)))
    problems += fields.check_organisation(values)
    if problems:
        raise Invalid(problems)
    if await Organisation.exists().where(Organisation.code == code).run():
        raise Conflict(f"organisation {code} already exists")
    await Organisation.insert(Organisation(code=code, name=name, kind=kind, service=service)).run()


async def list_referrals(
    principal: Principal,
    provider: str | None = None,
    status: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    page: int = 1,
    page_size: int = 50,
) -> ReferralPage:
    """A page of referrals, newest referral date first, filtered and scoped to the caller."""
    provider = visible_provider(principal, provider)
    conditions = []
    if provider:
        conditions.append(Referral.provider.code == provider)
    if status:
        conditions.append(Referral.status == status)
    if date_from:
        conditions.append(Referral.referral_date >= date_from)
    if date_to:
        conditions.append(Referral.referral_date <= date_to)
    query = Referral.select(*_READ_COLUMNS)
    count = Referral.count()
    for condition in conditions:
        query = query.where(condition)
        count = count.where(condition)
    rows = (
        await query.order_by(Referral.referral_date, ascending=False)
        .order_by(Referral.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
        .run()
    )
    return ReferralPage(
        items=[_read(r) for r in rows], total=await count.run(), page=page, page_size=page_size
    )


async def get_referral(principal: Principal, provider: str, referral_id: str) -> ReferralRead:
    if principal.role == "provider" and provider != principal.organisation_code:
        raise NotFound(referral_id)
    row = (
        await Referral.select(*_READ_COLUMNS)
        .where((Referral.provider.code == provider) & (Referral.referral_id == referral_id))
        .first()
        .run()
    )
    if row is None:
        raise NotFound(referral_id)
    return _read(row)


def _check_contact(email: str | None, phone: str | None) -> list[tuple[str, str]]:
    problems = []
    for name, value, read in (
        ("contact_email", email, fields.read_email),
        ("contact_phone", phone, fields.read_phone),
    ):
        try:
            read(value or "")
        except fields.FieldError as exc:
            problems.append((name, str(exc)))
    return problems


async def create_referral(principal: Principal, body: ReferralCreate) -> ReferralRead:
    """Create a referral; the caller's provider only, unless OPCC or admin."""
    if principal.role == "provider" and body.provider != principal.organisation_code:
        raise Invalid([("provider", f"you may create only {principal.organisation_code}'s referrals")])
    orgs = await provider_ids()
    if body.provider not in orgs or orgs[body.provider][1] != "provider":
        raise Invalid([("provider", f"{body.provider!r} is not a known provider")])
    problems = _check_contact(body.contact_email, body.contact_phone)
    problems += fields.check_referral({"support_start": body.support_start, "support_end": body.support_end})
    if problems:
        raise Invalid(problems)
    exists = (
        await Referral.exists()
        .where((Referral.provider == orgs[body.provider][0]) & (Referral.referral_id == body.referral_id))
        .run()
    )
    if exists:
        raise Conflict(f"referral {body.referral_id} of {body.provider} already exists; update it instead")
    values = msgspec.structs.asdict(body)
    keys = keyring()
    values["person_key"] = keys.person_key(values.pop("person_id"))
    values["contact_email_enc"] = keys.encrypt(values.pop("contact_email"))
    values["contact_phone_enc"] = keys.encrypt(values.pop("contact_phone"))
    values["provider"] = orgs[body.provider][0]
    try:
        await Referral.insert(Referral(**values)).run()
    except Exception as exc:  # a concurrent retry won the race past the check above: a 409, not a 500
        if type(exc).__name__ not in {"IntegrityError", "UniqueViolationError"}:
            raise
        raise Conflict(f"referral {body.referral_id} of {body.provider} already exists") from None
    return await get_referral(principal, body.provider, body.referral_id)


async def update_referral(
    principal: Principal, provider: str, referral_id: str, body: ReferralUpdate
) -> ReferralRead:
    """Change the fields present in the body; the same rules as on creation."""
    current = await get_referral(principal, provider, referral_id)  # raises NotFound outside scope
    changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
    if not changes:
        return current
    email = changes.get("contact_email")
    phone = changes.get("contact_phone")
    problems = _check_contact(email, phone)
    start = changes.get("support_start", current.support_start)
    end = changes.get("support_end", current.support_end)
    problems += fields.check_referral({"support_start": start, "support_end": end})
    if problems:
        raise Invalid(problems)
    keys = keyring()
    if "contact_email" in changes:
        changes["contact_email_enc"] = keys.encrypt(changes.pop("contact_email"))
    if "contact_phone" in changes:
        changes["contact_phone_enc"] = keys.encrypt(changes.pop("contact_phone"))
    changes["updated_at"] = dt.datetime.now(dt.UTC)
    org_id = (await provider_ids())[provider][0]
    await (
        Referral.update({getattr(Referral, k): v for k, v in changes.items()})
        .where((Referral.provider == org_id) & (Referral.referral_id == referral_id))
        .run()
    )
    return await get_referral(principal, provider, referral_id)
