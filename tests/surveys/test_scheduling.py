"""The scheduler on a real database (SQLite and PostgreSQL): the scenarios of issue 3."""

from __future__ import annotations

import datetime as dt

import pytest

from surveys import links, outbox, scheduling
from surveys.crypto import keyring
from surveys.tables import (
    ContactEvent,
    ContactPreference,
    Invitation,
    LinkItem,
    Organisation,
    OutboxMessage,
    Referral,
    Response,
    SurveyLink,
)
from tests.surveys.outreach_support import SmtpSink, add_referral, london, person_key


async def _org_id(code: str) -> int:
    row = await Organisation.select(Organisation.id).where(Organisation.code == code).first()
    assert row is not None
    return int(row["id"])


async def test_two_providers_in_one_week_get_one_combined_invitation(orgs: None) -> None:
    await add_referral("VS", "V1", support_start=dt.date(2026, 5, 4))
    await add_referral("ROSA", "R1", support_start=dt.date(2026, 5, 7))

    first = await scheduling.schedule(london(2026, 5, 4, 10))
    assert first.persons == 1 and first.invitations == 0 and first.waiting == 1  # gathering
    assert await Invitation.count() == 0

    done = await scheduling.schedule(london(2026, 5, 7, 10))
    assert done.invitations == 1
    invitation = await Invitation.select().first()
    assert invitation is not None and invitation["status"] == "queued" and invitation["channel"] == "email"
    items = await LinkItem.select(LinkItem.referral.referral_id, LinkItem.wave).where(
        LinkItem.link == invitation["link"]
    )
    assert sorted((i["referral.referral_id"], i["wave"]) for i in items) == [
        ("R1", "baseline"),
        ("V1", "baseline"),
    ]
    assert await OutboxMessage.count() == 1
    message = await OutboxMessage.select().first()
    assert message is not None and message["kind"] == "invitation" and message["token_enc"]
    # The encrypted token opens the combined link.
    view = await links.resolve_link(keyring().decrypt(message["token_enc"]) or "")
    assert view is not None and len(view.items) == 2

    # Running again (the same day, or the week after) queues nothing more.
    again = await scheduling.schedule(london(2026, 5, 7, 10, 5))
    later = await scheduling.schedule(london(2026, 5, 12, 10))
    assert again.invitations == later.invitations == 0
    assert await Invitation.count() == 1 and await OutboxMessage.count() == 1


async def test_opt_out_via_one_provider_stops_another_providers_wave(orgs: None) -> None:
    await add_referral("VS", "V1", support_start=dt.date(2026, 3, 2), support_end=dt.date(2026, 4, 20))
    rosa = await add_referral("ROSA", "R1", support_start=dt.date(2026, 5, 4))
    await scheduling.opt_out(
        person_key(), "provider", provider_id=await _org_id("VS"), now=london(2026, 5, 1)
    )

    summary = await scheduling.schedule(london(2026, 5, 4, 10))
    assert summary.invitations == 0 and summary.not_contacted == 1
    assert await Invitation.count() == 0 and await OutboxMessage.count() == 0
    pref = await ContactPreference.select().first()
    assert pref is not None and pref["opted_out_via"] == "provider"
    # The ROSA wave's own history says why it was not sent.
    held = await ContactEvent.select().where(
        (ContactEvent.referral == rosa) & (ContactEvent.kind == "not_contacted")
    )
    assert held and "opted_out" in held[0]["reasons"]
    # A second run with the same reasons does not repeat the history.
    before = await ContactEvent.count().where(ContactEvent.kind == "not_contacted")
    await scheduling.schedule(london(2026, 5, 5, 10))
    assert await ContactEvent.count().where(ContactEvent.kind == "not_contacted") == before


async def test_opt_out_after_queueing_cancels_the_unsent_message(orgs: None, smtp: SmtpSink) -> None:
    await add_referral("VS", "V1")
    await scheduling.schedule(london(2026, 5, 4, 10))
    assert await OutboxMessage.count().where(OutboxMessage.status == "pending") == 1
    await scheduling.opt_out(person_key(), "survey-link", now=london(2026, 5, 4, 10, 1))
    smtp.start()
    sent = await outbox.dispatch(london(2026, 5, 4, 10, 2))
    assert sent.sent == 0 and smtp.messages == []
    message = await OutboxMessage.select().first()
    assert message is not None and message["status"] == "cancelled" and message["token_enc"] is None


