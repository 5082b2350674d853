"""The scheduler on a real database (SQLite and PostgreSQL): the scenarios of issue 3."""

from __future__ import annotations

import datetime as dt
import email
from collections.abc import Callable, Iterator

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
from tests.surveys.outreach_support import LONDON, SmtpSink, add_referral, london, person_key


async def _org_id(code: str) -> int:
    row = await Organisation.select(Organisation.id).where(Organisation.code == code).first()
    assert row is not None
    return int(row["id"])


async def test_two_providers_in_one_week_get_one_combined_invitation(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
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
    # One email arrives, and its link asks about both supports.
    for day in (7, 8, 12):
        await outbox.dispatch(london(2026, 5, day, 10, 10))
    assert len(smtp.messages) == 1 and smtp.messages[0].rcpt_tos == ["p1@example.org"]


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


# --- wave timing per service and provider (VOP_WAVES*) ----------------------------------------------


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set VOP_* variables and re-read the settings, as a restart would; undone after the test."""
    import settings

    def set_env(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings.get_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    settings.get_settings.cache_clear()


async def _invited_on() -> dict[tuple[str, str], dt.date]:
    """(referral id, wave) -> the London date its invitation was decided."""
    rows = await LinkItem.select(LinkItem.referral.referral_id, LinkItem.wave, LinkItem.link).run()
    created = {
        r["link"]: r["created_at"] for r in await Invitation.select(Invitation.link, Invitation.created_at)
    }
    return {
        (r["referral.referral_id"], r["wave"]): created[r["link"]].astimezone(LONDON).date() for r in rows
    }


async def test_waves_follow_the_timing_configured_per_service_and_provider(
    orgs: None, configure: Callable[..., None]
) -> None:
    # ROSA runs a sexual-violence service: no baseline, follow-up after 180 days. BARN (cse) follows up
    # after 35 days, and its own setting wins over the default; VS (general) keeps the defaults.
    configure(
        VOP_WAVES_BY_SERVICE="sav:baseline=off,follow_up=180",
        VOP_WAVES_BY_PROVIDER="BARN:follow_up=35",
    )
    start, end = dt.date(2026, 1, 5), dt.date(2026, 3, 2)
    await add_referral("VS", "V1", "P1", support_start=start, support_end=end)
    await add_referral("ROSA", "R1", "P2", support_start=start, support_end=end)
    await add_referral("BARN", "B1", "P3", support_start=start, support_end=end)
    await add_referral("ROSA", "R2", "P4", support_start=end)  # support open: would want a baseline

    days = [end, end + dt.timedelta(days=34), end + dt.timedelta(days=35), dt.date(2026, 5, 30)]
    days += [dt.date(2026, 5, 31), end + dt.timedelta(days=179), end + dt.timedelta(days=180)]
    for day in days:
        await scheduling.schedule(london(day.year, day.month, day.day, 10))

    assert await _invited_on() == {
        ("V1", "exit"): end,
        ("R1", "exit"): end,
        ("B1", "exit"): end,
        ("B1", "follow_up"): end + dt.timedelta(days=35),
        ("V1", "follow_up"): end + dt.timedelta(days=90),  # 2026-05-31
        ("R1", "follow_up"): end + dt.timedelta(days=180),
    }
    # Nothing at all for the open sexual-violence episode: its only wave so far is switched off.
    assert await ContactEvent.count().where(ContactEvent.referral.referral_id == "R2") == 0


async def test_a_wave_switched_off_by_default_and_on_for_one_provider(
    orgs: None, configure: Callable[..., None]
) -> None:
    configure(VOP_WAVES="baseline=14,follow_up=off", VOP_WAVES_BY_PROVIDER="ROSA:follow_up=60")
    start, end = dt.date(2026, 1, 5), dt.date(2026, 2, 2)
    await add_referral("VS", "V1", "P1", support_start=start, support_end=None)
    await add_referral("VS", "V2", "P2", support_start=dt.date(2025, 11, 3), support_end=end)
    await add_referral("ROSA", "R1", "P3", support_start=dt.date(2025, 11, 3), support_end=end)
    for day in (start, start + dt.timedelta(days=13), start + dt.timedelta(days=14), end):
        await scheduling.schedule(london(day.year, day.month, day.day, 10))
    for day in (end + dt.timedelta(days=59), end + dt.timedelta(days=60), end + dt.timedelta(days=90)):
        await scheduling.schedule(london(day.year, day.month, day.day, 10))
    assert await _invited_on() == {
        ("V1", "baseline"): start + dt.timedelta(days=14),
        ("V2", "exit"): end,
        ("R1", "exit"): end,
        ("R1", "follow_up"): end + dt.timedelta(days=60),
    }


def test_wave_settings_are_checked_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import settings

    monkeypatch.setenv("VOP_WAVES_BY_SERVICE", "sav:baseline=off,follow_up=180")
    monkeypatch.setenv("VOP_WAVES_BY_PROVIDER", "BARN:follow_up=30;VS:exit=7")
    monkeypatch.setenv("VOP_WAVES", "follow_up=120")
    policy = settings.load_settings().contact_policy
    assert policy is not None and policy.follow_up_days == 120 and policy.baseline_days == 0
    assert policy.waves_by_service == {"sav": {"baseline": None, "follow_up": 180}}
    assert policy.waves_by_provider == {"BARN": {"follow_up": 30}, "VS": {"exit": 7}}
    for name, value, message in (
        ("VOP_WAVES_BY_SERVICE", "SAV:follow_up=180", "'SAV' is not a service"),
        ("VOP_WAVES_BY_SERVICE", "sav:followup=180", r"VOP_WAVES_BY_SERVICE \(sav\) must look like"),
        ("VOP_WAVES_BY_SERVICE", "sav:follow_up=soon", r"VOP_WAVES_BY_SERVICE \(sav\) must look like"),
        ("VOP_INVITATION_EXPIRY_DAYS", "0", "expiry_days must be at least 1"),
        ("VOP_WAVES_BY_SERVICE", "sav:follow_up=1000", "at most 730 days"),
        ("VOP_WAVES_BY_SERVICE", "sav follow_up=10", "is not a service"),
        ("VOP_WAVES_BY_PROVIDER", "VS:exit=7;VS:exit=8", "each provider once"),
        ("VOP_WAVES_BY_PROVIDER", "V S:exit=7", "not a provider code"),
        ("VOP_WAVES", "follow_up=5,exit=10", "must come after exit"),
        ("VOP_WAVES_BY_PROVIDER", "VS:exit=150", "provider 'VS'.*must come after exit"),
        ("VOP_REMINDER_DAYS", "7,40", "before the invitation expires"),
        ("VOP_QUIET_HOURS", "9pm-8am", "VOP_QUIET_HOURS must look like 21:00-08:00"),
    ):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with pytest.raises(settings.SettingsError, match=message):
                settings.load_settings()


def test_a_bad_wave_setting_stops_the_command_with_a_clear_error() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    vop = str(Path(sys.executable).parent / "vop")
    env = {**os.environ, "VOP_WAVES_BY_SERVICE": "sav:follow_up=later"}
    done = subprocess.run([vop, "schedule"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert "configuration error" in done.stderr and "VOP_WAVES_BY_SERVICE" in done.stderr
    assert "Traceback" not in done.stderr


async def test_configured_spacing_expiry_and_quiet_hours_are_used(
    orgs: None, configure: Callable[..., None]
) -> None:
    configure(VOP_QUIET_HOURS="19:00-09:00", VOP_INVITATION_EXPIRY_DAYS="10", VOP_REMINDER_DAYS="5")
    await add_referral("VS", "V1")
    assert (await scheduling.schedule(london(2026, 5, 4, 8, 30))).invitations == 0  # quiet until 09:00
    assert (await scheduling.schedule(london(2026, 5, 4, 9, 0))).invitations == 1
    assert (await outbox.dispatch(london(2026, 5, 4, 19, 30))).quiet_hours
    invitation = await Invitation.select().first()
    assert invitation is not None
    assert invitation["expires_at"] == london(2026, 5, 4, 9) + dt.timedelta(days=10)


# --- the person's language ---------------------------------------------------------------------------


async def test_invitation_reminders_and_link_in_the_persons_language(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1", "P1")
    await add_referral("VS", "V2", "P2")
    assert await scheduling.set_language(person_key("P1"), "cy", "provider", now=london(2026, 5, 1))
    assert not await scheduling.set_language(person_key("P1"), "cy", "provider")  # already Welsh
    assert (await scheduling.schedule(T0 := london(2026, 5, 4, 10))).invitations == 2
    assert (await outbox.dispatch(T0)).sent == 2
    by_to = {m.rcpt_tos[0]: email.message_from_bytes(m.content) for m in smtp.messages}
    welsh, english = by_to["p1@example.org"], by_to["p2@example.org"]
    assert welsh["Subject"] == "Ychydig o gwestiynau i chi" and welsh["From"].startswith("Adborth <")
    assert english["Subject"] == "A few questions for you" and english["From"].startswith("Feedback <")
    # The link opens in Welsh.
    views = {}
    for to, message in by_to.items():
        token = message.get_payload(decode=True).decode().split("/s/", 1)[1].split()[0]
        views[to] = await links.resolve_link(token)
    assert views["p1@example.org"].lang == "cy" and views["p2@example.org"].lang == "en"  # type: ignore[union-attr]

    await scheduling.schedule(london(2026, 5, 11, 10))
    assert (await outbox.dispatch(london(2026, 5, 11, 10))).sent == 2
    reminders = {m.rcpt_tos[0]: email.message_from_bytes(m.content) for m in smtp.messages[2:]}
    assert reminders["p1@example.org"]["Subject"].startswith("Nodyn atgoffa")
    assert reminders["p2@example.org"]["Subject"].startswith("A reminder")
    history = await ContactEvent.select().where(ContactEvent.kind == "language")
    assert [(e["reasons"], e["actor"]) for e in history] == [("lang_cy", "provider")]


async def test_switching_to_welsh_on_the_survey_page_is_remembered(orgs: None, smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1", support_end=dt.date(2026, 6, 1))
    await scheduling.schedule(T0 := london(2026, 5, 4, 10))
    await outbox.dispatch(T0)
    await scheduling.schedule(london(2026, 5, 11, 10))  # reminder queued in English
    # The person opens the link and switches to Welsh (the page calls set_language): the reminder not
    # yet sent, the open link and every later invitation are in Welsh.
    assert await scheduling.set_language(person_key(), "cy", "survey-link")
    assert (await outbox.dispatch(london(2026, 5, 11, 10, 5))).sent == 1
    reminder = email.message_from_bytes(smtp.messages[1].content)
    assert reminder["Subject"].startswith("Nodyn atgoffa") and reminder["From"].startswith("Adborth <")
    first = await Invitation.select().first()
    assert first is not None and first["lang"] == "cy"
    link = await SurveyLink.select(SurveyLink.lang).where(SurveyLink.id == first["link"]).first()
    assert link == {"lang": "cy"}

    await scheduling.schedule(london(2026, 6, 4, 10))  # exit wave, 30 days after the first invitation
    await outbox.dispatch(london(2026, 6, 4, 10))
    exit_mail = email.message_from_bytes(smtp.messages[-1].content)
    assert exit_mail["Subject"] == "Ychydig o gwestiynau i chi"
    pref = await ContactPreference.select().first()
    assert pref is not None and pref["lang"] == "cy" and pref["opted_out_at"] is None
    # A phone link for a practitioner opens in the person's language too.
    url, _ = await scheduling.phone_link("VS", "V1", "exit", "https://answer.example.org")
    view = await links.resolve_link(url.rsplit("/", 1)[1])
    assert view is not None and view.lang == "cy"


async def test_cli_sets_the_persons_language_and_contact_preference(orgs: None, smtp: SmtpSink) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    vop = str(Path(sys.executable).parent / "vop")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [vop, *args], capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"}
        )

    smtp.start()
    await add_referral("VS", "V1")
    done = run("contact-preference", "--provider", "VS", "--referral", "V1", "--lang", "cy")
    assert done.returncode == 0, done.stderr
    assert "language cy; not opted out" in done.stdout
    await scheduling.schedule(T0 := london(2026, 5, 4, 10))
    await outbox.dispatch(T0)
    assert email.message_from_bytes(smtp.messages[0].content)["Subject"] == "Ychydig o gwestiynau i chi"
    bad = run("contact-preference", "--provider", "VS", "--referral", "V1", "--lang", "fr")
    assert bad.returncode == 2
    missing = run("contact-preference", "--provider", "VS", "--referral", "NOPE", "--lang", "cy")
    assert missing.returncode == 1 and "no referral" in missing.stderr
    stop = run("contact-preference", "--provider", "VS", "--referral", "V1", "--opt-out")
    assert stop.returncode == 0 and "language cy; opted out" in stop.stdout
