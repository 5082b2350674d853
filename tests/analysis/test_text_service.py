"""Stored answers through the text pipeline: alerts for the supporting provider only, the VRG's
suppressed view, the review queue, and the command-line tools."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analysis import services
from analysis.tables import SafeguardingAlert, TextAnalysis
from surveys.links import referral_pk
from surveys.tables import Response
from tests.conftest import referral_line, referrals_csv

VOP = str(Path(sys.executable).parent / "vop")
WHEN = dt.datetime(2025, 9, 1, 12, tzinfo=dt.UTC)
WAITING = "I waited five months on the waiting list before any counselling started, it was far too long."
DANGER = "He is outside my house right now and says he will kill me tonight."


async def seed(client: Any, keys: dict[str, dict[str, str]], people: int) -> None:
    lines = [
        referral_line("VS", f"V{n}", f"P{n}", support_end="2025-07-01", status="closed")
        for n in range(people)
    ]
    lines.append(referral_line("VS", "DANGER", "PD", support_end="2025-07-01", status="closed"))
    r = await client.post(
        "/api/v1/referrals/import",
        headers=keys["vs"],
        files={"data": ("a.csv", referrals_csv(*lines), "text/csv")},
    )
    assert r.status_code == 200, r.text
    for n in range(people):
        pk, _ = await referral_pk("VS", f"V{n}")
        await Response.insert(
            Response(
                referral=pk,
                wave="exit",
                completed_at=WHEN,
                barriers_text=f"Call me on 07700 900{n:03d}. {WAITING}",
            )
        ).run()
    pk, _ = await referral_pk("VS", "DANGER")
    await Response.insert(Response(referral=pk, wave="exit", completed_at=WHEN, comments_text=DANGER)).run()


async def test_processing_alerts_and_vrg_view(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await seed(client, keys, people=6)
    counts = await services.process()
    assert counts == {"answers": 7, "alerts": 1}
    assert await services.process() == {"answers": 0, "alerts": 0}  # nothing pending twice
    stored = await TextAnalysis.select(TextAnalysis.redacted, TextAnalysis.themes).run()
    assert all("07700" not in r["redacted"] for r in stored)
    assert sum("waiting_times" in json.loads(r["themes"]) for r in stored) == 6
    assert await SafeguardingAlert.count() == 1

    # The alert reaches the supporting provider (with the person's words), never another provider.
    mine = (await client.get("/api/v1/alerts", headers=keys["vs"])).json()
    assert len(mine) == 1 and mine[0]["text"] == DANGER and mine[0]["referral_id"] == "DANGER"
    assert (await client.get("/api/v1/alerts", headers=keys["rosa"])).json() == []
    assert (await client.get("/api/v1/alerts", headers=keys["vrg"])).status_code == 403
    seen = await client.post(f"/api/v1/alerts/{mine[0]['id']}/seen", headers=keys["vs"])
    assert seen.status_code == 200
    assert (await client.get("/api/v1/alerts", headers=keys["vs"])).json() == []

    view = (await client.get("/api/v1/vrg/themes", params={"period": "2025-26"}, headers=keys["vrg"])).json()
    themes = {t["code"]: t for t in view["themes"]}
    waiting = themes["waiting_times"]
    assert waiting["answers"] == 6 and waiting["victims"] == 6 and waiting["trend"] == "new"
    assert waiting["examples"] and all("07700" not in e and "kill" not in e for e in waiting["examples"])
    # No theme below 5 people shows words, and no count of 1-4 is shown.
    for theme in themes.values():
        assert theme["answers"] in (0, "[c]") or theme["answers"] >= 5
        if theme["victims"] in (0, "[c]"):
            assert theme["examples"] == []


async def test_small_themes_are_suppressed(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await seed(client, keys, people=3)
    await services.process()
    view = (await client.get("/api/v1/vrg/themes", params={"period": "2025-26"}, headers=keys["vrg"])).json()
    waiting = next(t for t in view["themes"] if t["code"] == "waiting_times")
    assert waiting["answers"] == "[c]" and waiting["examples"] == []


async def test_review_queue_and_decisions(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await seed(client, keys, people=2)
    await services.process()
    queue = (await client.get("/api/v1/review/queue", headers=keys["vrg"])).json()
    assert len(queue) == 2  # the safeguarding answer never reaches review
    assert all(DANGER not in item["text"] for item in queue)
    first = queue[0]
    r = await client.post(
        "/api/v1/review/decisions",
        headers=keys["vrg"],
        json={
            "analysis_id": first["id"],
            "theme": "waiting_times",
            "decision": "relabel",
            "new_theme": "mental_health",
        },
    )
    assert r.status_code == 201, r.text
    labels = await services.confirmed_labels()
    assert labels and "mental_health" in labels[0][1] and "waiting_times" not in labels[0][1]
    assert len((await client.get("/api/v1/review/queue", headers=keys["vrg"])).json()) == 1
    r = await client.post(
        "/api/v1/review/you-said-we-did",
        headers=keys["opcc"],
        json={"theme": "waiting_times", "you_said": "Waits were long", "we_did": "Funded a post"},
    )
    assert r.status_code == 201
    assert (
        await client.post(
            "/api/v1/review/you-said-we-did",
            headers=keys["vrg"],
            json={"theme": "x", "you_said": "a", "we_did": "b"},
        )
    ).status_code == 403
    logged = (await client.get("/api/v1/review/you-said-we-did", headers=keys["vrg"])).json()
    assert logged[0]["we_did"] == "Funded a post"


def test_classify_cli(tmp_files: str) -> None:
    source = Path(tmp_files) / "in.jsonl"
    source.write_text(
        json.dumps({"id": 1, "text": f"Email me at jo@example.org. {WAITING}"})
        + "\n"
        + json.dumps({"id": "b", "text": DANGER})
        + "\n"
    )
    done = subprocess.run(
        [VOP, "text", "classify", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["id"] for o in out] == [1, "b"]
    assert "jo@example.org" not in out[0]["redacted"] and "waiting_times" in out[0]["themes"]
    assert out[1]["safeguarding"] is True and out[0]["safeguarding"] is False
    bad = subprocess.run(
        [VOP, "text", "classify"],
        input="not json\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert bad.returncode == 1 and "line 1" in bad.stderr


async def test_analyses_are_stored_a_few_responses_at_a_time(
    client: Any, keys: dict[str, dict[str, str]], monkeypatch: Any
) -> None:
    """Each transaction stores a few whole responses (one long transaction stalled survey submits on
    SQLite's one write lock). When one fails, the responses stored before it stay, and the rest stay
    pending whole: none of their answers is stored, so none is skipped later."""
    await seed(client, keys, people=5)  # 6 responses of one answer each
    pk, _ = await referral_pk("VS", "V0")
    await Response.insert(  # a 7th with two answers, which a chunk must not split
        Response(referral=pk, wave="exit", completed_at=WHEN, barriers_text=WAITING, gaps_text=WAITING)
    ).run()
    monkeypatch.setattr(services, "ROWS_PER_TRANSACTION", 2)
    store = services._store
    calls: list[list[tuple[int, str]]] = []

    async def failing_third(analysed: Any) -> int:
        calls.append([(row["id"], field) for (row, field), _ in analysed])
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return int(await store(analysed))

    monkeypatch.setattr(services, "_store", failing_third)
    with pytest.raises(RuntimeError, match="went away"):
        await services.process()
    assert [len({r for r, _ in call}) for call in calls] == [2, 2, 2]
    stored = await TextAnalysis.select(TextAnalysis.response, TextAnalysis.field).run()
    assert sorted((r["response"], r["field"]) for r in stored) == sorted(calls[0] + calls[1])
    monkeypatch.setattr(services, "_store", store)
    # The third chunk's 2 responses (one of them the danger) and the two-answer one: 4 answers.
    assert await services.process() == {"answers": 4, "alerts": 1}
    assert await TextAnalysis.count() == 8