async def test_not_safe_to_contact_is_never_sent_anything(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1", "P1", safe_to_contact=False, support_end=dt.date(2026, 6, 1))
    # Another provider's newer referral says safe: the unsafe one, active within 90 days, still blocks.
    await add_referral(
        "ROSA",
        "R1",
        "P1",
        support_start=dt.date(2026, 5, 20),
        flags_at=dt.datetime(2026, 5, 19, tzinfo=dt.UTC),
    )
    day = dt.date(2026, 5, 1)
    for _ in range(60):
        for hour in (9, 15):
            now = london(day.year, day.month, day.day, hour)
            await scheduling.schedule(now)
            await outbox.dispatch(now)
        day += dt.timedelta(days=1)
    assert await Invitation.count() == 0 and await OutboxMessage.count() == 0
    assert smtp.messages == []
    reasons = {e["reasons"] for e in await ContactEvent.select(ContactEvent.reasons)}
    assert any("recent_unsafe" in r or "latest_unsafe" in r for r in reasons)


async def test_safety_changing_after_queueing_stops_the_message(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    pk = await add_referral("VS", "V1")
    await scheduling.schedule(london(2026, 5, 4, 10))
    await Referral.update(
        {Referral.safe_to_contact: False, Referral.updated_at: dt.datetime(2026, 5, 4, 9, 1, tzinfo=dt.UTC)}
    ).where(Referral.id == pk)
    result = await outbox.dispatch(london(2026, 5, 4, 10, 5))
    assert result.sent == 0 and result.cancelled == 1 and smtp.messages == []
    invitation = await Invitation.select().first()
    assert invitation is not None and invitation["status"] == "cancelled" and invitation["token_enc"] is None


async def test_nothing_is_sent_in_quiet_hours(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1")
    late = await scheduling.schedule(london(2026, 5, 4, 22, 30))
    assert late.invitations == 0 and await OutboxMessage.count() == 0
    early = await scheduling.schedule(london(2026, 5, 5, 7, 59))
    assert early.invitations == 0

    # Queued just before 21:00, the dispatcher finds it in quiet hours: it waits for the morning.
    queued = await scheduling.schedule(london(2026, 5, 5, 20, 55))
    assert queued.invitations == 1
    night = await outbox.dispatch(london(2026, 5, 5, 21, 0))
    assert night.quiet_hours and night.sent == 0 and smtp.messages == []
    message = await OutboxMessage.select().first()
    assert message is not None and message["status"] == "pending"
    morning = await outbox.dispatch(london(2026, 5, 6, 8, 0))
    assert morning.sent == 1 and len(smtp.messages) == 1


async def test_reminders_stop_on_completion(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    pk = await add_referral("VS", "V1")
    await scheduling.schedule(london(2026, 5, 4, 10))
    assert (await outbox.dispatch(london(2026, 5, 4, 10))).sent == 1

    week = await scheduling.schedule(london(2026, 5, 11, 10))
    assert week.reminders == 1
    assert (await outbox.dispatch(london(2026, 5, 11, 10))).sent == 1
    assert len(smtp.messages) == 2
    assert b"A reminder" in smtp.messages[1].content

    # The person completes the survey: no more reminders, and the invitation is closed.
    await Response.insert(
        Response(
            referral=pk, wave="baseline", completed_at=dt.datetime(2026, 5, 12, 9, tzinfo=dt.UTC), mode="web"
        )
    )
    fortnight = await scheduling.schedule(london(2026, 5, 18, 10))
    assert fortnight.reminders == 0
    await outbox.dispatch(london(2026, 5, 18, 10))
    assert len(smtp.messages) == 2
    invitation = await Invitation.select().first()
    assert invitation is not None and invitation["status"] == "completed" and invitation["token_enc"] is None
    assert invitation["reminders_sent"] == 1


async def test_a_reminder_queued_before_completion_is_not_sent(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1")
    await scheduling.schedule(london(2026, 5, 4, 10))
    await outbox.dispatch(london(2026, 5, 4, 10))
    await scheduling.schedule(london(2026, 5, 11, 10))  # reminder queued
    # Completed through the link (the survey pages set completed_at) before the dispatcher runs.
    invitation = await Invitation.select().first()
    assert invitation is not None
    from surveys.tables import SurveyLink

    await SurveyLink.update({SurveyLink.completed_at: dt.datetime(2026, 5, 11, 9, 1, tzinfo=dt.UTC)}).where(
        SurveyLink.id == invitation["link"]
    )
    result = await outbox.dispatch(london(2026, 5, 11, 10, 5))
    assert result.sent == 0 and result.cancelled == 1 and len(smtp.messages) == 1


async def test_snooze_holds_every_provider(orgs: None) -> None:
    await add_referral("VS", "V1")
    await scheduling.snooze(person_key(), london(2026, 5, 20, 9), "survey-link", now=london(2026, 5, 1))
    assert (await scheduling.schedule(london(2026, 5, 4, 10))).invitations == 0
    assert (await scheduling.schedule(london(2026, 5, 20, 10))).invitations == 1


async def test_invitations_expire_and_reminders_stop(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1")
    await scheduling.schedule(london(2026, 5, 4, 10))
    await outbox.dispatch(london(2026, 5, 4, 10))
    for day in (11, 18):
        await scheduling.schedule(london(2026, 5, day, 10))
        await outbox.dispatch(london(2026, 5, day, 10))
    assert len(smtp.messages) == 3  # invitation and two reminders, the last one says so
    assert b"Last reminder" in smtp.messages[2].content
    summary = await scheduling.schedule(london(2026, 6, 2, 10))
    assert summary.expired == 1 and summary.reminders == 0 and summary.invitations == 0
    invitation = await Invitation.select().first()
    assert invitation is not None and invitation["status"] == "expired" and invitation["token_enc"] is None


async def test_phone_link_for_a_practitioner(orgs: None) -> None:
    await add_referral("VS", "V1")
    url, link_id = await scheduling.phone_link("VS", "V1", "baseline", "https://answer.example.org")
    token = url.rsplit("/", 1)[1]
    view = await links.resolve_link(token)
    assert view is not None and view.id == link_id and view.mode == "phone"
    assert await ContactEvent.count().where(ContactEvent.kind == "phone_link") == 1


async def test_cli_schedule_dispatch_invitations_and_link(orgs: None) -> None:
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    vop = str(Path(sys.executable).parent / "vop")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [vop, *args], capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"}
        )

    await add_referral("VS", "V1")
    done = run("schedule", "--now", "2026-05-04T10:00")
    assert done.returncode == 0, done.stderr
    assert "1 invitations" in done.stdout
    dry = run("dispatch", "--now", "2026-05-04T10:00", "--dry-run")
    assert dry.returncode == 0 and "1 would be sent" in dry.stdout
    quiet = run("dispatch", "--now", "2026-05-04T23:00")
    assert quiet.returncode == 0 and "quiet hours" in quiet.stdout
    listed = run("invitations", "--status", "queued", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["items"][0]["items"][0]["referral_id"] == "V1"
    link = run("link", "--provider", "VS", "--referral", "V1", "--wave", "baseline")
    assert link.returncode == 0 and "/s/" in link.stdout
    assert (await links.resolve_link(link.stdout.strip().rsplit("/", 1)[1])) is not None
    missing = run("link", "--provider", "VS", "--referral", "NOPE", "--wave", "baseline")
    assert missing.returncode == 1 and "no referral" in missing.stderr and "Traceback" not in missing.stderr
    bad = run("schedule", "--now", "yesterday")
    assert bad.returncode == 1 and "ISO 8601" in bad.stderr


async def test_scales_switched_on_for_a_service_are_asked(
    orgs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import settings

    configured = dataclasses.replace(settings.get_settings(), scales_by_service={"sav": ["swemwbs", "phq9"]})
    monkeypatch.setattr(scheduling, "get_settings", lambda: configured)
    await add_referral("ROSA", "R1", person_id="P-SAV", support_start=dt.date(2026, 5, 4))
    await add_referral("VS", "V1", person_id="P-GEN", support_start=dt.date(2026, 5, 4))
    await scheduling.schedule(london(2026, 5, 12, 10))
    rows = await SurveyLink.select(SurveyLink.person_key, SurveyLink.scales).run()
    scales = {r["person_key"]: r["scales"] for r in rows}
    assert scales == {person_key("P-SAV"): "phq9,swemwbs", person_key("P-GEN"): ""}


def test_scales_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import settings

    monkeypatch.setenv("VOP_SCALES_BY_SERVICE", "sav:swemwbs,phq9;da:gad7")
    assert settings.load_settings().scales_by_service == {"sav": ["swemwbs", "phq9"], "da": ["gad7"]}
    monkeypatch.setenv("VOP_SCALES_BY_SERVICE", "sav:moodscore")
    with pytest.raises(settings.SettingsError, match="VOP_SCALES_BY_SERVICE"):
        settings.load_settings()
