"""HTTP routes of coordinated surveys: a referral's schedule and contact history, opt-out and snooze on
the person's behalf, invitations, and call tasks of the assisted channel. Thin: the work is in
surveys.outreach_services and surveys.scheduling."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from access import audit
from access.keys import Principal
from access.policy import client_address, policy
from settings import get_settings
from surveys import outreach_services as outreach
from surveys.outreach_schemas import LanguageRead, LanguageSet
from surveys.schemas import (
    CallTaskClose,
    CallTaskRead,
    CallTaskStatus,
    ContactEventRead,
    ContactPreferenceRead,
    InvitationPage,
    InvitationStatus,
    PhoneLink,
    ReferralSchedule,
    RowId,
    SnoozeCreate,
)

PROVIDER_ROLES = ("provider", "opcc", "admin")


class ReferralOutreachController(Controller):
    path = "/api/v1/referrals/{provider:str}/{referral_id:str}"
    tags = ["coordinated surveys"]

    @get("/schedule", operation_id="getReferralSchedule", opt=policy(*PROVIDER_ROLES, scoped=True))
    async def get_schedule(
        self,
        request: Request,
        provider: FromPath[str],
        referral_id: FromPath[str],
        principal: NamedDependency[Principal],
    ) -> ReferralSchedule:
        """The referral's survey waves and what the contact rules say now (they span every provider)."""
        result = await outreach.referral_schedule(principal, provider, referral_id)
        await _audit_referral("referral.schedule", principal, request, provider, referral_id)
        return result

    @get(
        "/contact-history",
        operation_id="listReferralContactHistory",
        opt=policy(*PROVIDER_ROLES, scoped=True),
    )
    async def contact_history(
        self,
        request: Request,
        provider: FromPath[str],
        referral_id: FromPath[str],
        principal: NamedDependency[Principal],
    ) -> list[ContactEventRead]:
        """What was decided and sent for this referral, and the person's opt-outs and snoozes."""
        result = await outreach.contact_history(principal, provider, referral_id)
        await _audit_referral("referral.contact_history", principal, request, provider, referral_id)
        return result

    @post(
        "/opt-out", operation_id="optOutReferralPerson", opt=policy(*PROVIDER_ROLES, scoped=True),
        status_code=HTTP_200_OK,
    )  # fmt: skip
    async def opt_out(
        self,
        request: Request,
        provider: FromPath[str],
        referral_id: FromPath[str],
        principal: NamedDependency[Principal],
    ) -> ContactPreferenceRead:
        """The person said "stop" to this provider: no provider will invite them to a survey again."""
        await outreach.opt_out_for(principal, provider, referral_id)
        await _audit_referral("person.opt_out", principal, request, provider, referral_id)
        return ContactPreferenceRead(opted_out=True, snoozed_until=None)

    @post(
        "/snooze", operation_id="snoozeReferralPerson", opt=policy(*PROVIDER_ROLES, scoped=True),
        status_code=HTTP_200_OK,
    )  # fmt: skip
    async def snooze(
        self,
        request: Request,
        provider: FromPath[str],
        referral_id: FromPath[str],
        data: JSONBody[SnoozeCreate],
        principal: NamedDependency[Principal],
    ) -> ContactPreferenceRead:
        """The person said "not now": nothing is sent to them, by any provider, before the date."""
        until = await outreach.snooze_for(principal, provider, referral_id, data.until, data.days)
        detail = {"until": until.date().isoformat()}
        await _audit_referral("person.snooze", principal, request, provider, referral_id, detail)
        return ContactPreferenceRead(opted_out=False, snoozed_until=until)

    @post(
        "/language", operation_id="setReferralPersonLanguage", opt=policy(*PROVIDER_ROLES, scoped=True),
        status_code=HTTP_200_OK,
    )  # fmt: skip
    async def set_language(
        self,
        request: Request,
        provider: FromPath[str],
        referral_id: FromPath[str],
        data: JSONBody[LanguageSet],
        principal: NamedDependency[Principal],
    ) -> LanguageRead:
        """The language the person reads (en or cy): every provider's messages and survey links use it."""
        changed = await outreach.set_language_for(principal, provider, referral_id, data.lang)
        detail = {"lang": data.lang, "changed": changed}
        await _audit_referral("person.language", principal, request, provider, referral_id, detail)
        return LanguageRead(lang=data.lang or "en")


class InvitationController(Controller):
    path = "/api/v1/invitations"
    tags = ["coordinated surveys"]

    @get("/", operation_id="listInvitations", opt=policy(*PROVIDER_ROLES, scoped=True))
    async def list_invitations(
        self,
        request: Request,
        principal: NamedDependency[Principal],
        status: Annotated[InvitationStatus | None, QueryParameter()] = None,
        provider: Annotated[str | None, QueryParameter(description="provider code")] = None,
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> InvitationPage:
        """Invitations, newest first; a provider sees those asking about its referrals (its items only)."""
        result = await outreach.list_invitations(principal, status, provider, page, page_size)
        await audit.record(
            "invitation.list", principal, client=client_address(request),
            detail={"count": len(result.items), "status": status or ""},
        )  # fmt: skip
        return result


class CallTaskController(Controller):
    path = "/api/v1/call-tasks"
    tags = ["coordinated surveys"]

    @get("/", operation_id="listCallTasks", opt=policy(*PROVIDER_ROLES, scoped=True))
    async def list_call_tasks(
        self,
        request: Request,
        principal: NamedDependency[Principal],
        status: Annotated[CallTaskStatus | None, QueryParameter()] = None,
    ) -> list[CallTaskRead]:
        """Calls to make: people who prefer to answer by phone with a practitioner."""
        result = await outreach.list_call_tasks(principal, status)
        await audit.record(
            "call_task.list", principal, client=client_address(request), detail={"count": len(result)}
        )
        return result

    @post(
        "/{task_id:int}/link", operation_id="startCallTask", opt=policy(*PROVIDER_ROLES, scoped=True),
        status_code=HTTP_200_OK,
    )  # fmt: skip
    async def start_call(
        self, request: Request, task_id: RowId, principal: NamedDependency[Principal]
    ) -> PhoneLink:
        """A fresh phone-mode survey link for the call (shown once; valid for a day)."""
        base_url = get_settings().public_base_url
        url, expires, link_id = await outreach.call_task_link(principal, task_id, base_url)
        await audit.record(
            "call_task.link", principal, subject_type="call_task", subject_id=str(task_id),
            client=client_address(request), detail={"link": link_id},
        )  # fmt: skip
        return PhoneLink(url=url, expires_at=expires)

    @post(
        "/{task_id:int}/close", operation_id="closeCallTask", opt=policy(*PROVIDER_ROLES, scoped=True),
        status_code=HTTP_200_OK,
    )  # fmt: skip
    async def close_call(
        self,
        request: Request,
        task_id: RowId,
        data: JSONBody[CallTaskClose],
        principal: NamedDependency[Principal],
    ) -> CallTaskRead:
        """Record how the call went: done, no answer, or declined."""
        result = await outreach.close_call_task(principal, task_id, data.outcome)
        await audit.record(
            "call_task.close", principal, subject_type="call_task", subject_id=str(task_id),
            client=client_address(request), detail={"outcome": data.outcome},
        )  # fmt: skip
        return result


async def _audit_referral(
    action: str,
    principal: Principal,
    request: Request,
    provider: str,
    referral_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """The audit record of a call about one referral (identifiers only, never contact details)."""
    await audit.record(
        action, principal, subject_type="referral", subject_id=f"{provider}/{referral_id}",
        client=client_address(request), detail=detail,
    )  # fmt: skip
