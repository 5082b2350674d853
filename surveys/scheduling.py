"""The scheduler: turns the pure contact rules into invitations, reminders and queued messages.

`schedule(now)` finds every person with a wave due (or coming up within the gathering window) or an
open invitation, loads all of that person's referrals across providers and their ledger, calls
`contact_rules.decide`, and writes what it decided: the contact history (ContactEvent), the survey
link with every combined item, the Invitation and the OutboxMessage, all in the same transaction, so a
message is queued exactly when (and only when) the decision to send it is recorded.

Scale: reads are batched (one query per table per chunk of persons) and writes go in one transaction
per chunk, through the driver's executemany; a chunk is all or nothing, so each person's decision and
its messages are still written together. Two schedulers racing are stopped by the unique partial index
"one open invitation per person" and the outbox's unique idempotency key: the losing chunk is rolled
back and decided again from what the winner wrote.

Nothing here writes a message text or a contact detail; the link token is kept encrypted only while a
message may still need it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from settings import get_settings
from surveys import db, links
from surveys.contact_rules import (
    Action,
    ContactDecision,
    ContactLedger,
    ContactPolicy,
    ReferralContact,
    SentInvitation,
    WaveItem,
    WaveState,
    decide,
    local_date,
)
from surveys.crypto import keyring, token_hash
from surveys.tables import (
    ContactEvent,
    ContactPreference,
    Invitation,
    Organisation,
    OutboxMessage,
    Referral,
    SurveyLink,
)

log = logging.getLogger("vop.scheduling")

LANGS = ("en", "cy")

OPEN_STATUSES = ("queued", "sent")
CHUNK_PERSONS = 2000
ANALYZE_AFTER = 1000  # invitations and reminders written in one run (PostgreSQL)
PHONE_LINK_LIFETIME = dt.timedelta(days=1)
# Codes that say nothing new about a person (they flip with the clock), left out of the "last
# decision" signature so that the history is not written twice a day.
_TRANSIENT_CODES = frozenset({"quiet_hours", "may_contact"})


@dataclass
class ScheduleSummary:
    """What one scheduler run did (counts only)."""

    persons: int = 0
    invitations: int = 0
    reminders: int = 0
    waiting: int = 0
    not_contacted: int = 0
    expired: int = 0
    completed: int = 0
    retried_chunks: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Person:
    """One person's referrals (all providers) and contact ledger, as loaded from the database."""

    key: str
    referrals: list[ReferralContact] = field(default_factory=list)
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)  # referral pk -> row
    pk_of: dict[tuple[str, str], int] = field(default_factory=dict)  # (provider, referral_id) -> pk
    invitations: list[dict[str, Any]] = field(default_factory=list)  # not cancelled, oldest first
    items: dict[int, list[WaveItem]] = field(default_factory=dict)  # invitation id -> items
    completed: set[WaveItem] = field(default_factory=set)
    preference: dict[str, Any] | None = None

    def ledger(self) -> ContactLedger:
        """The ledger `decide` reads. A queued invitation counts from its creation (spacing starts with
        the decision); reminders are known by count and last time, which is all the rules use."""
        sent = []
        for inv in self.invitations:
            last = inv["last_reminder_at"]
            reminders = (last,) * inv["reminders_sent"] if last is not None else ()
            sent.append(
                SentInvitation(
                    invitation_id=str(inv["id"]),
                    sent_at=inv["sent_at"] or inv["created_at"],
                    channel=inv["channel"],
                    items=tuple(self.items.get(inv["id"], ())),
                    reminders_sent_at=reminders,
                )
            )
        pref = self.preference or {}
        return ContactLedger(
            invitations=tuple(sent),
            completed=frozenset(self.completed),
            opted_out_at=pref.get("opted_out_at"),
            snoozed_until=pref.get("snoozed_until"),
        )

    def newest_referral(self) -> dict[str, Any] | None:
        """The most recent referral row (flags' last update, else referral date): the one whose channel
        and contact detail the rules allow (contact_rules rule 3)."""
        if not self.rows:
            return None

        def recency(row: dict[str, Any]) -> dt.datetime:
            day = dt.datetime.combine(row["referral_date"], dt.time.min, tzinfo=dt.UTC)
            return max(row["updated_at"] or day, day)

        return max(self.rows.values(), key=lambda r: (recency(r), r["id"]))

    @property
    def lang(self) -> str:
        """The language of the person's messages and survey link (en unless they or a provider said)."""
        lang = (self.preference or {}).get("lang")
        return lang if lang in LANGS else "en"


