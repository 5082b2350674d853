"""GOV.UK Notify (email and SMS) through the official `notifications-python-client`.

The Notify templates hold only placeholders: `((subject))` and `((body))` for email, `((body))` for
SMS, so the neutral wording stays in this repository's templates (surveys.messages) and its
neutrality check. The outbox idempotency key is sent as Notify's `reference`; before retrying a
message whose earlier attempt may have reached Notify, the channel asks Notify for a notification
with that reference and, when there is one, does not send again.

The client is synchronous (requests), so calls run in a worker thread; one client per dispatcher
worker, because the client is not thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from notifications_python_client.errors import APIError, TokenError
from notifications_python_client.notifications import NotificationsAPIClient

from surveys.channels import ChannelSettings, DeliveryError, Outgoing

TIMEOUT_SECONDS = 20
# The client logs Notify's error text at WARNING; a validation message may quote a number or address,
# so only its exceptions (turned into codes below) come through.
logging.getLogger("notifications_python_client").setLevel(logging.ERROR)


class NotifyChannel:
    """Notify email and SMS; settings VOP_NOTIFY_API_KEY, _BASE_URL, _EMAIL_TEMPLATE_ID, _SMS_TEMPLATE_ID."""

    def __init__(self, settings: ChannelSettings) -> None:
        self.settings = settings
        self._client: NotificationsAPIClient | None = None

    def _api(self) -> NotificationsAPIClient:
        if self._client is None:
            if len(self.settings.notify_api_key) < 74:
                raise DeliveryError("notify_not_configured")
            self._client = NotificationsAPIClient(
                self.settings.notify_api_key, base_url=self.settings.notify_base_url, timeout=TIMEOUT_SECONDS
            )
        return self._client

    def _already_sent(self, reference: str) -> str | None:
        found = self._api().get_all_notifications(reference=reference)
        notifications = found.get("notifications", []) if isinstance(found, dict) else []
        return str(notifications[0]["id"]) if notifications else None

    def _send(self, m: Outgoing) -> str:
        if not m.to:
            raise DeliveryError("no_recipient", permanent=True)
        try:
            if m.retry:
                previous = self._already_sent(m.idempotency_key)
                if previous:
                    return previous
            response: dict[str, Any]
            if m.channel == "sms":
                if not self.settings.notify_sms_template_id:
                    raise DeliveryError("notify_sms_template_missing")
                response = self._api().send_sms_notification(
                    phone_number=m.to,
                    template_id=self.settings.notify_sms_template_id,
                    personalisation={"body": m.body},
                    reference=m.idempotency_key,
                )
            else:
                if not self.settings.notify_email_template_id:
                    raise DeliveryError("notify_email_template_missing")
                response = self._api().send_email_notification(
                    email_address=m.to,
                    template_id=self.settings.notify_email_template_id,
                    personalisation={"subject": m.subject or "", "body": m.body},
                    reference=m.idempotency_key,
                )
            return str(response["id"])
        except APIError as exc:
            status = exc.status_code
            # 400: the request itself is wrong (a bad number or address): retrying cannot help.
            # 403 (key), 429 (rate) and 5xx may pass later.
            raise DeliveryError(f"NotifyAPIError {status}", permanent=status == 400) from None
        except TokenError:
            raise DeliveryError("NotifyTokenError") from None
        except (OSError, ValueError, KeyError) as exc:
            raise DeliveryError(type(exc).__name__) from None

    async def send(self, message: Outgoing) -> str:
        """Send one email or SMS through Notify; returns Notify's notification id."""
        return await asyncio.to_thread(self._send, message)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.request_session.close()
