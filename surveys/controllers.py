"""HTTP routes of the surveys domain: thin, typed, each with an access policy and an operation id."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import BodyKwarg, FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from access import audit
from access.keys import Principal
from access.policy import after_policy, client_address, policy
from surveys import importing, responses, services
from surveys.schemas import (
    ImportSummary,
    OrganisationRead,
    ReferralCreate,
    ReferralPage,
    ReferralRead,
    ReferralUpdate,
    Status,
)
from surveys.tabular import MAX_FILE_BYTES

Upload = Annotated[UploadFile, BodyKwarg(media_type="multipart/form-data")]


async def require_one_file(request: Request) -> None:
    """400 for a body without exactly one file part: Litestar 2.25 answers it with a 500 (a StopIteration
    while it looks for the UploadFile). Found by fuzzing (tests/access/test_fuzz.py)."""
    form = await request.form()
    if not any(isinstance(v, UploadFile) and len(form.getall(k)) == 1 for k, v in form.items()):
        raise ValidationException("send the file as one multipart/form-data file field (e.g. `data`)")


def import_route(operation_id: str, *roles: str, scoped: bool = False) -> Any:
    """`POST /import` of a file: large bodies allowed, exactly one file part, the roles given."""
    return post(
        "/import", operation_id=operation_id, opt=policy(*roles, scoped=scoped), status_code=HTTP_200_OK,
        request_max_body_size=MAX_FILE_BYTES, before_request=after_policy(require_one_file),
    )  # fmt: skip


async def imported(
    request: Request, principal: Principal, action: str, result: importing.ImportResult
) -> ImportSummary:
    """Audit an import (counts only) and answer with its summary."""
    await audit.record(action, principal, client=client_address(request), detail=result.as_dict())
    return ImportSummary(**result.as_dict())


class OrganisationController(Controller):
    path = "/api/v1/organisations"
    tags = ["organisations"]

    @get("/", operation_id="listOrganisations", opt=policy("provider", "opcc", "vrg", "admin"))
    async def list_organisations(self) -> list[OrganisationRead]:
        """Every organisation (codes and names are not personal data)."""
        return [OrganisationRead(**row) for row in await services.list_organisations()]

    @import_route("importOrganisations", "admin", "opcc")
    async def import_organisations(
        self, request: Request, data: Upload, principal: NamedDependency[Principal]
    ) -> ImportSummary:
        """Create or update organisations from a CSV or XLSX file (all or nothing)."""
        result = await importing.import_organisations(await data.read(), data.filename or "")
        return await imported(request, principal, "organisations.import", result)


class ReferralController(Controller):
    path = "/api/v1/referrals"
    tags = ["referrals"]

    @get("/", operation_id="listReferrals", opt=policy("provider", "opcc", "admin", scoped=True))
    async def list_referrals(
        self,
        request: Request,
        principal: NamedDependency[Principal],
        provider: Annotated[str | None, QueryParameter(description="provider code")] = None,
        status: Annotated[Status | None, QueryParameter()] = None,
        date_from: Annotated[
            dt.date | None, QueryParameter(name="from", description="referral date on/after")
        ] = None,
        date_to: Annotated[
            dt.date | None, QueryParameter(name="to", description="referral date on/before")
        ] = None,
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> ReferralPage:
        """Referrals, newest first; a provider sees only its own."""
        result = await services.list_referrals(
            principal, provider, status, date_from, date_to, page, page_size
        )
        await audit.record(
            "referral.list",
            principal,
            client=client_address(request),
            detail={"count": len(result.items), "provider": provider or ""},
        )
        return result

    @post(
        "/",
        operation_id="createReferral",
        opt=policy("provider", "opcc", "admin", scoped=True),
        status_code=HTTP_201_CREATED,
    )
    async def create_referral(
        self, request: Request, data: JSONBody[ReferralCreate], principal: NamedDependency[Principal]
    ) -> ReferralRead:
        """Create one referral. `person_id` is hashed on arrival; contact details are encrypted."""
        created = await services.create_referral(principal, data)
        await audit.record(
            "referral.create",
            principal,
            subject_type="referral",
            subject_id=f"{data.provider}/{data.referral_id}",
            client=client_address(request),
        )
        return created

    @get(
        "/{provider:str}/{referral_id:str}",
        operation_id="getReferral",
        opt=policy("provider", "opcc", "admin", scoped=True),
    )
    async def get_referral(
        self,
        request: Request,
        provider: FromPath[str],
        referral_id: FromPath[str],
        principal: NamedDependency[Principal],
    ) -> ReferralRead:
        """One referral by provider and the provider's own id."""
        try:
            found = await services.get_referral(principal, provider, referral_id)
        except services.NotFound:
            raise NotFoundException("no such referral") from None
        await audit.record(
            "referral.read",
            principal,
            subject_type="referral",
            subject_id=f"{provider}/{referral_id}",
            client=client_address(request),
        )
        return found

    @patch(
        "/{provider:str}/{referral_id:str}",
        operation_id="updateReferral",
        opt=policy("provider", "opcc", "admin", scoped=True),
    )
    async def update_referral(
        self,
        request: Request,
        provider: FromPath[str],
        referral_id: FromPath[str],
        data: JSONBody[ReferralUpdate],
        principal: NamedDependency[Principal],
    ) -> ReferralRead:
        """Change some fields of a referral (status, support dates, contact preferences ...)."""
        try:
            updated = await services.update_referral(principal, provider, referral_id, data)
        except services.NotFound:
            raise NotFoundException("no such referral") from None
        await audit.record(
            "referral.update",
            principal,
            subject_type="referral",
            subject_id=f"{provider}/{referral_id}",
            client=client_address(request),
            detail={"fields": sorted(msgspec.structs.asdict(data))},
        )
        return updated

    @import_route("importReferrals", "provider", "opcc", "admin", scoped=True)
    async def import_referrals(
        self, request: Request, data: Upload, principal: NamedDependency[Principal]
    ) -> ImportSummary:
        """Create or update referrals from a CSV or XLSX file, all or nothing (422 lists every bad row)."""
        only = services.visible_provider(principal, None)
        result = await importing.import_referrals(await data.read(), data.filename or "", only_provider=only)
        return await imported(request, principal, "referral.import", result)


class ResponseController(Controller):
    path = "/api/v1/responses"
    tags = ["responses"]

    @import_route("importResponses", "provider", "opcc", "admin", scoped=True)
    async def import_responses(
        self, request: Request, data: Upload, principal: NamedDependency[Principal]
    ) -> ImportSummary:
        """Store historical (paper or phone) responses from a CSV or XLSX file, all or nothing.

        Re-importing the same rows stores nothing twice.
        """
        only = services.visible_provider(principal, None)
        result = await responses.import_responses(await data.read(), data.filename or "", only_provider=only)
        return await imported(request, principal, "response.import", result)
