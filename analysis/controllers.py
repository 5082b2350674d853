"""HTTP routes of analysis: safeguarding alerts for the supporting provider, and the VRG's review."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from access import audit
from access.keys import Principal
from access.policy import client_address, policy
from analysis import services
from surveys.schemas import RowId

ThemeCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class AlertRead(msgspec.Struct):
    id: int
    provider: str
    referral_id: str
    field: str
    text: str | None
    created_at: dt.datetime
    seen_at: dt.datetime | None


class QueueItem(msgspec.Struct):
    id: int
    text: str
    themes: list[str]
    scores: dict[str, float]
    uncertainty: float


class ReviewDecision(msgspec.Struct, forbid_unknown_fields=True):
    analysis_id: Annotated[int, msgspec.Meta(ge=1)]
    theme: ThemeCode
    decision: Literal["confirm", "reject", "relabel"]
    new_theme: ThemeCode | None = None


class TopicDecision(msgspec.Struct, forbid_unknown_fields=True):
    decision: Literal["named", "dismissed"]
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""


class YouSaidWeDidCreate(msgspec.Struct, forbid_unknown_fields=True):
    theme: ThemeCode
    you_said: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    we_did: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    period: Annotated[str, msgspec.Meta(max_length=30)] = ""


class YouSaidWeDidRead(msgspec.Struct):
    id: int
    theme: str
    period: str
    you_said: str
    we_did: str
    at: dt.datetime


class AlertController(Controller):
    path = "/api/v1/alerts"
    tags = ["safeguarding"]

    @get("/", operation_id="listSafeguardingAlerts", opt=policy("provider", "opcc", "admin", scoped=True))
    async def list_alerts(
        self,
        request: Request,
        principal: NamedDependency[Principal],
        unseen: Annotated[bool, QueryParameter(description="only alerts nobody has marked seen")] = True,
    ) -> list[AlertRead]:
        """Safeguarding alerts with the person's own words: a provider sees its own clients' only."""
        scope = principal.organisation_id if principal.role == "provider" else None
        rows = await services.alerts_for(scope, unseen_only=unseen)
        for row in rows:
            await audit.record(
                "safeguarding.alert.read",
                principal,
                subject_type="alert",
                subject_id=str(row["id"]),
                client=client_address(request),
            )
        return [msgspec.convert(r, AlertRead) for r in rows]

    @post(
        "/{alert_id:int}/seen",
        operation_id="markAlertSeen",
        status_code=HTTP_200_OK,
        opt=policy("provider", "opcc", "admin", scoped=True),
    )
    async def mark_seen(
        self, request: Request, alert_id: RowId, principal: NamedDependency[Principal]
    ) -> dict[str, bool]:
        """Record that someone has seen and acted on an alert."""
        scope = principal.organisation_id if principal.role == "provider" else None
        if not await services.mark_alert_seen(alert_id, scope, principal.actor):
            raise NotFoundException("no such alert")
        await audit.record(
            "safeguarding.alert.seen",
            principal,
            subject_type="alert",
            subject_id=str(alert_id),
            client=client_address(request),
        )
        return {"seen": True}


class ReviewController(Controller):
    path = "/api/v1/review"
    tags = ["victim reference group"]

    @get("/queue", operation_id="reviewQueue", opt=policy("vrg", "opcc", "admin"))
    async def queue(self, limit: Annotated[int, QueryParameter(ge=1, le=200)] = 20) -> list[QueueItem]:
        """Redacted answers the theme model is least sure of, not yet reviewed (never safeguarding ones)."""
        return [msgspec.convert(r, QueueItem) for r in await services.review_queue(limit)]

    @post(
        "/decisions",
        operation_id="recordThemeDecision",
        opt=policy("vrg", "opcc", "admin"),
        status_code=HTTP_201_CREATED,
    )
    async def decide(
        self, request: Request, data: JSONBody[ReviewDecision], principal: NamedDependency[Principal]
    ) -> dict[str, bool]:
        """Confirm, reject or relabel a theme on an answer; retraining learns from these."""
        if data.decision == "relabel" and not data.new_theme:
            raise ValidationException("new_theme is required to relabel")
        try:
            await services.record_review(
                data.analysis_id, data.theme, data.decision, data.new_theme or "", principal.actor
            )
        except LookupError:
            raise NotFoundException("no such answer") from None
        await audit.record(
            "theme.review",
            principal,
            subject_type="text_analysis",
            subject_id=str(data.analysis_id),
            client=client_address(request),
            detail={"decision": data.decision},
        )
        return {"recorded": True}

    @post(
        "/topics/{topic_id:int}",
        operation_id="decideEmergingTopic",
        opt=policy("vrg", "opcc", "admin"),
        status_code=HTTP_200_OK,
    )
    async def decide_topic(
        self, topic_id: RowId, data: JSONBody[TopicDecision], principal: NamedDependency[Principal]
    ) -> dict[str, bool]:
        """Name an emerging topic (a candidate theme) or dismiss it."""
        if not await services.decide_topic(topic_id, data.decision, data.name, principal.actor):
            raise NotFoundException("no such topic")
        return {"recorded": True}

    @get("/you-said-we-did", operation_id="listYouSaidWeDid", opt=policy("vrg", "opcc", "admin"))
    async def list_yswd(
        self, theme: Annotated[str | None, QueryParameter(max_length=40)] = None
    ) -> list[YouSaidWeDidRead]:
        """What changed because of what victims said, per theme."""
        return [msgspec.convert(r, YouSaidWeDidRead) for r in await services.you_said_we_did(theme)]

    @post(
        "/you-said-we-did",
        operation_id="addYouSaidWeDid",
        opt=policy("opcc", "admin"),
        status_code=HTTP_201_CREATED,
    )
    async def add_yswd(
        self, request: Request, data: JSONBody[YouSaidWeDidCreate], principal: NamedDependency[Principal]
    ) -> dict[str, Any]:
        """The OPCC records what it changed in answer to a theme."""
        new_id = await services.add_you_said_we_did(
            data.theme, data.period, data.you_said, data.we_did, principal.actor
        )
        await audit.record("you_said_we_did.add", principal, client=client_address(request))
        return {"id": new_id}