def idempotency_key(invitation_id: int, kind: str, number: int = 0) -> str:
    """The outbox key of one message of one invitation: the same decision always gives the same key."""
    return hashlib.sha256(f"vop-outbox:{invitation_id}:{kind}:{number}".encode()).hexdigest()


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


async def organisations() -> dict[int, tuple[str, str]]:
    """Organisation id -> (code, service)."""
    rows = await Organisation.select(Organisation.id, Organisation.code, Organisation.service).run()
    return {r["id"]: (r["code"], r["service"] or "") for r in rows}


_REFERRAL_SQL = (
    "SELECT id, provider, referral_id, person_key, referral_date, support_start, support_end, "
    "contact_email_enc, contact_phone_enc, preferred_channel, safe_to_contact, consent_to_survey, updated_at "
    "FROM referral WHERE person_key {keys}"
)
_INVITATION_SQL = (
    "SELECT id, person_key, link, channel, lang, status, provider, created_at, sent_at, expires_at, "
    "reminders_sent, last_reminder_at, token_enc FROM invitation "
    "WHERE person_key {keys} AND status <> 'cancelled' ORDER BY id"
)
_ITEM_SQL = (
    "SELECT i.id AS invitation, li.referral AS referral, li.wave AS wave, "
    "s.completed_at AS link_completed_at "
    "FROM invitation i JOIN link_item li ON li.link = i.link JOIN survey_link s ON s.id = i.link "
    "WHERE i.person_key {keys} AND i.status <> 'cancelled'"
)
_COMPLETED_SQL = (
    "SELECT r.referral AS referral, r.wave AS wave FROM response r JOIN referral f ON f.id = r.referral "
    "WHERE f.person_key {keys} AND r.completed_at IS NOT NULL"
)
_PREFERENCE_SQL = (
    "SELECT person_key, opted_out_at, snoozed_until, lang, last_decision FROM contact_preference "
    "WHERE person_key {keys}"
)


async def load_people(
    keys: Sequence[str], orgs: dict[int, tuple[str, str]] | None = None
) -> dict[str, Person]:
    """Referrals and ledgers of these persons (at most a chunk): five queries, in one read snapshot.

    Raw SQL on the driver: building Piccolo IN conditions of thousands of values cost more than the
    queries themselves.
    """
    orgs = orgs if orgs is not None else await organisations()
    people = {k: Person(k) for k in keys}
    if not people:
        return people
    cond, params = _in(list(people))
    async with db.current_engine().transaction() as tx:
        referrals = await _fetch(tx, _REFERRAL_SQL.format(keys=cond), params)
        invitations = await _fetch(tx, _INVITATION_SQL.format(keys=cond), params)
        items = await _fetch(tx, _ITEM_SQL.format(keys=cond), params) if invitations else []
        completed = await _fetch(tx, _COMPLETED_SQL.format(keys=cond), params)
        preferences = await _fetch(tx, _PREFERENCE_SQL.format(keys=cond), params)
    referral_of: dict[int, tuple[Person, dict[str, Any]]] = {}
    for record in referrals:
        row = dict(record)
        person = people[row["person_key"]]
        code, service = orgs[row["provider"]]
        row["provider_code"] = code
        person.rows[row["id"]] = row
        person.pk_of[(code, row["referral_id"])] = row["id"]
        referral_of[row["id"]] = (person, row)
        person.referrals.append(
            ReferralContact(
                provider=code,
                referral_id=row["referral_id"],
                service=service,
                referral_date=row["referral_date"],
                support_start=row["support_start"],
                support_end=row["support_end"],
                safe_to_contact=bool(row["safe_to_contact"]),
                consent_to_survey=bool(row["consent_to_survey"]),
                preferred_channel=row["preferred_channel"],
                has_email=bool(row["contact_email_enc"]),
                has_phone=bool(row["contact_phone_enc"]),
                flags_updated_at=row["updated_at"],
            )
        )
    for record in invitations:
        inv = dict(record)
        people[inv["person_key"]].invitations.append(inv)
    for li in items:
        found = referral_of.get(li["referral"])
        if found is None:
            continue
        person, row = found
        item = WaveItem(row["provider_code"], row["referral_id"], li["wave"])
        person.items.setdefault(li["invitation"], []).append(item)
        if li["link_completed_at"] is not None:
            person.completed.add(item)
    for r in completed:
        person, row = referral_of[r["referral"]]
        person.completed.add(WaveItem(row["provider_code"], row["referral_id"], r["wave"]))
    for pref in preferences:
        people[pref["person_key"]].preference = dict(pref)
    return people


