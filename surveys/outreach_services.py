"""Queries behind the outreach API: a referral's schedule and contact history, invitations, call tasks.

Scoping, as in surveys.services: a provider sees only its own referrals, and another provider's
referral is answered as one that does not exist. The contact ledger spans providers, so what a provider
sees of it is cut to what is theirs: their own waves, and person-level facts (an opt-out, a snooze, a
hold-up) as codes, without sentences that would name another provider (knowing that a person is also
with a sexual-violence service is itself sensitive).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from access.keys import Principal
from surveys import links, scheduling, services
from surveys.schemas import (
    CallTaskRead,
    ContactEventRead,
    InvitationItemRead,
    InvitationPage,
    InvitationRead,
    ReasonRead,
    ReferralSchedule,
    WaveRead,
)
from surveys.tables import CallTask, ContactEvent, Invitation, LinkItem, Organisation

LONDON = ZoneInfo("Europe/London")


async def _referral(principal: Principal, provider: str, referral_id: str) -> tuple[int, str]:
    """(pk, person key) of a referral the caller may see; NotFound otherwise."""
    await services.get_referral(principal, provider, referral_id)  # raises NotFound outside scope
    found = await links.referral_pk(provider, referral_id)
    if found is None:
        raise services.NotFound(referral_id)
    return found


def _others(person: scheduling.Person, provider: str) -> set[str]:
    return {r.provider for r in person.referrals if r.provider != provider}


def _scrub(text: str, others: set[str]) -> str:
    """`text`, or nothing when it names another provider."""
    return "" if any(f"{code}/" in text or f"{code} " in text for code in others) else text


async def referral_schedule(
    principal: Principal, provider: str, referral_id: str, now: dt.datetime | None = None
) -> ReferralSchedule:
    """The referral's waves, and the rules' decision for the person at `now`."""
    _, person_key = await _referral(principal, provider, referral_id)
    person, decision = await scheduling.person_decision(person_key, now)
    limited = principal.role == "provider"
    others = _others(person, provider) if limited else set()
    waves = [
        WaveRead(
            wave=s.item.wave,  # type: ignore[arg-type]
            state=s.state.value,  # type: ignore[arg-type]
            due_on=s.due_on,
            last_day=s.last_day,
            reason=s.reason,
        )
        for s in decision.waves
        if s.item.provider == provider and s.item.referral_id == referral_id
    ]
    pref = person.preference or {}
    return ReferralSchedule(
        provider=provider,
        referral_id=referral_id,
        contact_allowed=decision.channel is not None,
        channel=decision.channel,
        action=decision.action.value,  # type: ignore[arg-type]
        next_check_at=decision.next_check_at,
        opted_out=pref.get("opted_out_at") is not None,
        snoozed_until=pref.get("snoozed_until"),
        lang=pref.get("lang") or "en",
        waves=waves,
        reasons=[ReasonRead(code=r.code, detail=_scrub(r.detail, others)) for r in decision.reasons],
    )


async def contact_history(principal: Principal, provider: str, referral_id: str) -> list[ContactEventRead]:
    """The referral's own history and the person-level events (opt-out, snooze, hold-ups), oldest first."""
    pk, person_key = await _referral(principal, provider, referral_id)
    rows = (
        await ContactEvent.select()
        .where(
            (ContactEvent.person_key == person_key)
            & ((ContactEvent.referral == pk) | ContactEvent.referral.is_null())
        )
        .order_by(ContactEvent.at)
        .order_by(ContactEvent.id)
        .run()
    )
    limited = principal.role == "provider"
    if limited:
        person = (await scheduling.load_people([person_key]))[person_key]
        others = _others(person, provider)
    out = []
    for row in rows:
        detail = row["detail"]
        actor = row["actor"]
        if limited:
            detail = _scrub(detail, others)
            actor = _scrub(actor, others)
        out.append(
            ContactEventRead(
                at=row["at"],
                kind=row["kind"],
                wave=row["wave"],
                reasons=[c for c in row["reasons"].split(",") if c],
                detail=detail,
                actor=actor,
                invitation_id=row["invitation"],
            )
        )
    return out


