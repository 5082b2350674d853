"""The metrics over HTTP and on the command line: the same JSON, scoped to who asks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import referral_line, referrals_csv

VOP = str(Path(sys.executable).parent / "vop")


async def seed(client: Any, keys: dict[str, dict[str, str]]) -> None:
    vs = [referral_line("VS", f"V{n}", f"P{n}", support_end="2025-07-01", status="closed") for n in range(12)]
    rosa = [referral_line("ROSA", "S1", "P1", crime_type="rape")]
    for key, lines in (("vs", vs), ("rosa", rosa)):
        r = await client.post(
            "/api/v1/referrals/import",
            headers=keys[key],
            files={"data": ("a.csv", referrals_csv(*lines), "text/csv")},
        )
        assert r.status_code == 200, r.text


async def test_api_and_cli_agree(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await seed(client, keys)
    r = await client.get(
        "/api/v1/metrics", params={"period": "2025-26", "by": "provider,sex"}, headers=keys["opcc"]
    )
    assert r.status_code == 200, r.text
    api = r.json()
    assert api["groups"][0]["by"] == {}
    whole = api["groups"][0]["metrics"]
    assert (
        whole["referrals_received"] == 13
        and whole["victims_referred"] == 12
        and whole["episodes_closed"] == 12
    )
    done = subprocess.run(
        [VOP, "metrics", "--period", "2025-26", "--by", "provider,sex", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == api


async def test_provider_sees_only_its_own_figures(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await seed(client, keys)
    r = await client.get(
        "/api/v1/metrics", params={"period": "2025-26", "provider": "VS"}, headers=keys["rosa"]
    )
    assert r.status_code == 200
    assert r.json()["groups"][0]["metrics"]["referrals_received"] == 1  # ROSA's own, whatever was asked
    assert (
        await client.get("/api/v1/metrics", params={"period": "2025-26"}, headers=keys["vrg"])
    ).status_code == 403


async def test_bad_period_and_breakdown(client: Any, keys: dict[str, dict[str, str]]) -> None:
    r = await client.get("/api/v1/metrics", params={"period": "2025-27"}, headers=keys["opcc"])
    assert r.status_code == 400 and "2025-27" in r.text
    r = await client.get("/api/v1/metrics", params={"period": "2025-26", "by": "shoe"}, headers=keys["opcc"])
    assert r.status_code == 400 and "shoe" in r.text
    done = subprocess.run([VOP, "metrics", "--period", "Q9"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
