"""Assisted contact: no message leaves; a call task appears for the provider's practitioner, who calls
the person and completes the survey with them (a fresh phone-mode link, issued when the call starts).

Idempotent in effect: sending closes any open task of the same invitation before opening one, so a
retried dispatch (or a reminder) leaves exactly one open task per invitation.
"""

from __future__ import annotations

import datetime as dt

from surveys.channels import DeliveryError, Outgoing
from surveys.tables import CallTask, ContactEvent, Invitation


class AssistedChannel:
    """Opens call tasks."""

    async def send(self, message: Outgoing) -> str:
        """Open a call task for the invitation's provider; returns `call-task:<id>`."""
        if message.provider_id is None:
            raise DeliveryError("no_provider_for_call", permanent=True)
        now = dt.datetime.now(dt.UTC)
        # A reminder on the assisted channel is another call: close the earlier open task first.
        await CallTask.update({CallTask.status: "superseded", CallTask.closed_at: now}).where(
            (CallTask.invitation == message.invitation_id) & (CallTask.status == "open")
        )
        inv = (
            await Invitation.select(Invitation.expires_at, Invitation.person_key)
            .where(Invitation.id == message.invitation_id)
            .first()
        )
        if inv is None:
            raise DeliveryError("invitation_gone", permanent=True)
        task = CallTask(
            invitation=message.invitation_id, provider=message.provider_id, status="open", created_at=now,
            due_at=inv["expires_at"],
        )  # fmt: skip
        await task.save()
        await ContactEvent.insert(
            ContactEvent(
                person_key=inv["person_key"], invitation=message.invitation_id, kind="call_task",
                reasons=message.kind, detail=f"call task {task.id} opened", actor="dispatcher", at=now,
            )
        )  # fmt: skip
        return f"call-task:{task.id}"

    async def close(self) -> None:
        return None
