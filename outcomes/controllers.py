"""HTTP route of the outcomes domain: the metric set of metrics.md, unsuppressed, for those who may see it."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from access import audit
from access.keys import Principal
from access.policy import client_address, policy
from outcomes.services import compute_metrics


class PeriodRead(msgspec.Struct):
    code: str
    start: str
    end: str


class MetricGroup(msgspec.Struct):
    by: dict[str, str | None]
    metrics: dict[str, Any]


class MetricsRead(msgspec.Struct):
    """Whole area first (`by: {}`), then one group per combination of the breakdown values."""

    period: PeriodRead
    groups: list[MetricGroup]


class MetricsController(Controller):
    path = "/api/v1/metrics"
    tags = ["metrics"]

    @get("/", operation_id="getMetrics", opt=policy("provider", "opcc", "admin", scoped=True))
    async def metrics(
        self,
        request: Request,
        principal: NamedDependency[Principal],
        period: Annotated[
            str,
            QueryParameter(
                description="2025-26, 2025-26-H1, 2025-26-Q3 or 2025-07-01..2025-09-30", max_length=30
            ),
        ],
        by: Annotated[
            str | None, QueryParameter(description="breakdowns, comma-separated", max_length=300)
        ] = None,
        provider: Annotated[str | None, QueryParameter(description="provider code", max_length=20)] = None,
    ) -> MetricsRead:
        """Every figure of the metrics contract for a period, optionally by breakdowns (unsuppressed).

        A provider's key always gets its own clients' figures, whatever `provider` says.
        """
        if principal.role == "provider":
            provider = principal.organisation_code
        attrs = [b.strip() for b in by.split(",") if b.strip()] if by else []
        try:
            result = await compute_metrics(period, attrs, provider)
        except ValueError as exc:
            raise ValidationException(str(exc)) from None
        await audit.record(
            "metrics.read",
            principal,
            client=client_address(request),
            detail={"period": period, "by": attrs, "provider": provider or ""},
        )
        return msgspec.convert(result, MetricsRead)
