"""API keys: created once and shown once, stored as a SHA-256, resolved to a Principal on each request."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from access.tables import ApiKey
from surveys.crypto import token_hash
from surveys.fields import ROLES
from surveys.tables import Organisation

KEY_PREFIX = "vop_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the key's organisation and role."""

    key_id: int
    key_prefix: str
    organisation_id: int
    organisation_code: str
    role: str

    @property
    def actor(self) -> str:
        return f"key:{self.key_prefix}"


class KeyError_(ValueError):
    """A key cannot be created as asked (unknown organisation, wrong role)."""


async def create_key(org_code: str, role: str, label: str = "") -> tuple[str, int]:
    """Create a key for an organisation and role; returns (the key, shown only now, its id)."""
    if role not in ROLES:
        raise KeyError_(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    org = (
        await Organisation.select(Organisation.id, Organisation.kind)
        .where(Organisation.code == org_code)
        .first()
    )
    if org is None:
        raise KeyError_(f"no organisation with code {org_code!r} (add it with `vop orgs add`)")
    if role == "provider" and org["kind"] != "provider":
        raise KeyError_(f"{org_code} is a commissioner; a provider key must belong to a provider")
    secret = secrets.token_urlsafe(32)
    key = f"{KEY_PREFIX}{secret}"
    row = ApiKey(organisation=org["id"], role=role, key_hash=token_hash(key), prefix=key[:12], label=label)
    await row.save().run()
    return key, row.id


async def resolve_key(key: str) -> Principal | None:
    """The principal of a live key, or None for an unknown or revoked key."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = (
        await ApiKey.select(
            ApiKey.id, ApiKey.prefix, ApiKey.role, ApiKey.revoked_at, ApiKey.organisation.id,
            ApiKey.organisation.code,
        )
        .where(ApiKey.key_hash == token_hash(key))
        .first()
    )  # fmt: skip
    if row is None or row["revoked_at"] is not None:
        return None
    return Principal(
        key_id=row["id"],
        key_prefix=row["prefix"],
        organisation_id=row["organisation.id"],
        organisation_code=row["organisation.code"],
        role=row["role"],
    )


async def revoke_key(prefix_or_id: str) -> int:
    """Revoke keys by id or by their shown prefix; returns how many were revoked."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    query = ApiKey.update({ApiKey.revoked_at: now})
    if prefix_or_id.isdigit():
        query = query.where(ApiKey.id == int(prefix_or_id))
    else:
        query = query.where(ApiKey.prefix == prefix_or_id)
    rows = await query.where(ApiKey.revoked_at.is_null()).returning(ApiKey.id).run()
    return len(rows)
