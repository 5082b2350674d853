"""Survey links: `/s/{token}`, one person and one or more (referral, wave) items.

The token comes from `secrets` (192 bits) and only its SHA-256 is stored, so a database copy cannot be
used to answer anyone's survey. A link is dead after completion or expiry.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from surveys import db
from surveys.crypto import token_hash
from surveys.tables import LinkItem, Referral, SurveyLink

TOKEN_BYTES = 24  # 192 bits, above the 128 the brief asks for
DEFAULT_LIFETIME = dt.timedelta(days=28)

LinkState = Literal["open", "completed", "expired"]


@dataclass(frozen=True, slots=True)
class LinkItemView:
    item_id: int
    referral_pk: int
    provider: str
    service: str
    wave: str
    response_id: int | None


@dataclass(slots=True)
class LinkView:
    """What a survey page needs to know about a link (never the token itself)."""

    id: int
    person_key: str
    instrument_version: str
    scales: list[str]
    mode: str
    lang: str
    answers: dict[str, Any]
    expires_at: dt.datetime
    completed_at: dt.datetime | None
    items: list[LinkItemView] = field(default_factory=list)
    # The survey steps already worked out for this view, by plan (surveys.pages.flow.steps_for).
    steps_memo: dict[int, Any] = field(default_factory=dict, repr=False, compare=False)

    def state(self, now: dt.datetime | None = None) -> LinkState:
        if self.completed_at is not None:
            return "completed"
        if (now or dt.datetime.now(dt.UTC)) >= self.expires_at:
            return "expired"
        return "open"

    @property
    def waves(self) -> list[str]:
        """The waves asked (a combined survey may join waves of several providers)."""
        return sorted({i.wave for i in self.items}, key=("baseline", "exit", "follow_up").index)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


async def create_link(
    person_key: str,
    items: list[tuple[int, str]],
    *,
    mode: str = "web",
    lang: str = "en",
    instrument_version: str = "core-1",
    scales: list[str] | None = None,
    lifetime: dt.timedelta = DEFAULT_LIFETIME,
    now: dt.datetime | None = None,
) -> tuple[str, int]:
    """A new link for (referral primary key, wave) items; returns (token, shown only now, link id)."""
    if not items:
        raise ValueError("a link needs at least one (referral, wave) item")
    now = now or dt.datetime.now(dt.UTC)
    token = new_token()
    async with db.write_transaction():
        link = SurveyLink(
            token_hash=token_hash(token),
            person_key=person_key,
            instrument_version=instrument_version,
            scales=",".join(scales or []),
            mode=mode,
            lang=lang,
            answers="{}",
            created_at=now,
            expires_at=now + lifetime,
        )
        await link.save().run()
        await LinkItem.insert(*[LinkItem(link=link.id, referral=ref, wave=wave) for ref, wave in items]).run()
    return token, link.id


async def resolve_link(token: str) -> LinkView | None:
    """The link a token opens, whatever its state; None for a token that was never issued."""
    if not token or len(token) > 100:
        return None
    row = await SurveyLink.select().where(SurveyLink.token_hash == token_hash(token)).first().run()
    if row is None:
        return None
    return await _view(row)


async def load_link(link_id: int) -> LinkView | None:
    row = await SurveyLink.select().where(SurveyLink.id == link_id).first().run()
    return await _view(row) if row else None


async def _view(row: dict[str, Any]) -> LinkView:
    items = (
        await LinkItem.select(
            LinkItem.id,
            LinkItem.referral,
            LinkItem.wave,
            LinkItem.response,
            LinkItem.referral.provider.code.as_alias("provider"),
            LinkItem.referral.provider.service.as_alias("service"),
        )
        .where(LinkItem.link == row["id"])
        .order_by(LinkItem.id)
        .run()
    )
    return LinkView(
        id=row["id"],
        person_key=row["person_key"],
        instrument_version=row["instrument_version"],
        scales=[s for s in row["scales"].split(",") if s],
        mode=row["mode"],
        lang=row["lang"],
        answers=json.loads(row["answers"] or "{}"),
        expires_at=row["expires_at"],
        completed_at=row["completed_at"],
        items=[
            LinkItemView(
                item_id=i["id"],
                referral_pk=i["referral"],
                provider=i["provider"],
                service=i["service"] or "",
                wave=i["wave"],
                response_id=i["response"],
            )
            for i in items
        ],
    )


async def referral_pk(provider: str, referral_id: str) -> tuple[int, str] | None:
    """(primary key, person key) of a provider's referral."""
    row = (
        await Referral.select(Referral.id, Referral.person_key)
        .where((Referral.provider.code == provider) & (Referral.referral_id == referral_id))
        .first()
        .run()
    )
    return (row["id"], row["person_key"]) if row else None
