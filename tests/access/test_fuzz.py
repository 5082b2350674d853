"""Fuzzing: schemathesis against the app's own OpenAPI document, every operation, as every role, with
schema-valid (positive) and schema-breaking (negative) requests: no server error, no response that breaks
the document.

The app runs in-process on the tests' event loop (httpx's ASGI transport), because schemathesis' own ASGI
client runs the app on a loop of its own, which cannot use the PostgreSQL pool the tests opened. So
schemathesis generates and checks the cases in a worker thread and each request is handed to the loop.
Half of the positive cases use the seeded referral and survey link, so that the handlers past the 404s
are reached too. Generation is derandomised (a failure reproduces); `VOP_FUZZ_EXAMPLES` sets the depth.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from access.policy import FailureLimiter
from app import create_app

# Examples per (operation, role, mode); the roles a route refuses get a quarter (their answer is a 401/403
# before any parsing), so most of the budget goes where handlers run.
EXAMPLES = int(os.environ.get("VOP_FUZZ_EXAMPLES", "8"))
ROLES = {"provider": "vs", "opcc": "opcc", "vrg": "vrg", "admin": "admin", "none": None}
BASE = "http://testserver"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
SENT_KEYS = ("method", "url", "headers", "params", "cookies", "json", "data", "files")


@dataclass
class Report:
    cases: int = 0
    by_role: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)  # kind of failure -> examples
    undocumented: Counter[str] = field(default_factory=Counter)  # (operation, status) not in the document
    not_generated: list[str] = field(default_factory=list)


def policies() -> dict[tuple[str, str], frozenset[str] | None]:
    """(METHOD, OpenAPI path) -> roles allowed, or None for public routes."""
    from access.policy import POLICY_KEY

    found: dict[tuple[str, str], frozenset[str] | None] = {}
    for route in create_app().routes:
        path = route.path_format if hasattr(route, "path_format") else route.path
        for handler in getattr(route, "route_handlers", []):
            rule = handler.opt.get(POLICY_KEY)
            for method in getattr(handler, "http_methods", set()):
                found[(method, path)] = None if rule is None or rule.public else rule.roles
    return found


class Fuzzer:
    def __init__(
        self,
        http: httpx.AsyncClient,
        loop: asyncio.AbstractEventLoop,
        keys: dict[str, dict[str, str]],
        seeds: dict[str, str],
    ) -> None:
        self.http = http
        self.loop = loop
        self.keys = keys
        self.seeds = seeds
        self.report = Report()
        self.allowed = policies()

    def send(self, case: Case, headers: dict[str, str]) -> httpx.Response:
        """The case as `requests` would send it (schemathesis' serialisation), sent on the app's loop."""
        kwargs = case.as_transport_kwargs(base_url=BASE, headers=headers)
        prepared = requests.Request(**{k: kwargs[k] for k in SENT_KEYS if k in kwargs}).prepare()
        body = prepared.body or b""
        content = body.encode() if isinstance(body, str) else body
        request = self.http.request(
            prepared.method or "GET", prepared.url or BASE, headers=dict(prepared.headers), content=content
        )
        return asyncio.run_coroutine_threadsafe(request, self.loop).result(timeout=120)

    def seed(self, case: Case) -> None:
        """Point a case at the seeded referral or survey link (its other parts stay generated)."""
        params = case.path_parameters or {}
        for name in list(params):
            if name in self.seeds:
                params[name] = self.seeds[name]

    def check(self, case: Case, role: str, response: httpx.Response) -> None:
        report = self.report
        report.cases += 1
        report.by_role[role] += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            titles = "; ".join(sorted({f.title for f in group.exceptions}))
            kind = f"{case.method} {case.path} -> {response.status_code}: {titles}"
            report.failures.setdefault(kind, []).append(
                f"{role}: {case.as_curl_command(base_url=BASE)[:400]}\n      {response.text[:200]}"
            )
        try:
            case.validate_response(response, checks=[status_code_conformance])
        except FailureGroup:
            report.undocumented[f"{case.method} {case.path} {response.status_code}"] += 1

    def run(self, operation: Any, role: str, mode: GenerationMode) -> None:
        key = ROLES[role]
        headers = self.keys[key] if key else {}
        allowed = self.allowed.get((operation.method.upper(), operation.path))
        welcome = allowed is None or (role != "none" and role in allowed)
        examples = EXAMPLES if welcome else max(1, EXAMPLES // 4)
        counter = [0]

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Case) -> None:
            counter[0] += 1
            if mode is GenerationMode.POSITIVE and counter[0] % 2 == 0:
                self.seed(case)
            self.check(case, role, self.send(case, headers))

        try:
            one()
        except Exception as exc:  # generation impossible (nothing to negate), not a failure of the app
            where = f"{role} {operation.method} {operation.path} {mode}"
            self.report.not_generated.append(f"{where}: {exc!r:.120}")


async def seed_data(http: httpx.AsyncClient, keys: dict[str, dict[str, str]]) -> dict[str, str]:
    """A referral of VS and a live survey link for it, so that fuzzed requests can find something."""
    from surveys import links
    from surveys.tables import Referral

    body = {
        "provider": "VS", "referral_id": "FUZZ1", "person_id": "fuzz-person", "referral_date": "2025-05-01",
        "source": "police", "crime_type": "other", "status": "supported", "support_start": "2025-05-02",
        "contact_email": "fuzz@example.org", "preferred_channel": "email", "safe_to_contact": True,
        "consent_to_survey": True,
    }  # fmt: skip
    r = await http.post("/api/v1/referrals", headers=keys["vs"], json=body)
    assert r.status_code == 201, r.text
    query = Referral.select(Referral.id, Referral.person_key).where(Referral.referral_id == "FUZZ1")
    row = await query.first()
    assert row is not None
    token, _ = await links.create_link(row["person_key"], [(row["id"], "baseline")])
    return {"provider": "VS", "referral_id": "FUZZ1", "token": token}


async def test_fuzz_every_operation_as_every_role(db: None, keys: dict[str, dict[str, str]]) -> None:
    app = create_app()
    # The fuzz is not about rate limits: its many wrong survey tokens must not turn into 429s.
    app.state.failure_limiter = FailureLimiter(10**9)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=120) as http:
        seeds = await seed_data(http, keys)
        document = (await http.get("/schema/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(document)
        # Litestar's own documentation routes (/schema/...) are left out: it documents openapi.json as a
        # string, which its JSON answer then "breaks". They are not the API; better still, the app could
        # keep them out of the document (`include_in_schema=False` on the OpenAPI router).
        every = [result.ok() for result in schema.get_all_operations()]
        operations = [op for op in every if not op.path.startswith("/schema")]
        fuzzer = Fuzzer(http, asyncio.get_running_loop(), keys, seeds)

        def fuzz_all() -> None:
            for operation in operations:
                for role in ROLES:
                    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                        fuzzer.run(operation, role, mode)

        started = time.monotonic()
        await asyncio.to_thread(fuzz_all)
        took = time.monotonic() - started
    report = fuzzer.report
    summary = (
        f"{report.cases} cases over {len(operations)} operations in {took:.0f} s; "
        f"by role {dict(report.by_role)}; "
        f"statuses {dict(sorted(report.statuses.items()))}; undocumented statuses {len(report.undocumented)} "
        f"(operation+status); not generated {len(report.not_generated)}"
    )
    print(summary)
    for line in sorted(report.undocumented):
        print("  undocumented:", line, report.undocumented[line])
    failures = [f"{len(v)} x {kind}\n    e.g. {v[0]}" for kind, v in sorted(report.failures.items())]
    assert failures == [], summary + "\n" + "\n".join(failures)
    assert report.cases >= 1000, summary
    assert all(report.by_role[role] > 0 for role in ROLES), summary
    assert {op.path for op in operations} >= {"/api/v1/referrals", "/health"}