async def _provider_id(code: str) -> int:
    row = await Organisation.select(Organisation.id).where(Organisation.code == code).first().run()
    if row is None:
        raise services.NotFound(code)
    return int(row["id"])


async def opt_out_for(principal: Principal, provider: str, referral_id: str) -> str:
    """A provider records "stop" for the person of its referral; every provider honours it."""
    _, person_key = await _referral(principal, provider, referral_id)
    await scheduling.opt_out(person_key, "provider", provider_id=await _provider_id(provider))
    return person_key


async def snooze_for(
    principal: Principal, provider: str, referral_id: str, until: dt.date | None, days: int | None
) -> dt.datetime:
    """A provider records "not now" for the person of its referral: until a date, or for some days.

    Nothing is sent before 08:00 London time on that date. Returns that instant.
    """
    _, person_key = await _referral(principal, provider, referral_id)  # scope first: 404 before 422
    if (until is None) == (days is None):
        raise services.Invalid([("until", "give either `until` (a date) or `days`, not both")])
    today = dt.datetime.now(LONDON).date()
    day = until if until is not None else today + dt.timedelta(days=days or 0)
    if day <= today or day > today + dt.timedelta(days=366):
        raise services.Invalid([("until", "must be after today and within a year")])
    at = dt.datetime.combine(day, dt.time(8, 0), tzinfo=LONDON)
    await scheduling.snooze(person_key, at, "provider", provider_id=await _provider_id(provider))
    return at


async def set_language_for(principal: Principal, provider: str, referral_id: str, lang: str | None) -> bool:
    """A provider records the language the person of its referral reads (en or cy); every provider's
    invitations, reminders and survey links use it. Returns False when it was already that language."""
    _, person_key = await _referral(principal, provider, referral_id)  # scope first: 404 before 422
    if lang not in scheduling.LANGS:
        raise services.Invalid([("lang", "give the language: en or cy")])
    return await scheduling.set_language(
        person_key, lang, "provider", provider_id=await _provider_id(provider)
    )


async def _items(link_ids: list[int]) -> dict[int, list[InvitationItemRead]]:
    if not link_ids:
        return {}
    rows = await LinkItem.select(
        LinkItem.link,
        LinkItem.wave,
        LinkItem.referral.referral_id.as_alias("referral_id"),
        LinkItem.referral.provider.code.as_alias("provider"),
    ).where(LinkItem.link.is_in(link_ids))
    out: dict[int, list[InvitationItemRead]] = {}
    for r in rows:
        out.setdefault(r["link"], []).append(
            InvitationItemRead(provider=r["provider"], referral_id=r["referral_id"], wave=r["wave"])
        )
    return out


