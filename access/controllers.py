"""Admin routes of data protection: erasure and subject access (identifiers travel in the body, never
in the URL), and the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from access import audit, erasure
from access.keys import Principal
from access.policy import client_address, policy


class PersonRequest(msgspec.Struct, forbid_unknown_fields=True):
    person_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]


class ErasureResult(msgspec.Struct):
    erased: dict[str, int]


class AuditEventRead(msgspec.Struct):
    id: int
    at: dt.datetime
    actor: str
    role: str
    organisation: str
    action: str
    subject_type: str
    subject_id: str
    client: str
    detail: dict[str, Any]


class DataProtectionController(Controller):
    path = "/api/v1"
    tags = ["data protection"]

    @post("/erasures", operation_id="erasePerson", opt=policy("admin"), status_code=HTTP_200_OK)
    async def erase(
        self, request: Request, data: JSONBody[PersonRequest], principal: NamedDependency[Principal]
    ) -> ErasureResult:
        """Remove a person from every table (referrals, answers, free text, links, contact ledger)."""
        counts = await erasure.erase_person(data.person_id)
        await audit.record("person.erase", principal, client=client_address(request), detail={"rows": counts})
        return ErasureResult(erased=counts)

    @post("/subject-access", operation_id="subjectAccess", opt=policy("admin"), status_code=HTTP_200_OK)
    async def subject_access(
        self, request: Request, data: JSONBody[PersonRequest], principal: NamedDependency[Principal]
    ) -> dict[str, Any]:
        """Everything held about a person, as JSON, for a subject access request."""
        found = await erasure.subject_access(data.person_id)
        await audit.record(
            "person.subject_access", principal, client=client_address(request),
            detail={"tables": {k: len(v) for k, v in found["tables"].items()}},
        )  # fmt: skip
        return found

    @get("/audit", operation_id="listAuditEvents", opt=policy("admin"))
    async def audit_events(
        self,
        action: Annotated[str | None, QueryParameter(max_length=60)] = None,
        actor: Annotated[str | None, QueryParameter(max_length=100)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[AuditEventRead]:
        """Recent audit events, newest first."""
        rows = await audit.query(action=action, actor=actor, limit=limit)
        return [
            msgspec.convert({**r, "detail": msgspec.json.decode(r["detail"])}, AuditEventRead) for r in rows
        ]
