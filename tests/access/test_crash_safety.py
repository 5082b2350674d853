"""Crash safety: a real server takes 500 concurrent submissions and is killed with SIGKILL part way. After
a restart, every submission it acknowledged with 2xx is stored exactly once, and retrying any submission
(acknowledged, lost in flight, or never sent), even twice at once, never stores a duplicate.

Two kinds of submission: a survey sent through the JSON API (`POST /api/v1/surveys/{token}/submit`), and
a referral created through `POST /api/v1/referrals` (unique per provider and referral id: a retry of a
stored one is a 409).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.access.server import Server
from tests.conftest import referral_line, referrals_csv

N = int(os.environ.get("VOP_CRASH_SUBMISSIONS", "500"))
KILL_AFTER = N // 10  # acknowledgements before the kill: early in the burst, with many more in flight

Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]
Raw = Callable[[int], tuple[str, dict[str, str], Any]]  # submission i as (path, headers, JSON body)


def referral(i: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "VS", "referral_id": f"CRASH-{i:04d}", "person_id": f"crash-person-{i}",
        "referral_date": "2025-05-01", "source": "police", "crime_type": "other", "status": "supported",
        "support_start": "2025-05-02", "contact_email": f"crash{i}@example.org", "preferred_channel": "email",
        "safe_to_contact": True, "consent_to_survey": True,
    }  # fmt: skip
    body.update(over)
    return body


async def burst_then_kill(server: Server, request: Raw) -> dict[int, int | None]:
    """N submissions at once; SIGKILL as soon as KILL_AFTER are acknowledged. Returns status (None = lost).

    All N requests are written before any answer is read, on N connections, by a bare HTTP/1.1 writer:
    the server handles a submit in about a millisecond, faster than an httpx client sends one, so with
    httpx the server had answered the whole burst before the client saw its first acknowledgements,
    and nothing was in flight to be killed. The kill is sent from the very callback that sees the
    KILL_AFTER-th acknowledgement (an answer's status line; the server commits before it answers).
    """
    url = httpx.URL(server.base_url)
    host, port = url.host, url.port or 80
    conns = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in range(N)))
    for i, (_, writer) in enumerate(conns):
        path, headers, body = request(i)
        data = json.dumps(body).encode()
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{head}Connection: close\r\n\r\n".encode()
            + data
        )
    results: dict[int, int | None] = {}
    acked = [0]

    async def one(i: int) -> None:
        reader, writer = conns[i]
        try:
            line = await reader.readline()
        except OSError:
            line = b""
        finally:
            writer.close()
        if not line.startswith(b"HTTP/"):
            results[i] = None  # the connection died with the server: not acknowledged
            return
        status = results[i] = int(line.split()[1])
        if status < 300:
            acked[0] += 1
            if acked[0] == KILL_AFTER:
                server.signal_kill()

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(N))), timeout=180)
    server.kill()  # reap it
    return results


async def retry_all(server: Server, send: Send) -> list[tuple[int, int]]:
    """Every submission again; every fifth twice at the same time (a client retrying while it still waits)."""
    limits = httpx.Limits(max_connections=16)  # SQLite writes one at a time; more clients only wait longer
    async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as http:

        async def one(i: int) -> tuple[int, int]:
            for attempt in range(3):
                try:
                    return i, (await send(http, i)).status_code
                except httpx.TransportError:
                    # A keep-alive connection the server was closing: resending is what retrying means.
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

        return list(await asyncio.gather(*(one(i) for i in range(N) for _ in range(2 if i % 5 == 0 else 1))))


T0 = [time.monotonic()]


def lap(what: str) -> None:
    now = time.monotonic()
    print(f"  {what}: {now - T0[0]:.1f} s")
    T0[0] = now


def summary(results: dict[int, int | None]) -> str:
    return f"{Counter(results.values())}"


async def test_referral_creations_survive_sigkill(
    db: None, keys: dict[str, dict[str, str]], tmp_files: str
) -> None:
    from surveys.tables import Referral

    vs = keys["vs"]

    async def send(http: httpx.AsyncClient, i: int) -> httpx.Response:
        return await http.post("/api/v1/referrals", headers=vs, json=referral(i))

    def raw(i: int) -> tuple[str, dict[str, str], Any]:
        return "/api/v1/referrals", vs, referral(i)

    async def stored() -> Counter[str]:
        rows = await Referral.select(Referral.referral_id).where(Referral.referral_id.like("CRASH-%"))
        return Counter(r["referral_id"] for r in rows)

    log = Path(tmp_files) / "server.log"
    server = Server(log).start()
    try:
        lap("start")
        first = await burst_then_kill(server, raw)
        lap("burst")
        acked = {i for i, s in first.items() if s == 201}
        assert len(acked) >= KILL_AFTER and all(s in (201, None) for s in first.values()), summary(first)
        lost = [i for i, s in first.items() if s is None]
        assert lost, f"the kill came too late to catch any submission in flight: {summary(first)}"
        server.start()
        lap("restart")
        after_crash = await stored()
        assert all(after_crash[f"CRASH-{i:04d}"] == 1 for i in acked), summary(first)
        assert max(after_crash.values()) == 1
        retried = await retry_all(server, send)
        lap("retry")
    finally:
        server.stop()
    assert {s for _, s in retried} <= {201, 409}, Counter(s for _, s in retried)
    # A stored one answers 409 to every retry; every other is created by exactly one of its retries.
    created = Counter(i for i, s in retried if s == 201)
    assert all(created[int(rid.removeprefix("CRASH-"))] == 0 for rid in after_crash)
    assert all(created[i] == 1 for i in range(N) if f"CRASH-{i:04d}" not in after_crash)
    final = await stored()
    assert len(final) == N and set(final.values()) == {1}
    print(f"referrals: first burst {summary(first)}; stored after the crash {len(after_crash)}; "
          f"retries {Counter(s for _, s in retried)}")  # fmt: skip


async def complete_answers(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """Answers that complete this survey: learnt by answering every question the API shows, in order,
    until nothing is left (later questions can depend on earlier answers)."""
    answers: dict[str, Any] = {}
    for _ in range(20):
        survey = (await http.get(f"/api/v1/surveys/{token}")).json()
        todo = [q for q in survey["questions"] if not q["answered"]]
        if not todo:
            return answers
        for q in todo:
            codes = [o["code"] for o in q["options"] if not o.get("exclusive")] or [
                o["code"] for o in q["options"]
            ]
            if q["type"] == "multi_choice":
                answers[q["key"]] = codes[:1]
            elif codes:
                answers[q["key"]] = codes[0]
            else:
                answers[q["key"]] = "It helped."
        r = await http.put(f"/api/v1/surveys/{token}/answers", json={"answers": answers})
        assert r.status_code == 200, r.text
    raise AssertionError("the survey did not come to an end")


async def test_survey_submissions_survive_sigkill(
    db: None, keys: dict[str, dict[str, str]], tmp_files: str
) -> None:
    from app import create_app
    from surveys import links
    from surveys.tables import LinkItem, Referral, Response, SurveyLink

    # N+1 referrals and a survey link for each (made in-process, on the tests' loop).
    transport = httpx.ASGITransport(app=create_app(), client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as local:
        # One all-or-nothing import is far quicker than N+1 single creations.
        lines = [referral_line("VS", f"CRASH-{i:04d}", person_id=f"crash-person-{i}") for i in range(N + 1)]
        files = {"data": ("referrals.csv", referrals_csv(*lines), "text/csv")}
        r = await local.post("/api/v1/referrals/import", headers=keys["vs"], files=files)
        assert r.status_code == 200, r.text
        rows = await Referral.select(Referral.id, Referral.person_key).order_by(Referral.id)
        tokens = [(await links.create_link(row["person_key"], [(row["id"], "baseline")]))[0] for row in rows]
        # The last link shows which answers complete a survey of this shape; it is not submitted.
        answers = await complete_answers(local, tokens.pop())
    referral_of = {t: row["id"] for t, row in zip(tokens, rows[:N], strict=True)}
    assert len(tokens) == N
    lap("seed")

    async def send(http: httpx.AsyncClient, i: int) -> httpx.Response:
        return await http.post(f"/api/v1/surveys/{tokens[i]}/submit", json={"answers": answers})

    def raw(i: int) -> tuple[str, dict[str, str], Any]:
        return f"/api/v1/surveys/{tokens[i]}/submit", {}, {"answers": answers}

    async def responses_per_link() -> Counter[str]:
        rows = await Response.select(Response.referral, Response.completed_at).where(
            Response.referral.is_in(list(referral_of.values()))
        )
        token_of = {pk: t for t, pk in referral_of.items()}
        return Counter(token_of[r["referral"]] for r in rows)

    log = Path(tmp_files) / "server.log"
    # Survey links are public routes; the run's many requests come from one address.
    server = Server(log, env={"VOP_RATE_LIMIT_FAILURES": "100000"}).start()
    try:
        lap("start")
        first = await burst_then_kill(server, raw)
        lap("burst")
        acked = {i for i, s in first.items() if s == 200}
        assert len(acked) >= KILL_AFTER and all(s in (200, None) for s in first.values()), summary(first)
        assert any(s is None for s in first.values()), f"the kill came too late: {summary(first)}"
        server.start()
        lap("restart")
        after_crash = await responses_per_link()
        assert all(after_crash[tokens[i]] == 1 for i in acked), summary(first)
        assert max(after_crash.values()) == 1
        completed = await SurveyLink.count().where(SurveyLink.completed_at.is_not_null())
        assert completed == len(after_crash)  # a link is closed exactly when its response is stored
        retried = await retry_all(server, send)
        lap("retry")
        # Asked once more, every survey says it was already sent.
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            again = [(await send(http, i)).json() for i in sorted(acked)[:20]]
    finally:
        server.stop()
    assert {s for _, s in retried} == {200} and len(retried) == N + N // 5, Counter(s for _, s in retried)
    assert all(a["repeated"] is True and a["responses"] == 1 for a in again)
    final = await responses_per_link()
    assert len(final) == N and set(final.values()) == {1}
    items = await LinkItem.count().where(LinkItem.response.is_not_null())
    assert items >= N
    print(f"surveys: first burst {summary(first)}; stored after the crash {len(after_crash)}; "
          f"retries {Counter(s for _, s in retried)}")  # fmt: skip
