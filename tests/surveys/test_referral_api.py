"""The referral API: create, read, update, list; scoping between providers; what is stored."""

from __future__ import annotations

from typing import Any

from surveys.crypto import keyring
from surveys.tables import Referral
from tests.conftest import referral_line, referrals_csv

BODY = {
    "provider": "VS",
    "referral_id": "R1",
    "person_id": "PERSON-42",
    "referral_date": "2025-05-01",
    "source": "police",
    "crime_type": "burglary_residential",
    "status": "referred",
    "contact_email": "someone@example.org",
    "preferred_channel": "email",
    "safe_to_contact": True,
    "consent_to_survey": True,
}


async def test_create_read_update_list(client: Any, keys: dict[str, dict[str, str]]) -> None:
    r = await client.post("/api/v1/referrals", json=BODY, headers=keys["vs"])
    assert r.status_code == 201, r.text
    created = r.json()
    assert (
        created["has_contact_email"] is True and "contact_email" not in created and "person_id" not in created
    )
    r = await client.post("/api/v1/referrals", json=BODY, headers=keys["vs"])
    assert r.status_code == 409
    r = await client.patch(
        "/api/v1/referrals/VS/R1",
        json={"status": "supported", "support_start": "2025-05-03"},
        headers=keys["vs"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "supported" and r.json()["support_start"] == "2025-05-03"
    r = await client.patch("/api/v1/referrals/VS/R1", json={"support_end": "2025-05-01"}, headers=keys["vs"])
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "support_end"
    r = await client.get("/api/v1/referrals/VS/R1", headers=keys["opcc"])
    assert r.json()["status"] == "supported"
    r = await client.get("/api/v1/referrals", params={"status": "supported"}, headers=keys["admin"])
    assert r.json()["total"] == 1


async def test_bad_body_names_the_field(client: Any, keys: dict[str, dict[str, str]]) -> None:
    r = await client.post("/api/v1/referrals", json={**BODY, "source": "pigeon"}, headers=keys["vs"])
    assert r.status_code == 400
    assert "source" in r.text
    r = await client.post("/api/v1/referrals", json={**BODY, "shoe": 9}, headers=keys["vs"])
    assert r.status_code == 400 and "shoe" in r.text
    r = await client.post("/api/v1/referrals", json={**BODY, "contact_email": "nope"}, headers=keys["vs"])
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "contact_email", "reason": "is not an email address"}
    ]
    assert await Referral.count() == 0


async def test_same_person_same_key_but_providers_cannot_see_each_other(
    client: Any, keys: dict[str, dict[str, str]]
) -> None:
    await client.post(
        "/api/v1/referrals/import",
        headers=keys["vs"],
        files={"data": ("a.csv", referrals_csv(referral_line("VS", "V1", "SHARED-1")), "text/csv")},
    )
    await client.post(
        "/api/v1/referrals/import",
        headers=keys["rosa"],
        files={"data": ("b.csv", referrals_csv(referral_line("ROSA", "S1", " SHARED-1")), "text/csv")},
    )
    rows = await Referral.select(Referral.person_key, Referral.referral_id).run()
    assert len(rows) == 2 and rows[0]["person_key"] == rows[1]["person_key"]
    assert rows[0]["person_key"] == keyring().person_key("SHARED-1")
    # Another provider's referral is answered as if it did not exist.
    assert (await client.get("/api/v1/referrals/VS/V1", headers=keys["rosa"])).status_code == 404
    assert (await client.get("/api/v1/referrals/ROSA/S1", headers=keys["vs"])).status_code == 404
    assert (
        await client.patch("/api/v1/referrals/VS/V1", json={"status": "closed"}, headers=keys["rosa"])
    ).status_code == 404
    listed = (await client.get("/api/v1/referrals", params={"provider": "VS"}, headers=keys["rosa"])).json()
    assert [i["referral_id"] for i in listed["items"]] == ["S1"]
    r = await client.post("/api/v1/referrals", json={**BODY, "provider": "VS"}, headers=keys["rosa"])
    assert r.status_code == 422
    everything = (await client.get("/api/v1/referrals", headers=keys["opcc"])).json()
    assert everything["total"] == 2


async def test_contact_details_are_encrypted_at_rest(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await client.post("/api/v1/referrals", json={**BODY, "contact_phone": "07700 900123"}, headers=keys["vs"])
    row = await Referral.select().first()
    stored = " ".join(str(v) for v in row.values())
    assert "someone@example.org" not in stored and "07700 900123" not in stored and "PERSON-42" not in stored
    assert keyring().decrypt(row["contact_email_enc"]) == "someone@example.org"
    assert keyring().decrypt(row["contact_phone_enc"]) == "07700 900123"


async def test_who_may_call(client: Any, keys: dict[str, dict[str, str]]) -> None:
    assert (await client.get("/api/v1/referrals")).status_code == 401
    assert (
        await client.get("/api/v1/referrals", headers={"Authorization": "Bearer vop_nope"})
    ).status_code == 401
    assert (await client.get("/api/v1/referrals", headers=keys["vrg"])).status_code == 403
    assert (await client.get("/api/v1/referrals", headers=keys["vs"])).status_code == 200


async def test_pagination(client: Any, keys: dict[str, dict[str, str]]) -> None:
    lines = [
        referral_line(referral_id=f"P{n:03d}", referral_date=f"2025-05-{n % 28 + 1:02d}") for n in range(25)
    ]
    await client.post(
        "/api/v1/referrals/import",
        headers=keys["vs"],
        files={"data": ("a.csv", referrals_csv(*lines), "text/csv")},
    )
    seen: list[str] = []
    dates: list[str] = []
    for page in (1, 2, 3):
        body = (
            await client.get("/api/v1/referrals", params={"page": page, "page_size": 10}, headers=keys["vs"])
        ).json()
        assert body["total"] == 25
        seen += [i["referral_id"] for i in body["items"]]
        dates += [i["referral_date"] for i in body["items"]]
    assert len(seen) == 25 and len(set(seen)) == 25
    assert dates == sorted(dates, reverse=True)  # newest referral first
    r = await client.get(
        "/api/v1/referrals", params={"from": "2025-05-27", "to": "2025-05-28"}, headers=keys["vs"]
    )
    assert {i["referral_date"] for i in r.json()["items"]} <= {"2025-05-27", "2025-05-28"}
    assert (await client.get("/api/v1/referrals", params={"page": 0}, headers=keys["vs"])).status_code == 400
