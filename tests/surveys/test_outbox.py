"""The outbox and its channels against real servers on loopback: aiosmtpd for SMTP, and a local HTTP
server implementing the GOV.UK Notify endpoints the official client calls (no mocks of the client)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import json

import pytest

from surveys import outbox, scheduling
from surveys.tables import (
    CallTask,
    ContactEvent,
    DeliveryAttempt,
    Invitation,
    OutboxMessage,
)
from tests.surveys.outreach_support import (
    NotifyState,
    SmtpSink,
    add_referral,
    london,
)

T0 = london(2026, 5, 4, 10)


async def test_smtp_down_then_up_delivers_exactly_one_email(orgs: None, smtp: SmtpSink) -> None:
    await add_referral("VS", "V1")
    await scheduling.schedule(T0)

    down = await outbox.dispatch(T0)  # nothing listens on the port yet
    assert down.sent == 0 and down.retried == 1
    message = await OutboxMessage.select().first()
    assert message is not None and message["status"] == "pending" and message["attempts"] == 1
    assert message["next_attempt_at"] > T0 and message["token_enc"]
    assert message["last_error"] and "@" not in message["last_error"]
    assert (await outbox.dispatch(T0 + dt.timedelta(seconds=30))).claimed == 0  # backing off

    smtp.start()
    up = await outbox.dispatch(T0 + dt.timedelta(minutes=10))
    assert up.sent == 1
    for minutes in (20, 60, 600):
        assert (await outbox.dispatch(T0 + dt.timedelta(minutes=minutes))).sent == 0
    assert len(smtp.messages) == 1

    received = email.message_from_bytes(smtp.messages[0].content)
    assert smtp.messages[0].rcpt_tos == ["p1@example.org"]
    assert received["From"].startswith("Feedback <")
    body = received.get_payload(decode=True).decode()
    assert "https://answer.example.org/s/" in body
    sent = await OutboxMessage.select().first()
    assert sent is not None and sent["status"] == "sent" and sent["token_enc"] is None
    assert sent["idempotency_key"] in received["Message-ID"]
    attempts = await DeliveryAttempt.select().order_by(DeliveryAttempt.number)
    assert [(a["number"], a["outcome"]) for a in attempts] == [(1, "retry"), (2, "sent")]
    invitation = await Invitation.select().first()
    assert invitation is not None and invitation["status"] == "sent" and invitation["sent_at"] is not None


async def test_two_dispatchers_at_once_never_send_twice(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    for n in range(12):
        await add_referral("VS", f"V{n}", f"P{n}")
    assert (await scheduling.schedule(T0)).invitations == 12
    first, second = await asyncio.gather(outbox.dispatch(T0), outbox.dispatch(T0))
    assert first.sent + second.sent == 12
    assert len(smtp.messages) == 12
    assert len({m.rcpt_tos[0] for m in smtp.messages}) == 12


async def test_a_message_is_dead_after_the_last_attempt(orgs: None, smtp: SmtpSink) -> None:
    await add_referral("VS", "V1")
    await scheduling.schedule(T0)
    now = T0
    for _ in range(outbox.MAX_ATTEMPTS):
        await outbox.dispatch(now)
        # Stay in daytime so quiet hours never hide an attempt.
        now = london(now.year, now.month, now.day, 10) + dt.timedelta(days=1)
    message = await OutboxMessage.select().first()
    assert message is not None and message["status"] == "dead" and message["token_enc"] is None
    assert message["attempts"] == outbox.MAX_ATTEMPTS
    assert await DeliveryAttempt.count() == outbox.MAX_ATTEMPTS
    invitation = await Invitation.select().first()
    assert invitation is not None and invitation["status"] == "failed" and invitation["token_enc"] is None
    smtp.start()
    await outbox.dispatch(now)
    assert smtp.messages == []


async def test_notify_sms_and_email(orgs: None, notify: NotifyState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOP_EMAIL_VIA", "notify")
    await add_referral("VS", "V1", "P1", preferred_channel="sms")
    await add_referral("ROSA", "R1", "P2")
    assert (await scheduling.schedule(T0)).invitations == 2
    result = await outbox.dispatch(T0)
    assert result.sent == 2 and result.by_channel == {"sms": 1, "email": 1}
    by_type = {n["type"]: n for n in notify.notifications}
    assert by_type["sms"]["to"] == "07700900123" and by_type["email"]["to"] == "p2@example.org"
    assert "https://answer.example.org/s/" in by_type["sms"]["personalisation"]["body"]
    assert by_type["email"]["personalisation"]["subject"] == "A few questions for you"
    keys = {m["idempotency_key"]: m for m in await OutboxMessage.select()}
    for note in notify.notifications:
        assert note["reference"] in keys
        assert keys[note["reference"]]["provider_message_id"] == note["id"]


async def test_notify_lost_reply_is_not_sent_twice(orgs: None, notify: NotifyState) -> None:
    await add_referral("VS", "V1", "P1", preferred_channel="sms")
    await scheduling.schedule(T0)
    notify.fail_after_recording = 1  # Notify takes the message, but the reply is lost
    first = await outbox.dispatch(T0)
    assert first.retried == 1 and len(notify.notifications) == 1
    second = await outbox.dispatch(T0 + dt.timedelta(minutes=5))
    assert second.sent == 1 and len(notify.notifications) == 1  # found by reference, not sent again
    message = await OutboxMessage.select().first()
    assert message is not None and message["provider_message_id"] == notify.notifications[0]["id"]


async def test_notify_outage_then_recovery(orgs: None, notify: NotifyState) -> None:
    await add_referral("VS", "V1", "P1", preferred_channel="sms")
    await scheduling.schedule(T0)
    notify.fail_next = 2
    assert (await outbox.dispatch(T0)).retried == 1
    assert (await outbox.dispatch(T0 + dt.timedelta(minutes=2))).retried == 1
    assert (await outbox.dispatch(T0 + dt.timedelta(minutes=30))).sent == 1
    assert len(notify.notifications) == 1


async def test_assisted_channel_opens_a_call_task(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1", preferred_channel="phone")
    await scheduling.schedule(T0)
    result = await outbox.dispatch(T0)
    assert result.sent == 1 and smtp.messages == []
    tasks = await CallTask.select(CallTask.status, CallTask.provider.code)
    assert tasks == [{"status": "open", "provider.code": "VS"}]


async def test_dry_run_writes_nothing(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1")
    await scheduling.schedule(T0)
    result = await outbox.dispatch(T0, dry_run=True)
    assert result.would_send == 1 and result.sent == 0 and smtp.messages == []
    message = await OutboxMessage.select().first()
    assert message is not None and message["status"] == "pending" and message["attempts"] == 0
    assert await DeliveryAttempt.count() == 0


async def test_no_message_text_or_contact_detail_is_stored(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1")
    await scheduling.schedule(T0)
    await outbox.dispatch(T0)
    await scheduling.schedule(london(2026, 5, 11, 10))
    await outbox.dispatch(london(2026, 5, 11, 10))
    assert len(smtp.messages) == 2
    stored = json.dumps(
        [
            await table.select()
            for table in (OutboxMessage, DeliveryAttempt, ContactEvent, Invitation, CallTask)
        ],
        default=str,
    )
    body = email.message_from_bytes(smtp.messages[0].content).get_payload(decode=True).decode()
    token = body.split("/s/", 1)[1].split()[0]
    for secret in ("p1@example.org", "07700900123", "Hello", "few questions", "answer.example.org", token):
        assert secret not in stored


async def test_background_loop_runs_and_stops(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run_background(stop))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert task.exception() is None


async def test_the_language_at_sending_time_wins(orgs: None, smtp: SmtpSink) -> None:
    # A change of language that lands between the scheduler's read and its write (so the queued row
    # still says English) is caught when the message is rendered.
    from surveys.tables import ContactPreference
    from tests.surveys.outreach_support import person_key

    smtp.start()
    await add_referral("VS", "V1")
    await scheduling.schedule(T0)
    await ContactPreference.insert(ContactPreference(person_key=person_key(), lang="cy", updated_at=T0))
    message = await OutboxMessage.select(OutboxMessage.lang).first()
    assert message == {"lang": "en"}
    assert (await outbox.dispatch(T0)).sent == 1
    received = email.message_from_bytes(smtp.messages[0].content)
    assert received["Subject"] == "Ychydig o gwestiynau i chi" and received["From"].startswith("Adborth <")
