"""The access policy, checked from the app's route table: every route declares one, and every role gets
exactly what its policy says. A new route without a policy fails here."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.routes import HTTPRoute

from access.keys import revoke_key
from access.policy import POLICY_KEY, Policy, check_request
from app import create_app


def api_routes() -> list[tuple[str, str, Policy]]:
    """(method, path, policy) of every handler the app serves, auto-generated OPTIONS aside."""
    found = []
    for route in create_app().routes:
        for handler in getattr(route, "route_handlers", []):
            methods = sorted(getattr(handler, "http_methods", {"WS"}))
            if methods == ["OPTIONS"] and handler.handler_name in ("options_handler", ""):
                continue
            rule = handler.opt.get(POLICY_KEY)
            for method in methods:
                found.append((method, route.path, rule))
    return found


def test_every_route_declares_a_policy() -> None:
    missing = [(m, p) for m, p, rule in api_routes() if not isinstance(rule, Policy)]
    assert missing == []


def test_every_route_is_behind_the_policy_check() -> None:
    """The check is the app's `before_request`, which a controller or handler setting its own would
    replace, and which Litestar runs for HTTP routes only: both would open a route to anyone."""
    app = create_app()
    for route in app.routes:
        assert isinstance(route, HTTPRoute), f"{route.path} is not an HTTP route"
        for handler in route.route_handlers:
            hook = handler.resolve_before_request()
            checked = hook is check_request or getattr(hook, "policy_checked", False)
            assert checked, f"{route.path} {handler.http_methods}"


def concrete(path: str) -> str:
    """A path with its parameters filled: the owning provider's referral where one is named."""
    path = path.replace("{provider:str}", "VS").replace("{referral_id:str}", "R1")
    path = re.sub(r"\{[^}]+:int\}", "1", path)
    return re.sub(r"\{[^}]+\}", "x", path)


ROLES = ("vs", "rosa", "opcc", "vrg", "admin")


@pytest.mark.parametrize("who", [*ROLES, "none", "revoked"])
async def test_every_route_as_every_role(client: Any, keys: dict[str, dict[str, str]], who: str) -> None:
    await client.post(
        "/api/v1/referrals",
        headers=keys["vs"],
        json={
            "provider": "VS",
            "referral_id": "R1",
            "person_id": "P",
            "referral_date": "2025-05-01",
            "source": "police",
            "crime_type": "other",
            "status": "referred",
        },
    )
    headers: dict[str, str] = {}
    if who in ROLES:
        headers = keys[who]
    elif who == "revoked":
        headers = keys["vs"]
        prefix = headers["Authorization"].removeprefix("Bearer ")[:12]
        assert await revoke_key(prefix) == 1
    role = {"vs": "provider", "rosa": "provider"}.get(who, who)
    for method, path, rule in api_routes():
        if method not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            continue
        body = {} if method in ("POST", "PATCH", "PUT") else None
        r = await client.request(method, concrete(path), headers=headers, json=body)
        status = r.status_code
        where = f"{who} {method} {path} -> {status}"
        if rule.public:
            assert status not in (401, 403), where
        elif who in ("none", "revoked"):
            assert status == 401, where
        elif role not in rule.roles:
            assert status == 403, where
        else:
            assert status not in (401, 403, 500), where
            if who == "rosa" and "{provider:str}" in path:
                assert status == 404, where  # another provider's referral does not exist for them
