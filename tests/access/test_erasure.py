"""Erasure, subject access and retention: a person is removed from every table, nothing else is."""

from __future__ import annotations

import datetime as dt
from typing import Any

from access.erasure import erase_spent_contact_details, person_rows, pseudonymise_old_answers
from access.tables import AuditEvent
from surveys.crypto import keyring
from surveys.links import create_link, referral_pk
from surveys.tables import LinkItem, Referral, Response, SurveyLink
from tests.conftest import referral_line, referrals_csv


async def seed(client: Any, keys: dict[str, dict[str, str]]) -> None:
    for key, provider, rows in (
        ("vs", "VS", [("V1", "GONE-1"), ("V2", "STAYS-2")]),
        ("rosa", "ROSA", [("S1", "GONE-1")]),
    ):
        lines = [referral_line(provider, ref, person, support_end="2025-06-01") for ref, person in rows]
        r = await client.post(
            "/api/v1/referrals/import",
            headers=keys[key],
            files={"data": ("a.csv", referrals_csv(*lines), "text/csv")},
        )
        assert r.status_code == 200, r.text
    for provider, ref in (("VS", "V1"), ("ROSA", "S1"), ("VS", "V2")):
        pk, person_key = await referral_pk(provider, ref)
        await Response.insert(Response(referral=pk, wave="exit", barriers_text="my words")).run()
        await create_link(person_key, [(pk, "follow_up")])


async def test_erasure_removes_the_person_everywhere(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await seed(client, keys)
    gone = keyring().person_key("GONE-1")
    assert len((await person_rows(gone))["referral"]) == 2
    r = await client.post("/api/v1/erasures", json={"person_id": "GONE-1"}, headers=keys["admin"])
    assert r.status_code == 200, r.text
    assert r.json()["erased"] == {"link_item": 2, "response": 2, "survey_link": 2, "referral": 2}
    assert await person_rows(gone) == {}
    assert await Referral.count() == 1 and await Response.count() == 1
    assert await SurveyLink.count() == 1 and await LinkItem.count() == 1
    event = await AuditEvent.select().where(AuditEvent.action == "person.erase").first()
    assert event is not None and "GONE-1" not in str(event) and gone not in str(event)
    assert (
        await client.post("/api/v1/erasures", json={"person_id": "X"}, headers=keys["opcc"])
    ).status_code == 403


async def test_subject_access_exports_everything_held(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await seed(client, keys)
    r = await client.post("/api/v1/subject-access", json={"person_id": "GONE-1"}, headers=keys["admin"])
    assert r.status_code == 200, r.text
    tables = r.json()["tables"]
    assert {row["referral_id"] for row in tables["referral"]} == {"V1", "S1"}
    assert tables["referral"][0]["contact_email"] == "someone@example.org"
    assert all("person_key" not in row and "contact_email_enc" not in row for row in tables["referral"])
    assert [row["barriers_text"] for row in tables["response"]] == ["my words", "my words"]
    assert all("token_hash" not in row for row in tables["survey_link"])


async def test_retention(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await seed(client, keys)
    # Support ended 2025-06-01: the follow-up window closes 163 days later.
    assert await erase_spent_contact_details(dt.date(2025, 9, 1)) == 0
    assert await erase_spent_contact_details(dt.date(2025, 12, 1)) == 3
    assert await Referral.count().where(Referral.contact_email_enc.is_not_null()) == 0
    assert await pseudonymise_old_answers(dt.date(2031, 4, 1), years=6) == 0
    assert await pseudonymise_old_answers(dt.date(2031, 4, 1), years=5) == 3
    rows = await Referral.select(Referral.person_key, Referral.referral_id).run()
    keys_by_ref = {r["referral_id"]: r["person_key"] for r in rows}
    assert keys_by_ref["V1"] == keys_by_ref["S1"] != keys_by_ref["V2"]  # still one person, unlinkable now
    assert keys_by_ref["V1"] != keyring().person_key("GONE-1")
    assert await Response.count().where(Response.barriers_text.is_not_null()) == 0


async def test_audit_api(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await client.get("/api/v1/referrals", headers=keys["vs"])
    await client.get("/api/v1/referrals", headers={"Authorization": "Bearer vop_wrong"})
    events = (await client.get("/api/v1/audit", headers=keys["admin"])).json()
    actions = [e["action"] for e in events]
    assert "auth.failed" in actions and "referral.list" in actions
    assert (await client.get("/api/v1/audit", headers=keys["vs"])).status_code == 403
