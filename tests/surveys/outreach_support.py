"""Helpers of the outreach tests: referrals in a few words, London times, a real SMTP server on loopback
(aiosmtpd) and a local HTTP server implementing the GOV.UK Notify endpoints the client uses."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import jwt
import pytest
from aiosmtpd.controller import Controller

LONDON = ZoneInfo("Europe/London")


def london(y: int, m: int, d: int, h: int = 10, mi: int = 0) -> dt.datetime:
    """An aware datetime at London wall-clock time."""
    return dt.datetime(y, m, d, h, mi, tzinfo=LONDON)


async def add_referral(
    provider: str,
    referral_id: str,
    person_id: str = "P1",
    *,
    flags_at: dt.datetime | None = None,
    **over: Any,
) -> int:
    """Insert one referral (support from 2026-05-04, email preferred, safe, consenting); returns its pk."""
    from surveys.crypto import keyring
    from surveys.tables import Organisation, Referral

    org = await Organisation.select(Organisation.id).where(Organisation.code == provider).first()
    assert org is not None
    keys = keyring()
    values: dict[str, Any] = {
        "provider": org["id"],
        "referral_id": referral_id,
        "person_key": keys.person_key(person_id),
        "referral_date": dt.date(2026, 4, 20),
        "source": "police",
        "crime_type": "burglary_residential",
        "status": "supported",
        "support_start": dt.date(2026, 5, 4),
        "support_end": None,
        "contact_email_enc": keys.encrypt(f"{person_id.lower()}@example.org"),
        "contact_phone_enc": keys.encrypt("07700900123"),
        "preferred_channel": "email",
        "safe_to_contact": True,
        "consent_to_survey": True,
        "updated_at": flags_at or dt.datetime(2026, 4, 20, 9, tzinfo=dt.UTC),
    }
    values.update(over)
    row = Referral(**values)
    await row.save()
    return int(row.id)


def person_key(person_id: str = "P1") -> str:
    from surveys.crypto import keyring

    return keyring().person_key(person_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


class SmtpSink:
    """A real SMTP server on a loopback port that can be started and stopped (down, then up)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = _Collect()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[Any]:
        return self.handler.messages

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    """A loopback SMTP server (not started: call .start()), with the settings pointing at it."""
    from settings import get_settings

    sink = SmtpSink(free_port())
    monkeypatch.setenv("VOP_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("VOP_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("VOP_PUBLIC_BASE_URL", "https://answer.example.org")
    get_settings.cache_clear()
    yield sink
    sink.stop()
    monkeypatch.undo()
    get_settings.cache_clear()


# --- a local GOV.UK Notify ---------------------------------------------------------------------------


class NotifyState:
    def __init__(self, service_id: str, secret: str) -> None:
        self.service_id = service_id
        self.secret = secret
        self.notifications: list[dict[str, Any]] = []
        self.fail_next = 0  # answer 500 without recording
        self.fail_after_recording = 0  # record, then answer 500 (the ambiguous case)
        self.lock = threading.Lock()


def _handler(state: NotifyState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            try:
                claims = jwt.decode(token, state.secret, algorithms=["HS256"])
            except jwt.PyJWTError:
                return False
            return bool(claims.get("iss") == state.service_id and claims.get("iat"))

        def do_GET(self) -> None:
            if not self._authorised():
                return self._reply(403, {"errors": [{"error": "AuthError", "message": "Invalid token"}]})
            url = urlsplit(self.path)
            if url.path != "/v2/notifications":
                return self._reply(404, {"errors": [{"error": "NotFound"}]})
            reference = parse_qs(url.query).get("reference", [None])[0]
            with state.lock:
                found = [n for n in state.notifications if reference is None or n["reference"] == reference]
            return self._reply(200, {"notifications": found, "links": {"current": self.path}})

        def do_POST(self) -> None:
            if not self._authorised():
                return self._reply(403, {"errors": [{"error": "AuthError", "message": "Invalid token"}]})
            kind = {"/v2/notifications/email": "email", "/v2/notifications/sms": "sms"}.get(self.path)
            if kind is None:
                return self._reply(404, {"errors": [{"error": "NotFound"}]})
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            to = body.get("email_address" if kind == "email" else "phone_number")
            if not to or not body.get("template_id"):
                return self._reply(400, {"errors": [{"error": "BadRequestError", "message": "missing"}]})
            with state.lock:
                if state.fail_next:
                    state.fail_next -= 1
                    return self._reply(500, {"errors": [{"error": "Exception", "message": "down"}]})
                note = {
                    "id": str(uuid.uuid4()), "reference": body.get("reference"), "type": kind, "to": to,
                    "template_id": body["template_id"], "personalisation": body.get("personalisation", {}),
                    "status": "created",
                }  # fmt: skip
                state.notifications.append(note)
                if state.fail_after_recording:
                    state.fail_after_recording -= 1
                    return self._reply(500, {"errors": [{"error": "Exception", "message": "lost reply"}]})
            return self._reply(201, {"id": note["id"], "reference": note["reference"], "content": {}})

    return Handler


@pytest.fixture
async def notify(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NotifyState]:
    """A local Notify API on loopback, with the VOP_NOTIFY_* settings pointing at it."""
    from settings import get_settings

    state = NotifyState(str(uuid.uuid4()), str(uuid.uuid4()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("VOP_NOTIFY_API_KEY", f"vop_test-{state.service_id}-{state.secret}")
    monkeypatch.setenv("VOP_NOTIFY_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("VOP_NOTIFY_EMAIL_TEMPLATE_ID", str(uuid.uuid4()))
    monkeypatch.setenv("VOP_NOTIFY_SMS_TEMPLATE_ID", str(uuid.uuid4()))
    monkeypatch.setenv("VOP_PUBLIC_BASE_URL", "https://answer.example.org")
    get_settings.cache_clear()
    yield state
    server.shutdown()
    server.server_close()
    monkeypatch.undo()
    get_settings.cache_clear()
