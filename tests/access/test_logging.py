"""Logs never hold personal data: requests of every kind carry planted answers, free text, contact
details, a person id, survey tokens and API keys, and everything logged is scanned for them.

Twice: in-process (stdout/stderr of the test process and a handler on the root logger at DEBUG), and a
real uvicorn process at its most talkative log level (`trace`), whose whole output is scanned.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from litestar import Litestar, get

from access import logging as access_logging
from access.policy import public
from tests.access.server import Server
from tests.conftest import referral_line, referrals_csv

EMAIL = "zara.quill.7731@example.org"
PHONE = "07700 900731"
FREE_TEXT = "Quentin Marlow followed me home from the bus stop every Tuesday night"
PERSON_ID = "PID-MARLOW-55123"
FAKE_TOKEN = "Tq9" + "x7LmZ2pW4vR8sK1nB6cD0fG3hJ5kY"  # shaped like a survey token, matching no link


def needles(token: str, keys: dict[str, dict[str, str]]) -> list[str]:
    """Every string that must never appear in a log, in the spellings a log could hold it in."""
    found = [
        EMAIL, quote(EMAIL), quote_plus(EMAIL), "zara.quill",
        PHONE, PHONE.replace(" ", ""), quote_plus(PHONE), "900731",
        FREE_TEXT, quote(FREE_TEXT), quote_plus(FREE_TEXT), "Quentin", "Marlow", "bus stop",
        PERSON_ID, "55123",
        token, FAKE_TOKEN,
    ]  # fmt: skip
    found += [h["Authorization"].removeprefix("Bearer ") for h in keys.values()]
    return found


def hits(text: str, token: str, keys: dict[str, dict[str, str]]) -> list[str]:
    lowered = text.lower()
    return [n for n in needles(token, keys) if n.lower() in lowered]


def referral_body(referral_id: str = "LOG1", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "VS",
        "referral_id": referral_id,
        "person_id": PERSON_ID,
        "referral_date": "2025-05-01",
        "source": "police",
        "crime_type": "stalking_harassment",
        "status": "supported",
        "contact_email": EMAIL,
        "contact_phone": PHONE,
        "preferred_channel": "email",
        "safe_to_contact": True,
        "consent_to_survey": True,
    }
    body.update(over)
    return body


def route_table() -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves now (routes added later are covered too)."""
    from app import create_app

    found = []
    for route in create_app().routes:
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(getattr(handler, "http_methods", set())):
                if method not in ("OPTIONS", "HEAD"):
                    found.append((method, route.path))
    return found