async def list_invitations(
    principal: Principal,
    status: str | None = None,
    provider: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> InvitationPage:
    """Invitations, newest first; a provider sees those that include its referrals, and only its items."""
    provider = services.visible_provider(principal, provider)
    query = Invitation.select(
        Invitation.id, Invitation.link, Invitation.status, Invitation.channel, Invitation.created_at,
        Invitation.sent_at, Invitation.expires_at, Invitation.completed_at, Invitation.reminders_sent,
    )  # fmt: skip
    count = Invitation.count()
    conditions: list[Any] = []
    if status:
        conditions.append(Invitation.status == status)
    if provider:
        mine = LinkItem.select(LinkItem.link).where(LinkItem.referral.provider.code == provider)
        links_of = [r["link"] for r in await mine.run()]
        conditions.append(Invitation.link.is_in(links_of or [-1]))
    for condition in conditions:
        query = query.where(condition)
        count = count.where(condition)
    query = query.order_by(Invitation.id, ascending=False).limit(page_size).offset((page - 1) * page_size)
    rows = await query.run()
    items = await _items([r["link"] for r in rows])
    out = []
    for r in rows:
        mine_only = [i for i in items.get(r["link"], []) if provider is None or i.provider == provider]
        out.append(
            InvitationRead(
                id=r["id"], status=r["status"], channel=r["channel"], created_at=r["created_at"],
                sent_at=r["sent_at"], expires_at=r["expires_at"], completed_at=r["completed_at"],
                reminders_sent=r["reminders_sent"], items=mine_only,
            )
        )  # fmt: skip
    return InvitationPage(items=out, total=await count.run(), page=page, page_size=page_size)


async def list_call_tasks(principal: Principal, status: str | None = None) -> list[CallTaskRead]:
    """Call tasks, newest first; a provider sees its own."""
    provider = services.visible_provider(principal, None)
    query = CallTask.select(
        CallTask.id, CallTask.status, CallTask.created_at, CallTask.due_at, CallTask.closed_at,
        CallTask.provider.code.as_alias("provider"), CallTask.invitation.link.as_alias("link"),
    ).order_by(CallTask.id, ascending=False).limit(500)  # fmt: skip
    if provider:
        query = query.where(CallTask.provider.code == provider)
    if status:
        query = query.where(CallTask.status == status)
    rows = await query.run()
    items = await _items([r["link"] for r in rows])
    return [
        CallTaskRead(
            id=r["id"], provider=r["provider"], status=r["status"], created_at=r["created_at"],
            due_at=r["due_at"], closed_at=r["closed_at"],
            items=[i for i in items.get(r["link"], []) if i.provider == r["provider"]],
        )
        for r in rows
    ]  # fmt: skip


async def _task(principal: Principal, task_id: int) -> dict[str, Any]:
    row = await (
        CallTask.select(
            CallTask.id, CallTask.status, CallTask.invitation, CallTask.provider.code.as_alias("provider"),
            CallTask.invitation.link.as_alias("link"), CallTask.invitation.person_key.as_alias("person_key"),
        )
        .where(CallTask.id == task_id)
        .first()
    )  # fmt: skip
    if row is None or (principal.role == "provider" and row["provider"] != principal.organisation_code):
        raise services.NotFound(str(task_id))
    return dict(row)


async def call_task_link(principal: Principal, task_id: int, base_url: str) -> tuple[str, dt.datetime, int]:
    """A fresh phone-mode link for an open call task (the provider's own waves): (url, expiry, link id)."""
    task = await _task(principal, task_id)
    if task["status"] != "open":
        raise services.Conflict(f"call task {task_id} is {task['status']}")
    rows = await LinkItem.select(LinkItem.referral, LinkItem.wave, LinkItem.referral.provider.code).where(
        LinkItem.link == task["link"]
    )
    items = [(r["referral"], r["wave"]) for r in rows if r["referral.provider.code"] == task["provider"]]
    if not items:
        raise services.NotFound(str(task_id))
    token, link_id = await links.create_link(
        task["person_key"], items, mode="phone", lang=await scheduling.person_lang(task["person_key"]),
        lifetime=scheduling.PHONE_LINK_LIFETIME,
    )  # fmt: skip
    expires = dt.datetime.now(dt.UTC) + scheduling.PHONE_LINK_LIFETIME
    return f"{base_url.rstrip('/')}/s/{token}", expires, link_id


async def close_call_task(principal: Principal, task_id: int, outcome: str) -> CallTaskRead:
    """Record the outcome of a call (done, no answer, declined)."""
    task = await _task(principal, task_id)
    if task["status"] != "open":
        raise services.Conflict(f"call task {task_id} is {task['status']}")
    now = dt.datetime.now(dt.UTC)
    await CallTask.update({CallTask.status: outcome, CallTask.closed_at: now}).where(CallTask.id == task_id)
    await ContactEvent.insert(
        ContactEvent(
            person_key=task["person_key"], invitation=task["invitation"], kind="call_closed", reasons=outcome,
            detail=f"call task {task_id}: {outcome}", actor=f"provider:{task['provider']}"[:40], at=now,
        )
    )  # fmt: skip
    found = [t for t in await list_call_tasks(principal) if t.id == task_id]
    return found[0]
