"""The outbox dispatcher: delivers queued messages with retries, and never sends one twice.

`dispatch(now)` claims due messages (UPDATE ... WHERE status = 'pending', so two dispatchers never
claim the same row), re-checks each one just before sending (safety can change between the decision
and the send: an opt-out, a snooze, a new referral saying "not safe", a changed channel, a completed
survey), renders the neutral message with the link token (kept encrypted in the row until then), sends
it, and records the attempt. Failures are retried with exponential backoff; after `MAX_ATTEMPTS` the
message is dead. The token is erased (NULL) once a message is sent, dead or cancelled.

Exactly once, and its one limit: a message is marked sent only after the channel accepted it. If the
process dies between the acceptance and that mark, the row stays `sending`; after `LEASE` it goes back
to `pending` and is sent again. Notify closes that window (the retry first asks Notify for a message
with the same reference); SMTP cannot (there is no way to ask a server whether it has a message), so
there a crash in that instant can deliver one duplicate, which carries the same Message-ID. Results
are written every `FLUSH` messages to keep that window small.

Logs carry ids, counts and error codes only: never a recipient, a subject, a body or a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from settings import get_settings
from surveys import db, scheduling
from surveys.channels import Channel, ChannelSettings, DeliveryError, Outgoing, make_channel
from surveys.contact_rules import ContactPolicy, contact_permission, is_quiet, next_allowed_send_time
from surveys.crypto import keyring
from surveys.messages import render_message, sender_name
from surveys.tables import Invitation, OutboxMessage

log = logging.getLogger("vop.outbox")

LEASE = dt.timedelta(minutes=15)
MAX_ATTEMPTS = 8
BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_CAP = dt.timedelta(hours=6)
CLAIM_BATCH = 500
FLUSH = 50
WORKERS = {"email": 8, "sms": 4, "phone": 1}

_MESSAGE_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.idempotency_key,
    OutboxMessage.invitation,
    OutboxMessage.channel,
    OutboxMessage.kind,
    OutboxMessage.lang,
    OutboxMessage.attempts,
    OutboxMessage.token_enc,
)


@dataclass
class DispatchSummary:
    """What one dispatcher run did (counts only)."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    postponed: int = 0
    recovered: int = 0
    would_send: int = 0  # dry run: messages that would have been sent
    quiet_hours: bool = False
    dry_run: bool = False
    seconds: float = 0.0
    by_channel: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Messages sent per second."""
        return round(self.sent / self.seconds, 1) if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rate": self.rate}


@dataclass(frozen=True, slots=True)
class _Verdict:
    """Why a claimed message does not go now: cancelled for good, or postponed until a time."""

    outcome: str  # cancelled | postponed | dead
    code: str
    until: dt.datetime | None = None
    cancel_invitation: bool = False


@dataclass(slots=True)
class _Result:
    message: dict[str, Any]
    outcome: str  # sent | retry | dead | cancelled | postponed
    code: str | None = None
    provider_id: str | None = None
    until: dt.datetime | None = None
    cancel_invitation: bool = False
    duration_ms: int = 0
    person_key: str = ""


def backoff(attempt: int) -> dt.timedelta:
    """Delay before retry number `attempt` (1-based): 1, 2, 4 ... minutes, at most 6 hours, +10% jitter."""
    delay = min(BACKOFF_BASE * (2 ** max(attempt - 1, 0)), BACKOFF_CAP)
    # Jitter spreads a burst of failures (a provider outage) so the retries do not all land at once.
    return delay + delay * random.uniform(0, 0.1)


async def recover_stale(now: dt.datetime) -> int:
    """Put messages claimed longer than LEASE ago (a dispatcher died) back to pending."""
    async with db.write_transaction():
        stale = (OutboxMessage.status == "sending") & (OutboxMessage.claimed_at < now - LEASE)
        count = await OutboxMessage.count().where(stale)
        if count:
            await OutboxMessage.update(
                {OutboxMessage.status: "pending", OutboxMessage.claimed_by: None}
            ).where(stale)
    return count


async def claim(now: dt.datetime, limit: int, claimer: str) -> list[dict[str, Any]]:
    """Claim up to `limit` due messages for `claimer`; only rows still pending can be claimed."""
    lock = "" if db.is_sqlite() else " FOR UPDATE SKIP LOCKED"
    async with db.write_transaction():
        await OutboxMessage.raw(
            "UPDATE outbox_message SET status = 'sending', claimed_by = {}, claimed_at = {} "
            "WHERE status = 'pending' AND id IN (SELECT id FROM outbox_message "
            "WHERE status = 'pending' AND next_attempt_at <= {} ORDER BY next_attempt_at, id LIMIT {}"
            + lock
            + ")",
            claimer,
            now,
            now,
            limit,
        )
    return (
        await OutboxMessage.select(*_MESSAGE_COLUMNS)
        .where((OutboxMessage.claimed_by == claimer) & (OutboxMessage.status == "sending"))
        .order_by(OutboxMessage.id)
        .run()
    )


async def _due(now: dt.datetime, limit: int) -> list[dict[str, Any]]:
    return (
        await OutboxMessage.select(*_MESSAGE_COLUMNS)
        .where((OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now))
        .order_by(OutboxMessage.next_attempt_at)
        .limit(limit)
        .run()
    )


def _check(
    msg: dict[str, Any],
    inv: dict[str, Any] | None,
    person: scheduling.Person | None,
    now: dt.datetime,
    policy: ContactPolicy,
) -> _Verdict | None:
    """Why this message must not go now, or None when it may (the re-check just before sending)."""
    first = msg["kind"] == "invitation"
    if inv is None or person is None:
        return _Verdict("cancelled", "invitation_gone")
    wanted = "queued" if first else "sent"
    if inv["status"] != wanted:
        return _Verdict("cancelled", f"invitation_{inv['status']}")
    if inv["expires_at"] <= now:
        return _Verdict("cancelled", "invitation_expired", cancel_invitation=first)
    items = person.items.get(inv["id"], [])
    if items and all(i in person.completed for i in items):
        return _Verdict("cancelled", "completed")
    ledger = person.ledger()
    permission = contact_permission(person.referrals, ledger, now, policy)
    if not permission.allowed:
        codes = ",".join(r.code for r in permission.reasons)
        return _Verdict("cancelled", codes, cancel_invitation=first)
    if permission.channel != msg["channel"]:
        return _Verdict("cancelled", "channel_changed", cancel_invitation=first)
    if ledger.snoozed_until is not None and ledger.snoozed_until > now:
        return _Verdict("cancelled", "snoozed", cancel_invitation=first)
    if is_quiet(now, policy):
        return _Verdict("postponed", "quiet_hours", until=next_allowed_send_time(now, policy))
    if not msg["token_enc"]:
        return _Verdict("dead", "no_token")
    return None


def _outgoing(
    msg: dict[str, Any], inv: dict[str, Any], person: scheduling.Person, base_url: str
) -> Outgoing | _Verdict:
    keys = keyring()
    token = keys.decrypt(msg["token_enc"]) or ""
    channel = msg["channel"]
    # The person's language as it is now: a change recorded after the message was queued (by the person
    # on a survey page, or a provider) wins over the language it was queued in.
    lang = person.lang if person.preference else msg["lang"]
    to: str | None = None
    if channel in ("email", "sms"):
        newest = person.newest_referral() or {}
        to = keys.decrypt(newest.get("contact_email_enc" if channel == "email" else "contact_phone_enc"))
        if not to:
            return _Verdict("cancelled", "no_contact_detail", cancel_invitation=msg["kind"] == "invitation")
        try:
            subject, body = render_message(msg["kind"], lang, channel, f"{base_url}/s/{token}")
        except ValueError:
            return _Verdict("dead", "template_not_neutral")
    else:
        subject, body = None, ""
    return Outgoing(
        idempotency_key=msg["idempotency_key"], channel=channel, kind=msg["kind"], lang=lang, to=to,
        subject=subject, body=body, sender_name=sender_name(lang), invitation_id=inv["id"],
        provider_id=inv["provider"], retry=msg["attempts"] > 0,
    )  # fmt: skip


class _Pool:
    """Channel connections kept open for one dispatcher run (an SMTP connection per worker, reused)."""

    def __init__(self, settings: ChannelSettings) -> None:
        self.settings = settings
        self._open: dict[tuple[str, int], Channel] = {}

    def get(self, kind: str, worker: int) -> Channel:
        key = (kind, worker)
        if key not in self._open:
            self._open[key] = make_channel(kind, self.settings)
        return self._open[key]

    async def close(self) -> None:
        for channel in self._open.values():
            await channel.close()
        self._open.clear()


async def _send_all(work: list[tuple[dict[str, Any], Outgoing, str]], pool: _Pool) -> list[_Result]:
    """Send through a few connections per channel, concurrently; returns one result per message."""
    results: list[_Result] = []
    queues: dict[str, asyncio.Queue[tuple[dict[str, Any], Outgoing, str]]] = defaultdict(asyncio.Queue)
    for entry in work:
        queues[entry[1].channel].put_nowait(entry)

    async def worker(
        kind: str, number: int, queue: asyncio.Queue[tuple[dict[str, Any], Outgoing, str]]
    ) -> None:
        while not queue.empty():
            msg, out, person_key = queue.get_nowait()
            started = time.perf_counter()
            try:
                provider_id = await pool.get(kind, number).send(out)
            except DeliveryError as exc:
                ms = int((time.perf_counter() - started) * 1000)
                outcome = "dead" if exc.permanent or msg["attempts"] + 1 >= MAX_ATTEMPTS else "retry"
                results.append(_Result(msg, outcome, exc.code, duration_ms=ms, person_key=person_key))
                continue
            ms = int((time.perf_counter() - started) * 1000)
            results.append(
                _Result(msg, "sent", provider_id=provider_id, duration_ms=ms, person_key=person_key)
            )

    await asyncio.gather(
        *(
            worker(kind, n, q)
            for kind, q in queues.items()
            for n in range(min(WORKERS.get(kind, 1), q.qsize()))
        )
    )
    return results


async def _record(results: list[_Result], now: dt.datetime, claimer: str) -> None:
    """Write the outcomes of sent, failed, cancelled and postponed messages in one transaction."""
    engine = db.current_engine()

    def marks(n: int) -> list[str]:
        return db.placeholders(engine, n)

    p = marks(8)
    attempts: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    sent_invitations: list[tuple[Any, ...]] = []
    failed_invitations: list[tuple[Any, ...]] = []
    cancelled_invitations: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for r in results:
        m = r.message
        inv = m["invitation"]
        number = m["attempts"] + (1 if r.outcome in ("sent", "retry", "dead") else 0)
        token_kept = r.outcome in ("retry", "postponed")
        if r.outcome == "sent":
            status, next_at, sent_at = "sent", now, now
        elif r.outcome == "retry":
            status, next_at, sent_at = "pending", now + backoff(number), None
        elif r.outcome == "postponed":
            status, next_at, sent_at = "pending", r.until or now, None
        else:
            status, next_at, sent_at = r.outcome, now, None
        updates.append(
            (status, number, next_at, r.code, sent_at, r.provider_id, 1 if token_kept else 0, m["id"])
        )
        if r.outcome in ("sent", "retry", "dead"):
            attempts.append((m["id"], number, now, r.outcome, r.code, r.duration_ms))
        if r.outcome == "sent" and m["kind"] == "invitation":
            sent_invitations.append((now, inv))
        if r.outcome == "dead" and m["kind"] == "invitation":
            failed_invitations.append((inv,))
        if r.outcome == "cancelled" and r.cancel_invitation:
            cancelled_invitations.append((inv,))
        if r.outcome not in ("postponed", "retry") and r.person_key:
            kind = {"sent": "sent", "dead": "failed", "cancelled": "cancelled"}[r.outcome]
            events.append((r.person_key, inv, kind, m["kind"] if kind == "sent" else (r.code or "")[:300],
                           f"{m['channel']} {m['kind']}", "dispatcher", now))  # fmt: skip
    async with db.write_transaction() as tx:
        # Only the claimer's own rows: a row recovered and reclaimed elsewhere is not overwritten.
        claimed = "?" if db.is_sqlite() else f"${len(p) + 1}"
        await db.executemany(
            tx,
            f"UPDATE outbox_message SET status = {p[0]}, attempts = {p[1]}, next_attempt_at = {p[2]}, "
            f"last_error = {p[3]}, sent_at = {p[4]}, provider_message_id = {p[5]}, "
            f"token_enc = CASE WHEN {p[6]} = 1 THEN token_enc ELSE NULL END, claimed_by = NULL "
            f"WHERE id = {p[7]} AND claimed_by = {claimed}",
            [(*u, claimer) for u in updates],
        )
        if attempts:
            await db.executemany(
                tx,
                "INSERT INTO delivery_attempt (message, number, at, outcome, error, duration_ms) "
                f"VALUES ({', '.join(marks(6))})",
                attempts,
            )
        q = marks(2)
        if sent_invitations:
            await db.executemany(
                tx,
                f"UPDATE invitation SET status = 'sent', sent_at = {q[0]} "
                f"WHERE id = {q[1]} AND status = 'queued'",
                sent_invitations,
            )  # fmt: skip
        if failed_invitations:
            await db.executemany(
                tx, f"UPDATE invitation SET status = 'failed', token_enc = NULL WHERE id = {q[0]}",
                failed_invitations,
            )  # fmt: skip
        if cancelled_invitations:
            await db.executemany(
                tx,
                f"UPDATE invitation SET status = 'cancelled', token_enc = NULL WHERE id = {q[0]} "
                "AND status = 'queued'",
                cancelled_invitations,
            )
        if events:
            await db.executemany(
                tx,
                "INSERT INTO contact_event (person_key, invitation, kind, reasons, detail, actor, at, wave) "
                f"VALUES ({', '.join(marks(7))}, '')",
                events,
            )


async def _process(
    messages: list[dict[str, Any]],
    now: dt.datetime,
    claimer: str,
    policy: ContactPolicy,
    pool: _Pool,
    summary: DispatchSummary,
    dry_run: bool,
) -> None:
    base_url = get_settings().public_base_url
    inv_ids = list({m["invitation"] for m in messages})
    invitations = {
        r["id"]: r
        for r in await Invitation.select(
            Invitation.id,
            Invitation.person_key,
            Invitation.status,
            Invitation.expires_at,
            Invitation.provider,
        ).where(Invitation.id.is_in(inv_ids))
    }
    people = await scheduling.load_people(list({i["person_key"] for i in invitations.values()}))
    work: list[tuple[dict[str, Any], Outgoing, str]] = []
    results: list[_Result] = []
    for msg in messages:
        inv = invitations.get(msg["invitation"])
        person = people.get(inv["person_key"]) if inv else None
        verdict = _check(msg, inv, person, now, policy)
        prepared: Outgoing | _Verdict | None = None
        if verdict is None and inv is not None and person is not None:
            prepared = _outgoing(msg, inv, person, base_url)
            if isinstance(prepared, _Verdict):
                verdict = prepared
        key = inv["person_key"] if inv else ""
        if verdict is not None:
            results.append(
                _Result(msg, verdict.outcome, verdict.code, until=verdict.until,
                        cancel_invitation=verdict.cancel_invitation, person_key=key)
            )  # fmt: skip
        elif isinstance(prepared, Outgoing):
            work.append((msg, prepared, key))
    if dry_run:
        summary.would_send += len(work)
        for _, out, _ in work:
            summary.by_channel[out.channel] = summary.by_channel.get(out.channel, 0) + 1
        for r in results:
            setattr(summary, _COUNTER[r.outcome], getattr(summary, _COUNTER[r.outcome]) + 1)
        return
    for start in range(0, len(work), FLUSH):
        chunk = work[start : start + FLUSH]
        sent = await _send_all(chunk, pool)
        await _record(sent, now, claimer)
        results_for_summary = sent
        for r in results_for_summary:
            setattr(summary, _COUNTER[r.outcome], getattr(summary, _COUNTER[r.outcome]) + 1)
            if r.outcome == "sent":
                ch = r.message["channel"]
                summary.by_channel[ch] = summary.by_channel.get(ch, 0) + 1
    if results:
        await _record(results, now, claimer)
        for r in results:
            setattr(summary, _COUNTER[r.outcome], getattr(summary, _COUNTER[r.outcome]) + 1)


_COUNTER = {
    "sent": "sent",
    "retry": "retried",
    "dead": "dead",
    "cancelled": "cancelled",
    "postponed": "postponed",
}


async def dispatch(
    now: dt.datetime | None = None,
    dry_run: bool = False,
    *,
    limit: int | None = None,
    policy: ContactPolicy | None = None,
    batch_size: int = CLAIM_BATCH,
) -> DispatchSummary:
    """Deliver due messages at `now`; with `dry_run`, only report what would happen (writes nothing).

    Nothing leaves in quiet hours: the run returns at once with `quiet_hours` set.
    """
    now = now or dt.datetime.now(dt.UTC)
    policy = policy or scheduling.configured_policy()
    settings = ChannelSettings.from_env()
    summary = DispatchSummary(dry_run=dry_run)
    started = time.perf_counter()
    if is_quiet(now, policy):
        summary.quiet_hours = True
        return summary
    if not dry_run:
        summary.recovered = await recover_stale(now)
    claimer = uuid.uuid4().hex
    remaining = limit if limit is not None else 1 << 62
    pool = _Pool(settings)
    try:
        while remaining > 0:
            size = min(batch_size, remaining)
            messages = await _due(now, size) if dry_run else await claim(now, size, claimer)
            if not messages:
                break
            summary.claimed += len(messages)
            remaining -= len(messages)
            await _process(messages, now, claimer, policy, pool, summary, dry_run)
            if dry_run:
                break  # nothing was claimed, so the same rows would come back
    finally:
        await pool.close()
    summary.seconds = round(time.perf_counter() - started, 3)
    if summary.claimed:
        log.info("dispatch: %s", summary.as_dict())
    return summary


# --- background loops while `vop serve` runs -------------------------------------------------------


def _seconds(name: str, default: float) -> float:
    try:
        return max(1.0, float(os.environ.get(name, "") or default))
    except ValueError:
        return default


async def run_background(stop_event: asyncio.Event) -> None:
    """Schedule every VOP_SCHEDULE_EVERY_SECONDS (900) and dispatch every VOP_DISPATCH_EVERY_SECONDS
    (30) until `stop_event` is set. A failing run is logged (its error class only) and retried next time.
    """
    schedule_every = _seconds("VOP_SCHEDULE_EVERY_SECONDS", 900)
    dispatch_every = _seconds("VOP_DISPATCH_EVERY_SECONDS", 30)
    next_schedule = 0.0
    while not stop_event.is_set():
        if time.monotonic() >= next_schedule:
            try:
                # Small chunks: the rules run on the server's event loop, so each chunk is a pause
                # for the API; 500 persons is about a twentieth of a second.
                await scheduling.schedule(chunk_size=500)
            except Exception as exc:  # the loop must outlive one bad run
                log.error("background schedule failed: %s", type(exc).__name__)
            next_schedule = time.monotonic() + schedule_every
        try:
            await dispatch()
        except Exception as exc:
            log.error("background dispatch failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), timeout=dispatch_every)