def planted_path(template: str, token: str) -> str:
    """A route's path with each parameter replaced by personal data (a survey token where one is named)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if "token" in name:
            return token
        return quote({"provider": "VS", "referral_id": PERSON_ID}.get(name, EMAIL), safe="")

    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", fill, template)


PLANTED_QUERY = {"email": EMAIL, "phone": PHONE, "note": FREE_TEXT, "person_id": PERSON_ID, "page": PHONE}


async def create_survey_token() -> str:
    """A live survey link for the planted referral, when the links module can make one."""
    from surveys import links
    from surveys.tables import Referral

    query = Referral.select(Referral.id, Referral.person_key).where(Referral.referral_id == "LOG1")
    row = await query.first()
    assert row is not None
    token, _ = await links.create_link(row["person_key"], [(row["id"], "baseline")])
    return token


async def send_everything(http: httpx.AsyncClient, keys: dict[str, dict[str, str]], token: str) -> list[int]:
    """Requests of every kind, each carrying planted personal data; returns the statuses seen."""
    admin, vs = keys["admin"], keys["vs"]
    statuses: list[int] = []

    async def send(method: str, url: str, **kw: Any) -> None:
        r = await http.request(method, url, **kw)
        statuses.append(r.status_code)
        assert r.status_code < 500, f"{method} {url} -> {r.status_code}: {r.text[:300]}"

    # Valid and repeated creation, partial updates with contact details, valid and invalid.
    await send("POST", "/api/v1/referrals", headers=vs, json=referral_body("LOG2"))
    await send("POST", "/api/v1/referrals", headers=vs, json=referral_body("LOG2"))  # 409
    await send("PATCH", "/api/v1/referrals/VS/LOG1", headers=vs, json={"contact_email": EMAIL})
    await send("PATCH", "/api/v1/referrals/VS/LOG1", headers=vs, json={"contact_phone": FREE_TEXT[:20]})
    await send("PATCH", "/api/v1/referrals/VS/LOG1", headers=vs, json={"contact_email": FREE_TEXT})
    # Invalid bodies: bad contact detail, unknown field, wrong types, malformed JSON, oversized.
    await send("POST", "/api/v1/referrals", headers=vs, json=referral_body("LOG3", contact_email=FREE_TEXT))
    await send("POST", "/api/v1/referrals", headers=vs, json=referral_body("LOG4", notes=FREE_TEXT))
    await send("POST", "/api/v1/referrals", headers=vs, json=referral_body("LOG5", referral_date=FREE_TEXT))
    await send("POST", "/api/v1/referrals", headers=vs, json=referral_body(PERSON_ID, provider=EMAIL))
    broken = f'{{"person_id": "{PERSON_ID}", "contact_email": "{EMAIL}", "notes": "{FREE_TEXT}"'
    as_json = {**vs, "content-type": "application/json"}
    await send("POST", "/api/v1/referrals", headers=as_json, content=broken)
    huge = json.dumps(referral_body("LOG6", notes=(FREE_TEXT + " " + EMAIL + " ") * 20_000))
    await send("POST", "/api/v1/referrals", headers=as_json, content=huge)
    # Bad query strings and planted paths, on keyed, public and unknown routes.
    await send("GET", "/api/v1/referrals", headers=vs, params={"provider": EMAIL, "from": FREE_TEXT})
    await send("GET", "/api/v1/referrals", headers=vs, params={"page": PHONE, "status": PERSON_ID})
    await send("GET", "/health", params=PLANTED_QUERY)
    await send("GET", f"/api/v1/referrals/VS/{quote(PERSON_ID)}", headers=vs)
    await send("GET", f"/nowhere/{quote(EMAIL)}/{quote(FREE_TEXT)}", params={"t": token})
    await send("GET", f"/s/{token}", params=PLANTED_QUERY)
    await send("GET", f"/s/{FAKE_TOKEN}")
    await send("POST", f"/api/v1/surveys/{token}", json={"answers": {"comments_text": FREE_TEXT}})
    # Failed authentication with personal data where the key should be.
    for bad in (token, EMAIL, f"vop_{FAKE_TOKEN}", PERSON_ID):
        await send("GET", "/api/v1/referrals", headers={"Authorization": f"Bearer {bad}"})
    # File uploads with bad rows (all or nothing: 422 listing the rows) and a good one.
    bad_rows = referrals_csv(
        referral_line("VS", "F1", person_id=PERSON_ID, contact_email=FREE_TEXT, sex="robot"),
        referral_line("VS", "F2", person_id=PERSON_ID, contact_email=EMAIL, contact_phone="0" * 30),
        referral_line(EMAIL, PERSON_ID, person_id=PERSON_ID, contact_phone=PHONE),
    )
    for who in (vs, admin):
        files = {"data": (f"{EMAIL}.csv", bad_rows, "text/csv")}
        await send("POST", "/api/v1/referrals/import", headers=who, files=files)
    good = referrals_csv(referral_line("VS", "F3", person_id=PERSON_ID, contact_email=EMAIL))
    await send("POST", "/api/v1/referrals/import", headers=vs, files={"data": ("ok.csv", good, "text/csv")})
    not_csv = f"{FREE_TEXT}\n{EMAIL}\n{PHONE}\n".encode()
    files = {"data": ("x.xlsx", not_csv, "text/plain")}
    await send("POST", "/api/v1/referrals/import", headers=vs, files=files)
    answers = (
        "provider,referral_id,wave,completed_at,mode,cope,comments_text,barriers_text\n"
        f"VS,LOG1,baseline,2025-06-01T10:00:00Z,web,7,{FREE_TEXT},{EMAIL}\n"
        f"VS,{PERSON_ID},robot,not a date,web,3,{FREE_TEXT},{PHONE}\n"
    ).encode()
    await send("POST", "/api/v1/responses/import", headers=vs, files={"data": ("r.csv", answers, "text/csv")})
    orgs = f"code,name,kind,service\n{PERSON_ID},{FREE_TEXT},robot,{EMAIL}\n".encode()
    files = {"data": ("o.csv", orgs, "text/csv")}
    await send("POST", "/api/v1/organisations/import", headers=admin, files=files)
    # Every route of the app, whatever other work has added: planted path, query and body, keyed and not.
    for method, template in route_table():
        url = planted_path(template, token)
        for who in (admin, vs, {}):
            if method in ("GET", "DELETE"):
                await send(method, url, headers=who, params=PLANTED_QUERY)
            else:
                body = {"email": EMAIL, "phone": PHONE, "text": FREE_TEXT, "person_id": PERSON_ID}
                await send(method, url, headers=who, params=PLANTED_QUERY, json=body)
                await send(method, url, headers=who, data=body)
    return statuses


async def plant_referral(http: httpx.AsyncClient, keys: dict[str, dict[str, str]]) -> str:
    r = await http.post("/api/v1/referrals", headers=keys["vs"], json=referral_body("LOG1"))
    assert r.status_code == 201, r.text
    return await create_survey_token()


class Collect(logging.Handler):
    """Keeps every record with everything a formatter or another handler could print of it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(f"{record.name} {record.msg!r} {record.args!r} {record.exc_info!r}")
        self.texts.append(self.format(record))


