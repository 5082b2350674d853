"""The outreach API: schedule and contact history scoped to the provider, opt-out and snooze on the
person's behalf (honoured by every provider), invitations with status filters, call tasks."""

from __future__ import annotations

import datetime as dt
import email
from typing import Any

from surveys import links, outbox, scheduling
from surveys.tables import ContactPreference, Invitation
from tests.surveys.outreach_support import LONDON, SmtpSink, add_referral, london, person_key

T0 = london(2026, 5, 4, 10)


async def test_schedule_and_history_are_scoped_to_the_provider(client: Any, keys: dict[str, Any]) -> None:
    # The API answers for the real "now": waves fall due today.
    today = dt.datetime.now(dt.UTC).astimezone(LONDON).date()
    await add_referral("VS", "V1", support_start=today - dt.timedelta(days=2), referral_date=today)
    await add_referral("ROSA", "R1", support_start=today, referral_date=today)
    await scheduling.schedule(london(today.year, today.month, today.day, 10))

    r = await client.get("/api/v1/referrals/VS/V1/schedule", headers=keys["vs"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["contact_allowed"] is True and body["channel"] == "email"
    assert [(w["wave"], w["state"]) for w in body["waves"]] == [("baseline", "invited")]
    assert "ROSA" not in r.text  # the other provider is never named to VS

    history = await client.get("/api/v1/referrals/VS/V1/contact-history", headers=keys["vs"])
    assert history.status_code == 200
    assert [e["kind"] for e in history.json()] == ["invited"]
    assert "ROSA" not in history.text

    # Another provider's referral does not exist for VS; the commissioner sees it.
    assert (await client.get("/api/v1/referrals/ROSA/R1/schedule", headers=keys["vs"])).status_code == 404
    assert (
        await client.get("/api/v1/referrals/ROSA/R1/contact-history", headers=keys["vs"])
    ).status_code == 404
    assert (await client.get("/api/v1/referrals/ROSA/R1/schedule", headers=keys["opcc"])).status_code == 200
    assert (await client.get("/api/v1/referrals/VS/V1/schedule", headers=keys["vrg"])).status_code == 403


async def test_opt_out_by_one_provider_stops_the_others_wave(
    client: Any, keys: dict[str, Any], smtp: SmtpSink
) -> None:
    smtp.start()
    await add_referral("VS", "V1", support_start=dt.date(2026, 3, 2), support_end=dt.date(2026, 4, 1))
    await add_referral("ROSA", "R1", support_start=dt.date(2026, 5, 4))
    r = await client.post("/api/v1/referrals/VS/V1/opt-out", headers=keys["vs"])
    assert r.status_code == 200 and r.json()["opted_out"] is True
    assert (await client.post("/api/v1/referrals/ROSA/R1/opt-out", headers=keys["vs"])).status_code == 404

    for day in range(4, 20):
        await scheduling.schedule(london(2026, 5, day, 10))
        await outbox.dispatch(london(2026, 5, day, 10))
    assert await Invitation.count() == 0 and smtp.messages == []

    seen_by_rosa = await client.get("/api/v1/referrals/ROSA/R1/schedule", headers=keys["rosa"])
    assert seen_by_rosa.json()["opted_out"] is True and seen_by_rosa.json()["contact_allowed"] is False
    history = (await client.get("/api/v1/referrals/ROSA/R1/contact-history", headers=keys["rosa"])).json()
    assert "opted_out" in [e["kind"] for e in history]
    assert all("VS" not in (e["detail"] + e["actor"]) for e in history)


async def test_snooze_on_the_persons_behalf(client: Any, keys: dict[str, Any]) -> None:
    await add_referral("VS", "V1")
    bad = await client.post("/api/v1/referrals/VS/V1/snooze", headers=keys["vs"], json={})
    assert bad.status_code == 422
    r = await client.post("/api/v1/referrals/VS/V1/snooze", headers=keys["vs"], json={"days": 90})
    assert r.status_code == 200, r.text
    pref = await ContactPreference.select().first()
    assert pref is not None and pref["snoozed_until"] > dt.datetime.now(dt.UTC) + dt.timedelta(days=89)
    assert pref["snoozed_via"] == "provider"


async def test_invitations_list_with_status_filter(client: Any, keys: dict[str, Any], smtp: SmtpSink) -> None:
    smtp.start()
    await add_referral("VS", "V1", "P1")
    await add_referral("ROSA", "R1", "P1", support_start=dt.date(2026, 5, 6))
    await add_referral("ROSA", "R2", "P2")
    await scheduling.schedule(london(2026, 5, 6, 10))
    await outbox.dispatch(london(2026, 5, 6, 10))

    everyone = (await client.get("/api/v1/invitations", headers=keys["opcc"])).json()
    assert everyone["total"] == 2 and {i["status"] for i in everyone["items"]} == {"sent"}
    assert sum(len(i["items"]) for i in everyone["items"]) == 3

    vs = (await client.get("/api/v1/invitations", headers=keys["vs"])).json()
    assert vs["total"] == 1 and [i["provider"] for i in vs["items"][0]["items"]] == ["VS"]
    queued = (await client.get("/api/v1/invitations?status=queued", headers=keys["opcc"])).json()
    assert queued["total"] == 0
    assert (await client.get("/api/v1/invitations?status=bogus", headers=keys["opcc"])).status_code == 400


async def test_call_tasks_for_the_assisted_channel(client: Any, keys: dict[str, Any]) -> None:
    await add_referral("VS", "V1", preferred_channel="phone")
    await scheduling.schedule(T0)
    await outbox.dispatch(T0)

    tasks = (await client.get("/api/v1/call-tasks?status=open", headers=keys["vs"])).json()
    assert len(tasks) == 1 and tasks[0]["items"] == [
        {"provider": "VS", "referral_id": "V1", "wave": "baseline"}
    ]
    assert (await client.get("/api/v1/call-tasks", headers=keys["rosa"])).json() == []
    task_id = tasks[0]["id"]
    assert (await client.post(f"/api/v1/call-tasks/{task_id}/link", headers=keys["rosa"])).status_code == 404

    started = await client.post(f"/api/v1/call-tasks/{task_id}/link", headers=keys["vs"])
    assert started.status_code == 200, started.text
    view = await links.resolve_link(started.json()["url"].rsplit("/", 1)[1])
    assert view is not None and view.mode == "phone" and view.person_key == person_key()

    closed = await client.post(
        f"/api/v1/call-tasks/{task_id}/close", headers=keys["vs"], json={"outcome": "done"}
    )
    assert closed.status_code == 200 and closed.json()["status"] == "done"
    again = await client.post(
        f"/api/v1/call-tasks/{task_id}/close", headers=keys["vs"], json={"outcome": "done"}
    )
    assert again.status_code == 409


async def test_a_provider_sets_the_persons_language(
    client: Any, keys: dict[str, Any], smtp: SmtpSink
) -> None:
    smtp.start()
    await add_referral("VS", "V1", "P1")
    await add_referral("ROSA", "R1", "P1", support_start=dt.date(2026, 5, 6))
    r = await client.post("/api/v1/referrals/VS/V1/language", headers=keys["vs"], json={"lang": "cy"})
    assert r.status_code == 200, r.text
    assert r.json() == {"lang": "cy"}
    assert (
        await client.post("/api/v1/referrals/ROSA/R1/language", headers=keys["vs"], json={"lang": "cy"})
    ).status_code == 404
    for body, status in (({"lang": "fr"}, 400), ({"lang": "cy", "extra": 1}, 400), ({}, 422)):
        bad = await client.post("/api/v1/referrals/VS/V1/language", headers=keys["vs"], json=body)
        assert bad.status_code == status, body
    pref = await ContactPreference.select().first()
    assert pref is not None and pref["lang"] == "cy" and pref["opted_out_at"] is None
    schedule = (await client.get("/api/v1/referrals/VS/V1/schedule", headers=keys["vs"])).json()
    assert schedule["lang"] == "cy"

    # The combined invitation (both providers' waves) goes in Welsh, and its link opens in Welsh.
    await scheduling.schedule(london(2026, 5, 6, 10))
    assert (await outbox.dispatch(london(2026, 5, 6, 10))).sent == 1
    message = email.message_from_bytes(smtp.messages[0].content)
    assert message["Subject"] == "Ychydig o gwestiynau i chi"
    token = message.get_payload(decode=True).decode().split("/s/", 1)[1].split()[0]
    view = await links.resolve_link(token)
    assert view is not None and view.lang == "cy" and len(view.items) == 2

    # ROSA sees the change in its history, without learning who made it.
    history = (await client.get("/api/v1/referrals/ROSA/R1/contact-history", headers=keys["rosa"])).json()
    language = [e for e in history if e["kind"] == "language"]
    assert len(language) == 1 and language[0]["reasons"] == ["lang_cy"]
    assert "VS" not in language[0]["detail"] + language[0]["actor"]
