from access.keys import create_key
from surveys.services import add_organisation


async def test_health_and_referral_roundtrip(client) -> None:
    r = await client.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    await add_organisation("VS", "Victim Support", "provider", "general")
    key, _ = await create_key("VS", "provider")
    body = {
        "provider": "VS",
        "referral_id": "R1",
        "person_id": "P1",
        "referral_date": "2025-05-01",
        "source": "police",
        "crime_type": "burglary_residential",
        "status": "referred",
    }
    r = await client.post("/api/v1/referrals", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text
    r = await client.get("/api/v1/referrals", headers={"Authorization": f"Bearer {key}"})
    assert r.json()["total"] == 1