async def test_in_process_logs_hold_no_personal_data(
    client: httpx.AsyncClient, keys: dict[str, dict[str, str]], capfd: pytest.CaptureFixture[str]
) -> None:
    token = await plant_referral(client, keys)
    root = logging.getLogger()
    collect = Collect()
    root.addHandler(collect)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        statuses = await send_everything(client, keys, token)
    finally:
        root.removeHandler(collect)
        root.setLevel(level)
    out, err = capfd.readouterr()
    logged = "\n".join([out, err, *collect.texts])
    assert len(statuses) > 60
    assert hits(logged, token, keys) == [], [t for t in logged.splitlines() if hits(t, token, keys)][:5]
    # The access log is there: one JSON event per request, with what it promises and no more.
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [e for e in events if e.get("event") == "request"]
    assert len(requests) >= len(statuses)
    assert {"method", "path", "status", "duration_ms", "role", "organisation"} <= set(requests[0])
    assert any(e["path"] == "/s/***" for e in requests)
    assert any(e["role"] == "provider" and e["organisation"] == "VS" for e in requests)
    assert all("?" not in e["path"] for e in requests)


async def test_a_real_server_logs_no_personal_data(
    db: None, keys: dict[str, dict[str, str]], tmp_files: str
) -> None:
    log = Path(tmp_files) / "server.log"
    # With the background jobs, so that their logs are checked too.
    env = {"VOP_LOG_LEVEL": "DEBUG", "VOP_TEST_UVICORN_LOG": "trace", "VOP_BACKGROUND_JOBS": "true"}
    with Server(log, env=env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            token = await plant_referral(http, keys)
            statuses = await send_everything(http, keys, token)
    text = server.output()
    assert len(statuses) > 60
    assert hits(text, token, keys) == [], text[-3000:]
    lines = [line for line in text.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines if line.startswith("{")]
    # Every log record is JSON: none in uvicorn's plain "INFO:     ..." format. (Other lines may be the
    # output of programs the server runs, such as npm building the survey pages' styles.)
    plain = [line for line in lines if re.match(r"^(TRACE|DEBUG|INFO|WARNING|ERROR|CRITICAL):", line)]
    assert plain == []
    requests = [e for e in events if e.get("event") == "request"]
    assert len(requests) >= len(statuses)
    assert sorted({e["status"] for e in requests}) == sorted(set(statuses) | {201})
    assert not [e for e in events if e.get("logger") == "uvicorn.access"]
    assert not [e for e in events if e.get("level") in ("error", "critical")]


# --- the pieces, without a database ---------------------------------------------------------------


def test_paths_are_masked() -> None:
    mask = access_logging.mask_segments
    assert mask(f"/s/{FAKE_TOKEN}") == "/s/***"
    assert mask(f"/s/{FAKE_TOKEN}/page/2?x={EMAIL}") == "/s/***/page/2"
    assert mask(f"/api/v1/surveys/{FAKE_TOKEN}") == "/api/v1/surveys/***"
    assert mask(f"/nowhere/{EMAIL}/{FREE_TEXT}") == "/nowhere/***/***"
    scope = {
        "path_template": "/api/v1/referrals/{provider}/{referral_id}",
        "route_handler": object(),
        "path_params": {"provider": "VS", "referral_id": PERSON_ID},
    }
    assert access_logging.log_path(scope) == "/api/v1/referrals/VS/***"
    scope["path_params"] = {"provider": EMAIL, "referral_id": "R1"}
    assert access_logging.log_path(scope) == "/api/v1/referrals/***/***"
    scope = {
        "path_template": "/api/v1/surveys/{token:str}/submit",
        "route_handler": object(),
        "path_params": {"token": FAKE_TOKEN},
    }
    assert access_logging.log_path(scope) == "/api/v1/surveys/***/submit"


def test_scrubbing_masks_data_in_any_event() -> None:
    event = {
        "event": f"could not reach {EMAIL} or {PHONE} about /s/{FAKE_TOKEN}?a=b with vop_{FAKE_TOKEN}",
        "body": FREE_TEXT,
        "detail": {"email": EMAIL, "note": [f"call {PHONE}"]},
        "status": 500,
    }
    scrubbed = access_logging.scrub(None, "info", dict(event))
    text = json.dumps(scrubbed)
    assert hits(text, FAKE_TOKEN, {}) == []
    assert scrubbed["status"] == 500 and "body" not in scrubbed
    assert scrubbed["event"].startswith("could not reach [email] or [number] about /s/*** with vop_***")


async def test_exceptions_are_logged_as_type_and_frames_only(capfd: pytest.CaptureFixture[str]) -> None:
    @get("/boom", opt=public(), sync_to_thread=False)
    def boom() -> None:
        values = {"email": EMAIL, "text": FREE_TEXT}  # a local the log must not show
        raise ValueError(f"cannot store {values['email']}: {values['text']}")

    app = Litestar(route_handlers=[boom], logging_config=access_logging.logging_config("DEBUG"))
    access_logging.install(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        a = await http.get("/boom", params={"q": EMAIL})
        b = await http.get("/nowhere", params={"q": FREE_TEXT})
    statuses = (a.status_code, b.status_code)
    assert statuses == (500, 404)
    _, err = capfd.readouterr()
    assert hits(err, FAKE_TOKEN, {}) == [], err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    failure = next(e for e in events if e.get("event") == "unhandled exception")
    assert failure["exception"]["type"] == "builtins.ValueError"
    assert any("in boom" in frame for frame in failure["exception"]["frames"])
    assert failure["path"] == "/boom" and failure["method"] == "GET"
    # 4xx answers are in the access log only, never with a stack trace.
    assert [e["status"] for e in events if e.get("event") == "request"] == [500, 404]
    assert sum(1 for e in events if "exception" in e) == 1


def test_planted_token_looks_like_a_real_one() -> None:
    # Shaped like real tokens, or masking could pass the test by luck.
    from surveys.links import new_token

    assert len(FAKE_TOKEN) == len(new_token()) == len(secrets.token_urlsafe(24))