def _uninvited(wave: str) -> str:
    # The wave is in no invitation that counts (cancelled ones do not) and has no completed response.
    return (
        "NOT EXISTS (SELECT 1 FROM link_item li JOIN invitation i ON i.link = li.link "
        f"WHERE li.referral = r.id AND li.wave = '{wave}' AND i.status <> 'cancelled') "
        "AND NOT EXISTS (SELECT 1 FROM response x WHERE x.referral = r.id "
        f"AND x.wave = '{wave}' AND x.completed_at IS NOT NULL)"
    )


_WAVE_RANGE_SQL = {
    "baseline": f"(r.support_start >= {{}} AND r.support_start <= {{}} AND {_uninvited('baseline')})",
    "exit": f"(r.support_end >= {{}} AND r.support_end <= {{}} AND {_uninvited('exit')})",
    "follow_up": f"(r.support_end >= {{}} AND r.support_end <= {{}} AND {_uninvited('follow_up')})",
}


def configured_policy() -> ContactPolicy:
    """The contact rules' numbers as configured (VOP_WAVES*, spacing, expiry, reminders, quiet hours)."""
    return get_settings().contact_policy or ContactPolicy()


async def candidate_persons(now: dt.datetime, policy: ContactPolicy) -> list[str]:
    """Persons with a wave not yet invited that is due, or comes up within the gathering window, and
    persons with an invitation whose next reminder has come due.

    A superset: `decide` has the last word. Wave timing varies by provider and service, so each wave's
    date range covers the fewest and the most days configured; a wave switched off everywhere is not
    looked for. Persons whose waves are all invited and whose next reminder is still to come are left
    out, so a run over a quiet day costs little.
    """
    today = local_date(now, policy)
    lo = today - dt.timedelta(days=policy.late_window_days)
    hi = today + dt.timedelta(days=policy.gather_days)
    clauses: list[str] = []
    params: list[dt.date] = []
    for wave, clause in _WAVE_RANGE_SQL.items():
        span = policy.wave_day_range(wave)
        if span is None:
            continue
        clauses.append(clause)
        params += [lo - dt.timedelta(days=span[1]), hi - dt.timedelta(days=span[0])]
    rows = []
    if clauses:
        sql = (
            "SELECT DISTINCT r.person_key AS person_key FROM referral r WHERE r.support_start IS NOT NULL "
            f"AND ({' OR '.join(clauses)})"
        )
        rows = await Referral.raw(sql, *params).run()
    keys = {r["person_key"] for r in rows}
    reminder_due = None
    for number, days in enumerate(policy.reminder_days):
        due = (Invitation.reminders_sent == number) & (Invitation.sent_at <= now - dt.timedelta(days=days))
        reminder_due = due if reminder_due is None else (reminder_due | due)
    if reminder_due is not None:
        open_invitations = (
            await Invitation.select(Invitation.person_key)
            .where((Invitation.status == "sent") & (Invitation.expires_at > now) & reminder_due)
            .run()
        )
        keys.update(r["person_key"] for r in open_invitations)
    return sorted(keys)


async def close_finished_invitations(now: dt.datetime) -> tuple[int, int]:
    """Mark expired and completed invitations, erase their tokens, cancel their unsent messages.

    Returns (expired, completed).
    """
    async with db.write_transaction():
        completed = await Invitation.count().where(
            Invitation.status.is_in(list(OPEN_STATUSES)) & Invitation.link.completed_at.is_not_null()
        )
        await Invitation.raw(
            "UPDATE invitation SET status = 'completed', token_enc = NULL, completed_at = "
            "(SELECT s.completed_at FROM survey_link s WHERE s.id = invitation.link) "
            "WHERE status IN ('queued', 'sent') AND link IN "
            "(SELECT id FROM survey_link WHERE completed_at IS NOT NULL)"
        )
        # Every wave answered (on paper, by phone, on another link): the invitation is done too.
        all_answered = (
            "status IN ('queued', 'sent') AND NOT EXISTS (SELECT 1 FROM link_item li "
            "WHERE li.link = invitation.link AND NOT EXISTS (SELECT 1 FROM response x "
            "WHERE x.referral = li.referral AND x.wave = li.wave AND x.completed_at IS NOT NULL))"
        )
        answered = [
            r["id"] for r in await Invitation.raw(f"SELECT id FROM invitation WHERE {all_answered}").run()
        ]
        for chunk in _chunks(answered, 1000):
            await Invitation.update(
                {Invitation.status: "completed", Invitation.token_enc: None, Invitation.completed_at: now}
            ).where(Invitation.id.is_in(list(chunk)))
        completed += len(answered)
        expired = await Invitation.count().where(
            Invitation.status.is_in(list(OPEN_STATUSES)) & (Invitation.expires_at <= now)
        )
        await Invitation.update({Invitation.status: "expired", Invitation.token_enc: None}).where(
            Invitation.status.is_in(list(OPEN_STATUSES)) & (Invitation.expires_at <= now)
        )
        await _cancel_unsent_of_closed()
    return expired, completed


