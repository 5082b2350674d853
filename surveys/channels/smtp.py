"""Email over SMTP with aiosmtplib: one connection per dispatcher worker, reused across messages.

Idempotency: the Message-ID is derived from the outbox idempotency key, so a retry after an ambiguous
failure (the connection dropped after DATA) carries the same id and a receiving system can drop the
duplicate. The message is marked sent only after the server accepted it; a crash between the server's
acceptance and that mark is the one at-least-once window of SMTP, which has no way to ask "did you get
message X?".
"""

from __future__ import annotations

import quopri
from email.header import Header
from email.utils import formataddr, formatdate

import aiosmtplib

from settings import get_settings
from surveys.channels import DeliveryError, Outgoing

CONNECT_TIMEOUT = 10.0


def _header(value: str) -> str:
    """A header value as ASCII: itself, or RFC 2047 encoded when it has other characters."""
    return value if value.isascii() else Header(value, "utf-8").encode()


class SmtpChannel:
    """An SMTP connection from settings (VOP_SMTP_HOST, _PORT, _TLS, _USER, _PASSWORD, _SENDER)."""

    def __init__(self) -> None:
        self.settings = get_settings()
        self._client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        implicit_tls = s.smtp_tls and s.smtp_port == 465
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=CONNECT_TIMEOUT,
            use_tls=implicit_tls,
            start_tls=bool(s.smtp_tls and not implicit_tls),
        )
        await client.connect()
        if s.smtp_user:
            await client.login(s.smtp_user, s.smtp_password)
        return client

    def _message(self, m: Outgoing) -> tuple[str, bytes]:
        """(Message-ID, RFC 5322 bytes), built directly: the `email` package's header machinery cost
        more than the whole SMTP exchange on loopback. Non-ASCII headers are RFC 2047 encoded and the
        UTF-8 body quoted-printable, so any server takes it (no 8BITMIME needed)."""
        sender = self.settings.smtp_sender
        domain = sender.rpartition("@")[2] or "localhost"
        message_id = f"<{m.idempotency_key}@{domain}>"
        headers = [
            ("From", formataddr((m.sender_name, sender), charset="utf-8")),
            ("To", m.to or ""),
            ("Subject", _header(m.subject or "")),
            ("Date", formatdate(localtime=False)),
            ("Message-ID", message_id),
            ("MIME-Version", "1.0"),
            ("Content-Type", 'text/plain; charset="utf-8"'),
            ("Content-Transfer-Encoding", "quoted-printable"),
            ("Auto-Submitted", "auto-generated"),
        ]
        head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
        body = quopri.encodestring(m.body.replace("\r\n", "\n").encode("utf-8")).replace(b"\n", b"\r\n")
        return message_id, head + b"\r\n" + body

    async def send(self, message: Outgoing) -> str:
        """Deliver one email; returns its Message-ID. 5xx answers are permanent, the rest retryable."""
        if not message.to:
            raise DeliveryError("no_recipient", permanent=True)
        message_id, data = self._message(message)
        try:
            if self._client is None or not self._client.is_connected:
                self._client = await self._connect()
            await self._client.sendmail(self.settings.smtp_sender, [message.to], data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({r.code for r in exc.recipients})
            await self.close()
            raise DeliveryError(
                f"SMTPRecipientsRefused {codes}", permanent=all(c >= 500 for c in codes)
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            await self.close()
            # The server's text may repeat the address: keep only the class and the code.
            raise DeliveryError(f"{type(exc).__name__} {exc.code}", permanent=500 <= exc.code < 600) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise DeliveryError(type(exc).__name__) from None
        return message_id

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
