"""The append-only audit trail: who read or changed personal data, exports, failed authentication.

Records hold identifiers and counts only, never answers, free text or contact details.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from access.keys import Principal
from access.tables import AuditEvent


async def record(
    action: str,
    principal: Principal | None = None,
    *,
    actor: str | None = None,
    subject_type: str = "",
    subject_id: str = "",
    client: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit event (UTC)."""
    await AuditEvent.insert(
        AuditEvent(
            at=dt.datetime.now(dt.UTC),
            actor=actor or (principal.actor if principal else "anonymous"),
            role=principal.role if principal else "",
            organisation=principal.organisation_code if principal else "",
            action=action,
            subject_type=subject_type,
            subject_id=subject_id[:100],
            client=client[:64],
            detail=json.dumps(detail or {}, default=str),
        )
    ).run()


async def query(
    action: str | None = None, actor: str | None = None, since: dt.datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Recent audit events, newest first, optionally filtered."""
    q = AuditEvent.select().order_by(AuditEvent.id, ascending=False).limit(limit)
    if action:
        q = q.where(AuditEvent.action == action)
    if actor:
        q = q.where(AuditEvent.actor == actor)
    if since:
        q = q.where(AuditEvent.at >= since)
    return await q.run()
