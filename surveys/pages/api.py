"""The survey as JSON: the same questions, saving and submit as the pages, for apps and for phone entry.

`/api/v1/surveys/{token}` is reached by the link token alone (like the pages). `/api/v1/phone-surveys/
{token}` is the practitioner's mode: a provider key *and* the token, only for links whose every item
is one of that provider's own referrals (anything else is 404, as if it did not exist); responses are
stored with `mode=phone`, and each use is audited (identifiers only, never answers).

Answers are keyed by step key: the question id (`cope`), or `helped_cope.2` for the second support of
a combined survey. Values are the option codes (as JSON numbers or strings), a list of codes for
multi-choice questions, text for free-text ones, or null to skip an optional question.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from access import audit
from access.keys import Principal
from access.policy import client_address, limiter_for, policy, public
from surveys import links
from surveys.links import LinkView
from surveys.pages import flow
from surveys.pages.controllers import secure_headers

Lang = Annotated[str | None, QueryParameter(description="en or cy; defaults to the link's language")]


class OptionOut(msgspec.Struct, omit_defaults=True):
    """An allowed answer."""

    code: int | str
    label: str
    hint: str | None = None
    exclusive: bool = False


class QuestionOut(msgspec.Struct):
    """One step of the survey, with its saved answer."""

    key: str
    id: str
    type: str
    text: str
    hint: str | None
    required: bool
    options: list[OptionOut]
    max_length: int | None
    support: int | None  # 1-based support number in a combined survey; None for questions about the person
    answered: bool
    answer: Any


class SurveyOut(msgspec.Struct):
    """The survey as it stands: state, language, every question in order and where to resume."""

    state: str
    lang: str
    mode: str
    waves: list[str]
    supports: int
    expires_at: dt.datetime
    completed_at: dt.datetime | None
    total: int
    answered: int
    next: str | None
    digest: str
    questions: list[QuestionOut]


class AnswersIn(msgspec.Struct, forbid_unknown_fields=True):
    """Answers by step key (see the module docstring)."""

    answers: dict[str, Any] = {}


class SubmitIn(msgspec.Struct, forbid_unknown_fields=True):
    """Optional last answers to save before submitting."""

    answers: dict[str, Any] = {}


class ProblemItem(msgspec.Struct):
    """One invalid or missing answer, with the GOV.UK message in English and Welsh."""

    key: str
    message: str
    message_cy: str


class ProblemOut(msgspec.Struct, omit_defaults=True):
    """Why a request was refused; `errors` lists the answers at fault (422)."""

    detail: str
    errors: list[ProblemItem] | None = None


def _docs(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the refusals a handler can answer with."""
    why = {
        404: "no such survey link (or not one of your clients')",
        409: "the survey was already sent with other answers",
        410: "the survey link has expired",
        422: "invalid answers, or the survey is not complete",
        429: "too many failed lookups from this address",
    }
    return {c: ResponseSpec(data_container=ProblemOut, description=why[c]) for c in codes}


class SubmitOut(msgspec.Struct):
    """A completed survey: one response per support."""

    state: str
    completed_at: dt.datetime
    responses: int
    repeated: bool


def _survey(link: LinkView, lang: str | None) -> SurveyOut:
    lang = lang if lang in ("en", "cy") else link.lang
    answers = flow.Answers.from_json(link.answers)
    steps = flow.steps_for(link, answers)
    questions = []
    for step in steps:
        q = step.question
        questions.append(
            QuestionOut(
                key=step.key, id=q.id, type=q.type, text=q.text.get(lang),
                hint=q.hint.get(lang) if q.hint else None, required=q.required,
                options=[
                    OptionOut(code=o.code, label=o.label.get(lang), hint=o.hint.get(lang) if o.hint else None,
                              exclusive=o.exclusive)
                    for o in q.options
                ],
                max_length=q.max_length, support=step.item_number or None,
                answered=answers.has(step), answer=answers.get(step),
            )
        )  # fmt: skip
    nxt = flow.first_unanswered(steps, answers)
    completed = link.completed_at
    if isinstance(completed, str):  # SQLite hands back text where the driver was used directly
        completed = dt.datetime.fromisoformat(completed)
    return SurveyOut(
        state=link.state(), lang=lang, mode=link.mode, waves=link.waves, supports=len(flow.exit_items(link)),
        expires_at=link.expires_at, completed_at=completed, total=len(steps),
        answered=sum(1 for s in steps if answers.has(s)), next=nxt.key if nxt else None,
        digest=answers.digest(), questions=questions,
    )  # fmt: skip


