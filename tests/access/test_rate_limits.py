"""Rate limits on failures: a client address that fails too often in a minute gets 429; successful use is
neither counted nor slowed, and other addresses are unaffected.

A real server with `VOP_RATE_LIMIT_FAILURES` set low, called from several loopback addresses (127.0.0.2,
127.0.0.3 ... are all this machine), because the limit is per client address as the server sees it.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import httpx
import pytest

from access.keys import revoke_key
from access.policy import FailureLimiter
from tests.access.server import Server

LIMIT = 5


def from_address(server: Server, address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.base_url, transport=transport, timeout=30)


async def timed_ok(http: httpx.AsyncClient, headers: dict[str, str], times: int) -> list[float]:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        r = await http.get("/api/v1/organisations", headers=headers)
        took.append(time.perf_counter() - started)
        assert r.status_code == 200, r.text
    return took


BAD = {"Authorization": "Bearer vop_not-a-key-at-all-0123456789abcdef"}


async def test_failed_key_uses_are_limited_per_address(
    db: None, keys: dict[str, dict[str, str]], tmp_files: str
) -> None:
    good, revoked = keys["vs"], keys["rosa"]
    assert await revoke_key(revoked["Authorization"].removeprefix("Bearer ")[:12]) == 1
    env = {"VOP_RATE_LIMIT_FAILURES": str(LIMIT)}
    with Server(Path(tmp_files) / "server.log", env=env) as server:
        async with (
            from_address(server, "127.0.0.2") as a,
            from_address(server, "127.0.0.3") as b,
            from_address(server, "127.0.0.4") as c,
        ):
            # Successful use is not counted: far more successes than the limit, then LIMIT failures are
            # still each answered 401.
            before = await timed_ok(a, good, 3 * LIMIT)
            for _ in range(LIMIT):
                assert (await a.get("/api/v1/referrals", headers=BAD)).status_code == 401
            # Over the limit: 429 for this address, whatever it sends, keyed or not.
            over = await a.get("/api/v1/referrals", headers=BAD)
            assert over.status_code == 429, over.text
            assert (await a.get("/api/v1/organisations", headers=good)).status_code == 429
            # A revoked key counts like a wrong one, and a missing key is not a failed use.
            assert (await b.get("/api/v1/referrals")).status_code == 401
            assert (await b.get("/api/v1/referrals", headers=revoked)).status_code == 401
            for _ in range(LIMIT - 1):
                assert (await b.get("/api/v1/referrals", headers=BAD)).status_code == 401
            assert (await b.get("/api/v1/referrals", headers=BAD)).status_code == 429
            # Another address is unaffected: its keys work, its failures are its own, and it is not slowed.
            after = await timed_ok(c, good, 3 * LIMIT)
            assert (await c.get("/api/v1/referrals", headers=BAD)).status_code == 401
            assert (await c.get("/api/v1/referrals", headers=good)).status_code == 200
            # Public routes are never limited.
            assert (await a.get("/health")).status_code == 200
    # Not slowed: successes after other addresses were blocked are as quick as before (generous bound
    # for a shared two-core machine; a deliberate delay would be seconds).
    assert statistics.median(after) < 3 * statistics.median(before) + 0.05, (before, after)


async def test_failed_survey_token_lookups_are_limited(db: None, tmp_files: str) -> None:
    from app import create_app

    routes = [
        route.path
        for route in create_app().routes
        for handler in getattr(route, "route_handlers", [])
        if "GET" in getattr(handler, "http_methods", set())
        and re.fullmatch(r"[^{}]*\{token(:[^}]*)?\}[^{}]*", route.path)  # the token its only parameter
    ]
    if not routes:
        pytest.skip("no survey-token route in the app yet")
    path = re.sub(r"\{token(:[^}]*)?\}", "{}", min(routes, key=len))
    env = {"VOP_RATE_LIMIT_FAILURES": str(LIMIT)}
    with Server(Path(tmp_files) / "server.log", env=env) as server:
        async with from_address(server, "127.0.0.5") as a, from_address(server, "127.0.0.6") as b:
            statuses = [
                (await a.get(path.format(f"bogus-token-{i:04d}"))).status_code for i in range(LIMIT + 1)
            ]
            assert 429 not in statuses[:LIMIT] and statuses[LIMIT] == 429, statuses
            assert (await b.get(path.format("another-bogus-token"))).status_code != 429


def test_the_window_is_a_sliding_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    limiter = FailureLimiter(3)
    for _ in range(3):
        assert not limiter.blocked("a")
        limiter.fail("a")
        now[0] += 10
    assert limiter.blocked("a") and not limiter.blocked("b")
    now[0] += 31  # the first failure is now more than a minute old
    assert not limiter.blocked("a")
    limiter.fail("a")
    assert limiter.blocked("a")
