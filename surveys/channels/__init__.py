"""Delivery channels of the outbox: email over SMTP, GOV.UK Notify (email and SMS), assisted calls.

A channel gets one rendered `Outgoing` message at a time and returns the provider's message id, or
raises `DeliveryError` saying whether trying again could help. Channels never log a recipient, a
subject or a body; errors carry a class name and a status code only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready to leave. Lives in memory only, for the time of one send."""

    idempotency_key: str
    channel: str  # email | sms | phone
    kind: str
    lang: str
    to: str | None  # None for an assisted call (the practitioner has the number)
    subject: str | None
    body: str
    sender_name: str
    invitation_id: int
    provider_id: int | None = None  # the practitioner's organisation, for assisted calls
    retry: bool = False  # an earlier attempt may have reached the provider


class DeliveryError(Exception):
    """A failed delivery: `code` is safe to store (no personal data); `permanent` stops retrying."""

    def __init__(self, code: str, *, permanent: bool = False) -> None:
        super().__init__(code)
        self.code = code[:200]
        self.permanent = permanent


class Channel(Protocol):
    """A connection to one delivery service, used by one dispatcher worker at a time."""

    async def send(self, message: Outgoing) -> str: ...

    async def close(self) -> None: ...


NOTIFY_BASE_URL = "https://api.notifications.service.gov.uk"


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Channel settings from the environment (SMTP settings live in settings.Settings)."""

    email_via: str = "smtp"  # smtp | notify
    notify_api_key: str = ""
    notify_base_url: str = NOTIFY_BASE_URL
    notify_email_template_id: str = ""
    notify_sms_template_id: str = ""

    @classmethod
    def from_env(cls) -> ChannelSettings:
        """Read VOP_EMAIL_VIA and VOP_NOTIFY_* (read at each dispatch run, so a change needs no restart)."""
        return cls(
            email_via=os.environ.get("VOP_EMAIL_VIA", "smtp").strip().lower() or "smtp",
            notify_api_key=os.environ.get("VOP_NOTIFY_API_KEY", ""),
            notify_base_url=os.environ.get("VOP_NOTIFY_BASE_URL", NOTIFY_BASE_URL).rstrip("/"),
            notify_email_template_id=os.environ.get("VOP_NOTIFY_EMAIL_TEMPLATE_ID", ""),
            notify_sms_template_id=os.environ.get("VOP_NOTIFY_SMS_TEMPLATE_ID", ""),
        )


def make_channel(kind: str, settings: ChannelSettings | None = None) -> Channel:
    """A new channel connection for messages of `kind` (email, sms or phone)."""
    settings = settings or ChannelSettings.from_env()
    if kind == "phone":
        from surveys.channels.assisted import AssistedChannel

        return AssistedChannel()
    if kind == "sms" or (kind == "email" and settings.email_via == "notify"):
        from surveys.channels.notify import NotifyChannel

        return NotifyChannel(settings)
    if kind == "email":
        from surveys.channels.smtp import SmtpChannel

        return SmtpChannel()
    raise ValueError(f"no channel for {kind!r}")