def _problem(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> Response[Any]:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return Response(body, status_code=status)


async def _token_link(request: Request[Any, Any, Any], token: str) -> LinkView | Response[Any]:
    limiter = limiter_for(request)
    client = client_address(request)
    if limiter.blocked(client):
        return _problem(429, "too many failed attempts; wait a minute")
    link = await links.resolve_link(token)
    if link is None:
        limiter.fail(client)
        return _problem(404, "not found")
    return link


async def _save(link: LinkView, data: AnswersIn, lang: str | None, mode: str | None) -> Response[Any]:
    if link.state() == "completed":
        return _problem(409, "this survey has already been sent; answers cannot be changed")
    if link.state() == "expired":
        return _problem(410, "this survey link has expired")
    accepted, errors = flow.validate_updates(link, data.answers)
    if errors:
        return _problem(422, "some answers are not valid; nothing was saved", errors)
    saved = await flow.save_answers(link, accepted, mode=mode)
    if saved.status == "completed":
        return _problem(409, "this survey has already been sent; answers cannot be changed")
    return Response(_survey(link, lang))


async def _submit(link: LinkView, data: SubmitIn | None, mode: str | None) -> Response[Any]:
    raw = data.answers if data else {}
    if link.state() == "expired":
        return _problem(410, "this survey link has expired")
    accepted: list[tuple[str, Any]] = []
    if raw:
        accepted, errors = flow.validate_updates(link, raw)
        if errors:
            return _problem(422, "some answers are not valid; nothing was saved", errors)
    return _submitted(link, await flow.submit(link, updates=accepted, mode=mode))


def _submitted(link: LinkView, result: flow.SubmitResult) -> Response[Any]:
    if result.outcome in ("completed", "already"):
        assert result.completed_at is not None
        completed = result.completed_at
        if isinstance(completed, str):
            completed = dt.datetime.fromisoformat(completed)
        body = SubmitOut("completed", completed, len(link.items), repeated=result.outcome == "already")
        return Response(body, status_code=HTTP_200_OK)
    if result.outcome == "different":
        return _problem(409, "this survey was already sent with other answers; nothing was changed")
    if result.outcome == "incomplete" and result.missing is not None:
        return _problem(
            422, "the survey is not complete; answered questions were saved",
            [{"key": result.missing.key, "message": result.missing.question.error.en,
              "message_cy": result.missing.question.error.cy}],
        )  # fmt: skip
    return _problem(410, "this survey link has expired")


class SurveyApiController(Controller):
    """The survey by link token: read, save answers, submit."""

    path = "/api/v1/surveys"
    tags = ["survey"]
    after_request = secure_headers  # type: ignore[assignment]  # Litestar calls the hook unbound

    @get("/{token:str}", operation_id="getSurvey", opt=public(survey_token=True), responses=_docs(404, 429))
    async def get_survey(
        self, request: Request[Any, Any, Any], token: FromPath[str], lang: Lang = None
    ) -> Response[SurveyOut]:
        """The survey's questions in order, with saved answers and the key to resume at."""
        link = await _token_link(request, token)
        if isinstance(link, Response):
            return link
        return Response(_survey(link, lang))

    @put(
        "/{token:str}/answers", operation_id="saveSurveyAnswers", opt=public(survey_token=True),
        responses=_docs(404, 409, 410, 422, 429),
    )  # fmt: skip
    async def save_answers(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        data: JSONBody[AnswersIn],
        lang: Lang = None,
    ) -> Response[SurveyOut]:
        """Save some answers (a partial response); 422 lists invalid answers and saves none."""
        link = await _token_link(request, token)
        if isinstance(link, Response):
            return link
        return await _save(link, data, lang, None)

    @post(
        "/{token:str}/submit", operation_id="submitSurvey", opt=public(survey_token=True), status_code=200,
        responses=_docs(404, 409, 410, 422, 429),
    )  # fmt: skip
    async def submit(
        self, request: Request[Any, Any, Any], token: FromPath[str], data: JSONBody[SubmitIn | None] = None
    ) -> Response[SubmitOut]:
        """Send the survey (optionally with last answers). Repeating the same submit is harmless (200,
        `repeated: true`); a different one after completion is 409."""
        limiter = limiter_for(request)
        client = client_address(request)
        if limiter.blocked(client):
            return _problem(429, "too many failed attempts; wait a minute")
        # One transaction on one connection: lookup, validation and the writes (the hot path).
        link, result, errors = await flow.submit_by_token(token, data.answers if data else {})
        if link is None:
            limiter.fail(client)
            return _problem(404, "not found")
        if errors:
            return _problem(422, "some answers are not valid; nothing was saved", errors)
        assert result is not None
        return _submitted(link, result)


async def _phone_link(token: str, principal: Principal) -> LinkView | None:
    """The link, when every item is one of the caller's own referrals; otherwise None (404)."""
    link = await links.resolve_link(token)
    if link is None or not link.items:
        return None
    if principal.role == "provider" and any(i.provider != principal.organisation_code for i in link.items):
        return None
    return link


async def _audit(
    action: str, principal: Principal, request: Request[Any, Any, Any], link: LinkView, **extra: Any
) -> None:
    # Identifiers and counts only: the audit trail never holds answers.
    await audit.record(
        action, principal, subject_type="survey_link", subject_id=str(link.id),
        client=client_address(request), **extra,
    )  # fmt: skip


class PhoneSurveyApiController(Controller):
    """A practitioner completing the survey with the person on the phone (provider key and token)."""

    path = "/api/v1/phone-surveys"
    tags = ["survey"]
    after_request = secure_headers  # type: ignore[assignment]  # Litestar calls the hook unbound

    @get(
        "/{token:str}",
        operation_id="getPhoneSurvey",
        opt=policy("provider", scoped=True),
        responses=_docs(404),
    )
    async def get_survey(
        self, request: Request[Any, Any, Any], token: FromPath[str], principal: NamedDependency[Principal],
        lang: Lang = None,
    ) -> Response[SurveyOut]:  # fmt: skip
        """The survey, for one of the provider's own clients."""
        link = await _phone_link(token, principal)
        if link is None:
            return _problem(404, "not found")
        await _audit("survey.phone.read", principal, request, link)
        return Response(_survey(link, lang))

    @put(
        "/{token:str}/answers", operation_id="savePhoneSurveyAnswers", opt=policy("provider", scoped=True),
        responses=_docs(404, 409, 410, 422),
    )  # fmt: skip
    async def save_answers(
        self, request: Request[Any, Any, Any], token: FromPath[str], data: JSONBody[AnswersIn],
        principal: NamedDependency[Principal], lang: Lang = None,
    ) -> Response[SurveyOut]:  # fmt: skip
        """Save answers given by phone (stored with mode=phone)."""
        link = await _phone_link(token, principal)
        if link is None:
            return _problem(404, "not found")
        await _audit("survey.phone.save", principal, request, link, detail={"count": len(data.answers)})
        return await _save(link, data, lang, "phone")

    @post(
        "/{token:str}/submit", operation_id="submitPhoneSurvey", opt=policy("provider", scoped=True),
        status_code=200, responses=_docs(404, 409, 410, 422),
    )  # fmt: skip
    async def submit(
        self, request: Request[Any, Any, Any], token: FromPath[str], principal: NamedDependency[Principal],
        data: JSONBody[SubmitIn | None] = None,
    ) -> Response[SubmitOut]:  # fmt: skip
        """Send the survey given by phone (idempotent like the person's own submit)."""
        link = await _phone_link(token, principal)
        if link is None:
            return _problem(404, "not found")
        await _audit("survey.phone.submit", principal, request, link)
        return await _submit(link, data, "phone")
