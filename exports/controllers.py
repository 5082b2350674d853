"""Downloads: the MoJ return for the OPCC, a provider report for that provider or the OPCC, tidy CSV."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import QueryParameter

from access import audit
from access.keys import Principal
from access.policy import client_address, policy
from exports import services

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Period = Annotated[str, QueryParameter(description="e.g. 2025-26 or 2025-26-Q3", max_length=30)]


def _json_error(_: Request, exc: HTTPException) -> Response[dict[str, object]]:
    # A download route's media type is a file's; its errors are JSON like every other route's.
    body: dict[str, object] = {"status_code": exc.status_code, "detail": exc.detail}
    if exc.extra:
        body["extra"] = exc.extra
    return Response(body, status_code=exc.status_code, headers=exc.headers, media_type="application/json")


def _download(content: bytes | str, media_type: str, filename: str) -> Response[bytes | str]:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


class ExportController(Controller):
    path = "/api/v1/exports"
    tags = ["exports"]
    exception_handlers = {HTTPException: _json_error}

    @get(
        "/moj-return",
        operation_id="downloadMojReturn",
        opt=policy("opcc", "admin"),
        media_type=XLSX,
    )
    async def moj_return(
        self, request: Request, principal: NamedDependency[Principal], period: Period
    ) -> Response[bytes | str]:
        """The MoJ outcomes and outputs return for a period, as an Excel workbook (suppressed)."""
        try:
            content = await services.moj_return(period)
        except ValueError as exc:
            raise ValidationException(str(exc)) from None
        await audit.record(
            "export.moj_return", principal, client=client_address(request), detail={"period": period}
        )
        return _download(content, XLSX, f"moj-return-{period}.xlsx")

    @get(
        "/provider-report",
        operation_id="downloadProviderReport",
        opt=policy("provider", "opcc", "admin", scoped=True),
        media_type=XLSX,
    )
    async def provider_report(
        self,
        request: Request,
        principal: NamedDependency[Principal],
        period: Period,
        provider: Annotated[str, QueryParameter(description="provider code", max_length=20)],
    ) -> Response[bytes | str]:
        """A provider's outcome report over the last 8 quarters (that provider's own key, or the OPCC)."""
        if principal.role == "provider" and provider != principal.organisation_code:
            raise NotFoundException("no such provider")
        try:
            content = await services.provider_report(provider, period)
        except ValueError as exc:
            raise ValidationException(str(exc)) from None
        await audit.record(
            "export.provider_report",
            principal,
            client=client_address(request),
            detail={"period": period, "provider": provider},
        )
        return _download(content, XLSX, f"provider-report-{provider}-{period}.xlsx")

    @get(
        "/metrics.csv",
        operation_id="downloadMetricsCsv",
        opt=policy("provider", "opcc", "admin", scoped=True),
        media_type="text/csv",
    )
    async def metrics_csv(
        self,
        request: Request,
        principal: NamedDependency[Principal],
        period: Period,
        by: Annotated[
            str | None, QueryParameter(description="breakdowns, comma-separated", max_length=300)
        ] = None,
    ) -> Response[bytes | str]:
        """Any metrics table in tidy CSV form, with disclosure control (a provider: its own clients)."""
        provider = principal.organisation_code if principal.role == "provider" else None
        attrs = [b.strip() for b in (by or "").split(",") if b.strip()]
        try:
            content = await services.metrics_csv(period, attrs, provider)
        except ValueError as exc:
            raise ValidationException(str(exc)) from None
        await audit.record(
            "export.csv", principal, client=client_address(request), detail={"period": period, "by": attrs}
        )
        return _download(content, "text/csv", f"metrics-{period}.csv")


class ThemeRead(msgspec.Struct):
    """One theme for the Victim Reference Group: counts suppressed, text only where 5+ people said it."""

    code: str
    name: str
    answers: int | str
    victims: int | str
    previous_answers: int | str
    trend: Literal["up", "down", "same", "new", "[c]"]
    examples: list[str]


class ThemesRead(msgspec.Struct):
    period: str
    previous_period: str
    themes: list[ThemeRead]


class VrgController(Controller):
    path = "/api/v1/vrg"
    tags = ["victim reference group"]

    @get("/themes", operation_id="vrgThemes", opt=policy("vrg", "opcc", "admin"))
    async def themes(
        self, request: Request, principal: NamedDependency[Principal], period: Period
    ) -> ThemesRead:
        """Themes of victims' own words for a period, with trend against the previous period.

        Counts of 1-4 are shown as [c]; redacted example answers only for themes 5+ people raised.
        """
        try:
            view = await services.vrg_themes(period)
        except ValueError as exc:
            raise ValidationException(str(exc)) from None
        await audit.record(
            "vrg.themes.read", principal, client=client_address(request), detail={"period": period}
        )
        return msgspec.convert(view, ThemesRead)