async def _cancel_unsent_of_closed() -> None:
    await OutboxMessage.raw(
        "UPDATE outbox_message SET status = 'cancelled', token_enc = NULL WHERE status = 'pending' "
        "AND invitation IN (SELECT id FROM invitation WHERE status NOT IN ('queued', 'sent'))"
    )


# --- writing a chunk of decisions -----------------------------------------------------------------


@dataclass
class _Writes:
    """Rows one chunk of decisions writes, gathered so that each table gets one executemany."""

    links: list[tuple[Any, ...]] = field(default_factory=list)
    link_items: list[tuple[str, int, str]] = field(default_factory=list)  # (token hash, referral, wave)
    invitations: list[dict[str, Any]] = field(default_factory=list)  # by token hash
    reminders: list[tuple[int, int, dt.datetime, str, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)  # invitation ids all of whose items are done
    decisions: list[tuple[str, str, dt.datetime]] = field(default_factory=list)  # preference upserts


def _codes(decision: ContactDecision) -> list[str]:
    return [r.code for r in decision.reasons]


def _signature(decision: ContactDecision) -> str:
    codes = sorted({c for c in _codes(decision) if c not in _TRANSIENT_CODES})
    return f"{decision.action.value}:{','.join(codes)}"[:300]


def _event(
    person: str,
    kind: str,
    now: dt.datetime,
    *,
    referral: int | None = None,
    invitation: int | None = None,
    wave: str = "",
    reasons: str = "",
    detail: str = "",
    actor: str = "scheduler",
    link_hash: str | None = None,
) -> dict[str, Any]:
    return {
        "person_key": person, "referral": referral, "invitation": invitation, "wave": wave, "kind": kind,
        "reasons": reasons[:300], "detail": detail, "actor": actor, "at": now, "link_hash": link_hash,
    }  # fmt: skip


def _plan_person(person: Person, decision: ContactDecision, now: dt.datetime, w: _Writes) -> str:
    """Add the rows one person's decision writes; returns what happened (for the summary)."""
    keys = keyring()
    codes = ",".join(_codes(decision))
    # Invitations whose every item is completed are closed now (their reminders must stop at once).
    for inv in person.invitations:
        items = person.items.get(inv["id"], [])
        if inv["status"] in OPEN_STATUSES and items and all(i in person.completed for i in items):
            w.completed.append(inv["id"])
    if decision.action is Action.SEND_INVITATION:
        token = links.new_token()
        thash = token_hash(token)
        newest = person.newest_referral()
        assisted = decision.channel == "phone"
        # Optional scales: those switched on for the services of the waves this link asks about.
        on = get_settings().scales_by_service
        asked = {(i.provider, i.referral_id) for i in decision.items}
        services = {r.service for r in person.referrals if (r.provider, r.referral_id) in asked}
        scales = ",".join(sorted({scale for service in services for scale in on.get(service, [])}))
        w.links.append(
            (thash, person.key, scales, "phone" if assisted else "web", person.lang, now, decision.expires_at)
        )
        for item in decision.items:
            w.link_items.append((thash, person.pk_of[(item.provider, item.referral_id)], item.wave))
        w.invitations.append(
            {
                "token_hash": thash, "person_key": person.key, "channel": decision.channel,
                "lang": person.lang, "provider": newest["provider"] if (assisted and newest) else None,
                "created_at": now,
                "expires_at": decision.expires_at, "token_enc": keys.encrypt(token),
            }
        )  # fmt: skip
        # One event per wave, in its referral's history; the items say which waves were combined, so
        # the rules' sentences would add nothing but rows.
        for item in decision.items:
            w.events.append(
                _event(
                    person.key, "invited", now, referral=person.pk_of[(item.provider, item.referral_id)],
                    wave=item.wave, reasons=codes,
                    link_hash=thash,
                )
            )  # fmt: skip
        return "invitation"
    if decision.action is Action.SEND_REMINDER and decision.invitation_id is not None:
        inv: dict[str, Any] | None = next(
            (i for i in person.invitations if str(i["id"]) == decision.invitation_id), None
        )
        # A reminder needs the original message to have gone, and the token to point to the same link.
        if inv is not None and inv["status"] == "sent" and inv["token_enc"]:
            number = decision.reminder_number or inv["reminders_sent"] + 1
            token = keys.decrypt(inv["token_enc"]) or ""
            w.reminders.append(
                (inv["id"], number, now, decision.message_kind or "reminder", keys.encrypt(token) or "")
            )
            w.events.append(
                _event(
                    person.key,
                    "reminded",
                    now,
                    invitation=inv["id"],
                    reasons=codes,
                    detail="; ".join(r.detail for r in decision.reasons),
                )
            )
            for item in decision.items:
                w.events.append(
                    _event(
                        person.key, "reminded", now, referral=person.pk_of[(item.provider, item.referral_id)],
                        invitation=inv["id"], wave=item.wave, reasons="reminder_due",
                    )
                )  # fmt: skip
            return "reminder"
    outcome = "not_contacted" if decision.action is Action.NONE else "waiting"
    # History worth keeping: a wave due but held back (blocked, snoozed, spaced, gathering). Routine
    # waiting (a reminder or a wave not yet due) would add a row per person per run and say nothing.
    held_due = any(status.state is WaveState.DUE for status in decision.waves)
    signature = _signature(decision)
    if held_due and (person.preference or {}).get("last_decision") != signature:
        kind = outcome
        w.events.append(
            _event(person.key, kind, now, reasons=codes, detail="; ".join(r.detail for r in decision.reasons))
        )
        # A wave that is due but held back is worth a line in its referral's own history too.
        for status in decision.waves:
            if status.state is WaveState.DUE and decision.action is Action.NONE:
                pk = person.pk_of[(status.item.provider, status.item.referral_id)]
                w.events.append(
                    _event(
                        person.key, "not_contacted", now, referral=pk, wave=status.item.wave, reasons=codes
                    )
                )
        w.decisions.append((person.key, signature, now))
    return outcome


async def _fetch(tx: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of a raw query on the transaction's driver connection (aiosqlite or asyncpg)."""
    if db.is_sqlite():
        cursor = await tx.connection.execute(sql, tuple(params))
        return list(await cursor.fetchall())
    return list(await tx.connection.fetch(sql, *params))


def _in(values: Sequence[Any], start_at: int = 1) -> tuple[str, list[Any]]:
    """An IN condition for many values: `IN (?, ...)` on SQLite, `= ANY($n)` on PostgreSQL."""
    if db.is_sqlite():
        return f"IN ({', '.join('?' * len(values))})", list(values)
    return f"= ANY(${start_at})", [list(values)]


def _marks(count: int) -> str:
    return ", ".join(db.placeholders(db.current_engine(), count))


async def _write(w: _Writes, now: dt.datetime) -> None:
    """Write one chunk's rows in the current transaction."""
    async with db.write_transaction() as tx:
        if w.completed:
            await Invitation.update(
                {Invitation.status: "completed", Invitation.completed_at: now, Invitation.token_enc: None}
            ).where(Invitation.id.is_in(w.completed) & Invitation.status.is_in(list(OPEN_STATUSES)))
            await _cancel_unsent_of_closed()
        inv_by_hash: dict[str, int] = {}
        if w.links:
            await db.executemany(
                tx,
                "INSERT INTO survey_link (token_hash, person_key, instrument_version, scales, mode, lang, "
                f"answers, created_at, expires_at) VALUES ({_marks(9)})",
                [
                    (h, p, "core-1", scales, mode, lang, "{}", c, e)
                    for h, p, scales, mode, lang, c, e in w.links
                ],
            )
            cond, params = _in([row[0] for row in w.links])
            link_ids = {
                r["token_hash"]: r["id"]
                for r in await _fetch(
                    tx, f"SELECT id, token_hash FROM survey_link WHERE token_hash {cond}", params
                )
            }
            await db.executemany(
                tx,
                f"INSERT INTO link_item (link, referral, wave) VALUES ({_marks(3)})",
                [(link_ids[h], ref, wave) for h, ref, wave in w.link_items],
            )
            await db.executemany(
                tx,
                "INSERT INTO invitation (person_key, link, channel, lang, status, provider, created_at, "
                f"expires_at, reminders_sent, token_enc) VALUES ({_marks(10)})",
                [
                    (i["person_key"], link_ids[i["token_hash"]], i["channel"], i["lang"], "queued",
                     i["provider"], i["created_at"], i["expires_at"], 0, i["token_enc"])
                    for i in w.invitations
                ],
            )  # fmt: skip
            cond, params = _in(list(link_ids.values()))
            by_link = {
                r["link"]: r["id"]
                for r in await _fetch(tx, f"SELECT id, link FROM invitation WHERE link {cond}", params)
            }
            inv_by_hash = {h: by_link[link_id] for h, link_id in link_ids.items()}
        outbox = [
            (idempotency_key(inv_by_hash[i["token_hash"]], "invitation"), inv_by_hash[i["token_hash"]],
             i["channel"], "invitation", i["lang"], i["token_enc"])
            for i in w.invitations
        ]  # fmt: skip
        if w.reminders:
            cond, params = _in([r[0] for r in w.reminders])
            channels = {
                r["id"]: (r["channel"], r["lang"])
                for r in await _fetch(tx, f"SELECT id, channel, lang FROM invitation WHERE id {cond}", params)
            }
            for inv_id, number, _, kind, token_enc in w.reminders:
                channel, lang = channels[inv_id]
                outbox.append(
                    (idempotency_key(inv_id, "reminder", number), inv_id, channel, kind, lang, token_enc)
                )
            await db.executemany(
                tx,
                f"UPDATE invitation SET reminders_sent = {db.placeholders(db.current_engine(), 1)[0]}, "
                f"last_reminder_at = {db.placeholders(db.current_engine(), 1, 2)[0]} "
                f"WHERE id = {db.placeholders(db.current_engine(), 1, 3)[0]}",
                [(number, at, inv_id) for inv_id, number, at, _, _ in w.reminders],
            )
        if outbox:
            await db.executemany(
                tx,
                "INSERT INTO outbox_message (idempotency_key, invitation, channel, kind, lang, status, "
                f"attempts, next_attempt_at, token_enc, created_at) VALUES ({_marks(10)})",
                [
                    (k, inv, ch, kind, lang, "pending", 0, now, tok, now)
                    for k, inv, ch, kind, lang, tok in outbox
                ],
            )
        if w.events:
            await db.executemany(
                tx,
                "INSERT INTO contact_event (person_key, referral, invitation, wave, kind, reasons, detail, "
                f"actor, at) VALUES ({_marks(9)})",
                [
                    (e["person_key"], e["referral"],
                     inv_by_hash.get(e["link_hash"]) if e["link_hash"] else e["invitation"],
                     e["wave"], e["kind"], e["reasons"], e["detail"], e["actor"], e["at"])
                    for e in w.events
                ],
            )  # fmt: skip
        if w.decisions:
            await db.executemany(
                tx,
                "INSERT INTO contact_preference (person_key, opted_out_via, snoozed_via, last_decision, "
                f"last_decided_at, updated_at) VALUES ({_marks(6)}) ON CONFLICT (person_key) DO UPDATE SET "
                "last_decision = excluded.last_decision, last_decided_at = excluded.last_decided_at",
                [(key, "", "", sig, at, at) for key, sig, at in w.decisions],
            )


def _is_conflict(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in {"IntegrityError", "UniqueViolationError"}


async def _schedule_chunk(
    keys: Sequence[str],
    now: dt.datetime,
    policy: ContactPolicy,
    orgs: dict[int, tuple[str, str]],
    summary: ScheduleSummary,
    loaded: dict[str, Person] | None = None,
) -> None:
    for attempt in range(3):
        people = loaded if (loaded is not None and attempt == 0) else await load_people(keys, orgs)
        writes = _Writes()
        counts: dict[str, int] = defaultdict(int)
        for person in people.values():
            if not person.referrals:
                continue
            decision = decide(person.referrals, person.ledger(), now, policy)
            counts[_plan_person(person, decision, now, writes)] += 1
        try:
            await _write(writes, now)
        except Exception as exc:
            # Another scheduler got there first (unique open invitation or idempotency key): decide
            # again from what it wrote.
            if not _is_conflict(exc) or attempt == 2:
                raise
            summary.retried_chunks += 1
            continue
        summary.invitations += counts["invitation"]
        summary.reminders += counts["reminder"]
        summary.waiting += counts["waiting"]
        summary.not_contacted += counts["not_contacted"]
        summary.completed += len(writes.completed)
        return


async def schedule(
    now: dt.datetime | None = None,
    policy: ContactPolicy | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    chunk_size: int = CHUNK_PERSONS,
) -> ScheduleSummary:
    """Compute due waves and reminders at `now` and queue what may be sent; returns counts.

    Safe to run at any time and repeatedly: a run that finds nothing new writes nothing new.
    """
    now = now or dt.datetime.now(dt.UTC)
    policy = policy or configured_policy()
    started = time.perf_counter()
    summary = ScheduleSummary()
    summary.expired, summary.completed = await close_finished_invitations(now)
    orgs = await organisations()
    keys = await candidate_persons(now, policy)
    summary.persons = len(keys)
    done = 0
    chunks = list(_chunks(keys, chunk_size))
    # Read the next chunk while this one is decided and written: the database works in its own thread
    # (SQLite) or server (PostgreSQL) while the rules run here. The task is created outside any
    # transaction, so its reads never join this chunk's write transaction.
    prefetch = asyncio.create_task(load_people(chunks[0], orgs)) if chunks else None
    for number, chunk in enumerate(chunks):
        assert prefetch is not None
        loaded = await prefetch
        prefetch = (
            asyncio.create_task(load_people(chunks[number + 1], orgs)) if number + 1 < len(chunks) else None
        )
        await _schedule_chunk(chunk, now, policy, orgs, summary, loaded)
        done += len(chunk)
        if on_progress:
            on_progress(done, len(keys))
    if not db.is_sqlite() and summary.invitations + summary.reminders >= ANALYZE_AFTER:
        # PostgreSQL plans the next run's anti-joins from table statistics; right after a bulk write
        # they still describe near-empty tables, and a nested loop over 100k rows took minutes.
        # ANALYZE samples, so it costs a fraction of a second.
        await db.current_engine().run_ddl(
            "ANALYZE survey_link, link_item, invitation, outbox_message, contact_event, contact_preference"
        )
    summary.seconds = round(time.perf_counter() - started, 3)
    log.info("schedule: %s", summary.as_dict())
    return summary


async def person_decision(
    person_key: str, now: dt.datetime | None = None, policy: ContactPolicy | None = None
) -> tuple[Person, ContactDecision]:
    """One person's data and what the rules say at `now` (for the API's schedule view)."""
    now = now or dt.datetime.now(dt.UTC)
    person = (await load_people([person_key]))[person_key]
    return person, decide(person.referrals, person.ledger(), now, policy or configured_policy())


# --- the person's own choices, and a provider's on their behalf ----------------------------------


async def _set_preference(
    person_key: str, values: dict[str, Any], event: dict[str, Any], provider_id: int | None, now: dt.datetime
) -> None:
    async with db.write_transaction():
        existing = (
            await ContactPreference.select(ContactPreference.id)
            .where(ContactPreference.person_key == person_key)
            .first()
        )
        columns = {getattr(ContactPreference, k): v for k, v in values.items()}
        columns[ContactPreference.changed_by] = provider_id
        columns[ContactPreference.updated_at] = now
        if existing:
            await ContactPreference.update(columns).where(ContactPreference.id == existing["id"])
        else:
            await ContactPreference.insert(
                ContactPreference(person_key=person_key, changed_by=provider_id, updated_at=now, **values)
            )
        # Nothing not yet sent may go out any more: cancel queued invitations and pending messages,
        # and erase the tokens kept for reminders.
        await Invitation.update({Invitation.status: "cancelled", Invitation.token_enc: None}).where(
            (Invitation.person_key == person_key) & (Invitation.status == "queued")
        )
        await Invitation.update({Invitation.token_enc: None}).where(Invitation.person_key == person_key)
        await _cancel_unsent_of_closed()
        await OutboxMessage.raw(
            "UPDATE outbox_message SET status = 'cancelled', token_enc = NULL WHERE status = 'pending' AND "
            "invitation IN (SELECT id FROM invitation WHERE person_key = {})",
            person_key,
        )
        await ContactEvent.insert(ContactEvent(**{k: v for k, v in event.items() if k != "link_hash"}))


async def opt_out(
    person_key: str, via: str, *, provider_id: int | None = None, now: dt.datetime | None = None
) -> None:
    """Record "stop": no provider contacts the person for a survey again until an explicit opt-in.

    `via` says how it was given: `survey-link`, `provider`, `sms-stop`, `cli`.
    """
    now = now or dt.datetime.now(dt.UTC)
    await _set_preference(
        person_key,
        {"opted_out_at": now, "opted_out_via": via[:20]},
        _event(person_key, "opted_out", now, reasons="opted_out", detail=f"via {via}", actor=via[:40]),
        provider_id,
        now,
    )


async def opt_in(
    person_key: str, via: str, *, provider_id: int | None = None, now: dt.datetime | None = None
) -> None:
    """Lift an opt-out (only the person's explicit wish does; a new referral's consent does not)."""
    now = now or dt.datetime.now(dt.UTC)
    async with db.write_transaction():
        await ContactPreference.update(
            {
                ContactPreference.opted_out_at: None,
                ContactPreference.opted_out_via: "",
                ContactPreference.changed_by: provider_id,
                ContactPreference.updated_at: now,
            }
        ).where(ContactPreference.person_key == person_key)
        event = _event(person_key, "opted_in", now, reasons="opted_in", detail=f"via {via}", actor=via[:40])
        await ContactEvent.insert(ContactEvent(**{k: v for k, v in event.items() if k != "link_hash"}))


async def snooze(
    person_key: str,
    until: dt.datetime,
    via: str,
    *,
    provider_id: int | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Record "not now": nothing is sent to the person before `until` (timezone-aware)."""
    if until.tzinfo is None:
        raise ValueError("snooze needs a timezone-aware datetime")
    now = now or dt.datetime.now(dt.UTC)
    await _set_preference(
        person_key,
        {"snoozed_until": until, "snoozed_via": via[:20]},
        _event(
            person_key, "snoozed", now, reasons="snoozed", detail=f"until {until:%Y-%m-%d} via {via}",
            actor=via[:40],
        ),
        provider_id,
        now,
    )  # fmt: skip


async def set_language(
    person_key: str,
    lang: str,
    via: str,
    *,
    provider_id: int | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Record the language (en or cy) the person reads messages and surveys in; every provider's
    invitations and reminders use it from now on. Returns False when it was already that language.

    `via` says how it was given: `survey-link` (the person switched language on the survey page),
    `provider`, `cli`. Nothing is cancelled: messages not yet sent, and the links of open invitations
    not yet completed, switch to the new language.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, not {lang!r}")
    now = now or dt.datetime.now(dt.UTC)
    async with db.write_transaction():
        existing = (
            await ContactPreference.select(ContactPreference.id, ContactPreference.lang)
            .where(ContactPreference.person_key == person_key)
            .first()
        )
        if existing is not None and existing["lang"] == lang:
            return False
        if existing is None:
            await ContactPreference.insert(
                ContactPreference(person_key=person_key, lang=lang, changed_by=provider_id, updated_at=now)
            )
        else:
            await ContactPreference.update(
                {
                    ContactPreference.lang: lang,
                    ContactPreference.changed_by: provider_id,
                    ContactPreference.updated_at: now,
                }
            ).where(ContactPreference.id == existing["id"])
        open_invitations = "SELECT id FROM invitation WHERE person_key = {} AND status IN ('queued', 'sent')"
        await OutboxMessage.raw(
            "UPDATE outbox_message SET lang = {} WHERE status = 'pending' AND invitation IN ("
            + open_invitations
            + ")",
            lang,
            person_key,
        )
        await SurveyLink.raw(
            "UPDATE survey_link SET lang = {} WHERE completed_at IS NULL AND id IN (SELECT link FROM "
            "invitation WHERE person_key = {} AND status IN ('queued', 'sent'))",
            lang,
            person_key,
        )
        await Invitation.update({Invitation.lang: lang}).where(
            (Invitation.person_key == person_key) & Invitation.status.is_in(list(OPEN_STATUSES))
        )
        event = _event(person_key, "language", now, reasons=f"lang_{lang}", detail=f"{lang} via {via}",
                       actor=via[:40])  # fmt: skip
        await ContactEvent.insert(ContactEvent(**{k: v for k, v in event.items() if k != "link_hash"}))
    return True


async def person_lang(person_key: str) -> str:
    """The person's language (en unless they or a provider said otherwise)."""
    row = (
        await ContactPreference.select(ContactPreference.lang)
        .where(ContactPreference.person_key == person_key)
        .first()
    )
    return row["lang"] if row and row["lang"] in LANGS else "en"


async def phone_link(
    provider: str, referral_id: str, wave: str, base_url: str, now: dt.datetime | None = None
) -> tuple[str, int]:
    """A fresh phone-mode link for a practitioner completing the survey with the person on the phone.

    Returns (url, link id). Raises LookupError for an unknown referral, ValueError for a bad wave.
    """
    if wave not in ("baseline", "exit", "follow_up"):
        raise ValueError(f"wave must be baseline, exit or follow_up, not {wave!r}")
    found = await links.referral_pk(provider, referral_id)
    if found is None:
        raise LookupError(f"no referral {referral_id!r} of {provider}")
    pk, person_key = found
    token, link_id = await links.create_link(
        person_key, [(pk, wave)], mode="phone", lang=await person_lang(person_key),
        lifetime=PHONE_LINK_LIFETIME, now=now,
    )  # fmt: skip
    now = now or dt.datetime.now(dt.UTC)
    await ContactEvent.insert(
        ContactEvent(
            person_key=person_key, referral=pk, wave=wave, kind="phone_link", reasons="practitioner",
            detail=f"phone link {link_id} issued", actor=f"provider:{provider}"[:40], at=now,
        )
    )  # fmt: skip
    return f"{base_url.rstrip('/')}/s/{token}", link_id
