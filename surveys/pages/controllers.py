"""The survey pages at `/s/{token}`: start, one question a page, check your answers, confirmation.

Safety first: every response carries `Cache-Control: no-store`, `Referrer-Policy: no-referrer` and a
strict Content-Security-Policy (scripts only from this origin or with the page's nonce), sets no
cookie (the token in the path is the session) and loads nothing from another site. Every page has
"Exit this page". Titles name neither the organisation nor the person's experience, and never hold
the token. Everything works without JavaScript: plain forms, POST then redirect.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from markupsafe import Markup, escape

from access.policy import client_address, limiter_for, public
from surveys import links, scheduling
from surveys.links import LinkView
from surveys.pages import flow
from surveys.pages.i18n import long_date, month_year, text

EXIT_URL = "https://www.bbc.co.uk/weather"  # the neutral site GOV.UK suggests for Exit this page
SNOOZE_FOR = dt.timedelta(days=91)  # "not now": three months
SECONDS_PER_QUESTION = 20

_CSP = (
    "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SAFE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def csp(nonce: str | None = None) -> str:
    """The Content-Security-Policy of a page; without a nonce no script runs but our own files."""
    policy = _CSP.format(nonce=nonce or "")
    return policy.replace(" 'nonce-'", "")


NO_SCRIPT_CSP = csp()  # the policy of every response that is not a page with a nonce


async def secure_headers(response: Response[Any]) -> Response[Any]:
    """after_request: the safety headers on every survey response, redirects and errors included."""
    headers = response.headers
    headers.update(SAFE_HEADERS)
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = NO_SCRIPT_CSP
    return response


def page(
    request: Request[Any, Any, Any], template: str, lang: str, status: int = 200, **ctx: Any
) -> Template:
    """Render a page with the shared furniture (Exit this page, language switch) and a fresh CSP nonce."""
    nonce = secrets.token_urlsafe(18)
    other = "en" if lang == "cy" else "cy"

    def t(key: str, **values: object) -> str:
        return text(key, lang, **values)

    context = {
        "lang": lang,
        "other_lang": other,
        "t": t,
        "cspNonce": nonce,
        "exit_url": EXIT_URL,
        "lang_url": f"{request.url.path}?lang={other}",
        "back_url": None,
        "has_error": False,
        **ctx,
    }
    return Template(
        template_name=template,
        context=context,
        status_code=status,
        headers={"Content-Security-Policy": csp(nonce)},
    )


def _see(url: str) -> Redirect:
    return Redirect(path=url, status_code=HTTP_303_SEE_OTHER)


def _base(token: str) -> str:
    return f"/s/{token}"


async def _open(request: Request[Any, Any, Any], token: str) -> LinkView | Template:
    """The link a token opens, or the page to show instead (404, or 429 after many failed lookups)."""
    limiter = limiter_for(request)
    client = client_address(request)
    lang = request.query_params.get("lang", "en")
    lang = lang if lang in ("en", "cy") else "en"
    if limiter.blocked(client):
        return page(request, "message.html", lang, 429, title=text("busy_title", lang),
                    paragraphs=[text("busy_text", lang)], lang_url=None, show_help=True)  # fmt: skip
    link = await links.resolve_link(token)
    if link is None:
        # An unknown token counts as a failed lookup: guessing tokens gets slowed down like bad keys.
        limiter.fail(client)
        return page(request, "message.html", lang, 404, title=text("notfound_title", lang),
                    paragraphs=[text("notfound_text", lang)], lang_url=None, show_help=True)  # fmt: skip
    wanted = request.query_params.get("lang")
    if wanted in ("en", "cy") and wanted != link.lang:
        await flow.set_language(link, wanted)
        # The person's choice also holds for their later invitations and reminders, from any provider.
        await scheduling.set_language(link.person_key, wanted, via="survey-link")
    return link


def _expired(request: Request[Any, Any, Any], link: LinkView) -> Template:
    lang = link.lang
    return page(request, "message.html", lang, 410, title=text("expired_title", lang),
                paragraphs=[text("expired_text", lang)], show_help=True)  # fmt: skip


def _contact_ctx(token: str, lang: str, heading_key: str) -> dict[str, Any]:
    return {
        "contact_heading": text(heading_key, lang),
        "stop_url": f"{_base(token)}/stop",
        "snooze_url": f"{_base(token)}/not-now",
    }


def _next_url(token: str, steps: list[flow.Step], answers: flow.Answers) -> str:
    nxt = flow.first_unanswered(steps, answers)
    return f"{_base(token)}/q/{nxt.key}" if nxt else f"{_base(token)}/check"


def _label(question: Any, value: Any, lang: str) -> str:
    if value is None or value == "" or value == []:
        return text("check_skipped", lang)
    if question.type == "text":
        return str(value)
    values = value if isinstance(value, list) else [value]
    labels = [opt.label.get(lang) for v in values if (opt := question.option(v)) is not None]
    return "; ".join(labels) if labels else str(value)


def _support_caption(step: flow.Step, dates: dict[int, dt.date], lang: str) -> str | None:
    if step.item is None or step.item_count < 2:
        return None
    when = dates.get(step.item.referral_pk)
    if when is None:
        return text("support_n_of_m_plain", lang, n=step.item_number, m=step.item_count)
    return text("support_n_of_m", lang, n=step.item_number, m=step.item_count, when=month_year(when, lang))


def _question_page(
    request: Request[Any, Any, Any],
    token: str,
    link: LinkView,
    steps: list[flow.Step],
    index: int,
    value: Any,
    dates: dict[int, dt.date],
    error: str | None = None,
) -> Template:
    lang = link.lang
    step = steps[index]
    q = step.question
    progress = text("question_n_of_m", lang, n=index + 1, m=len(steps))
    caption = _support_caption(step, dates, lang)
    heading = Markup('<span class="govuk-caption-l">{}</span>').format(progress)
    if caption:
        heading += Markup('<span class="govuk-caption-m">{}</span>').format(caption)
    heading += escape(q.text.get(lang))
    chosen = {str(v) for v in (value if isinstance(value, list) else [value]) if v is not None}
    items: list[dict[str, Any]] = []
    for opt in q.options:
        if opt.exclusive:
            items.append({"divider": "neu" if lang == "cy" else "or"})
        item: dict[str, Any] = {
            "value": str(opt.code),
            "text": opt.label.get(lang),
            "checked": str(opt.code) in chosen,
        }
        if opt.hint:
            item["hint"] = {"text": opt.hint.get(lang)}
        if opt.exclusive:
            item["behaviour"] = "exclusive"
        items.append(item)
    back = f"{_base(token)}/q/{steps[index - 1].key}" if index > 0 else _base(token)
    return page(
        request,
        "question.html",
        lang,
        400 if error else 200,
        title=q.text.get(lang),
        has_error=bool(error),
        error=error,
        heading_html=heading,
        hint_text=q.hint.get(lang) if q.hint else None,
        qtype=q.type,
        items=items,
        value=value if isinstance(value, str) else None,
        max_length=q.max_length,
        action_url=f"{_base(token)}/q/{step.key}",
        back_url=back,
        change=False,
    )


class SurveyPageController(Controller):
    """The victim-facing survey, reached by the link token alone."""

    path = "/s"
    tags = ["survey pages"]
    include_in_schema = False
    after_request = secure_headers  # type: ignore[assignment]  # Litestar calls the hook unbound

    @get("/{token:str}", operation_id="surveyStart", opt=public(survey_token=True))
    async def start(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template | Redirect:
        """The neutral start page; a link with answers resumes at its first unanswered question."""
        link = await _open(request, token)
        if isinstance(link, Template):
            return link
        if link.state() == "completed":
            return _see(f"{_base(token)}/done")
        if link.state() == "expired":
            return _expired(request, link)
        answers = flow.Answers.from_json(link.answers)
        steps = flow.steps_for(link, answers)
        if answers.person or answers.items:
            return _see(_next_url(token, steps, answers))
        lang = link.lang
        minutes = max(2, round(len(steps) * SECONDS_PER_QUESTION / 60))
        return page(
            request, "start.html", lang,
            title=text("start_title", lang),
            combined=len(link.items) > 1,
            minutes=minutes, count=len(steps),
            expires=long_date(link.expires_at, lang),
            start_url=f"{_base(token)}/q/{steps[0].key}" if steps else f"{_base(token)}/check",
            **_contact_ctx(token, lang, "contact_heading"),
        )  # fmt: skip

    @get("/{token:str}/q/{key:str}", operation_id="surveyQuestion", opt=public(survey_token=True))
    async def question(
        self, request: Request[Any, Any, Any], token: FromPath[str], key: FromPath[str]
    ) -> Template | Redirect:
        """One question on its own page, with its saved answer filled in."""
        link = await _open(request, token)
        if isinstance(link, Template):
            return link
        if link.state() == "completed":
            return _see(f"{_base(token)}/done")
        if link.state() == "expired":
            return _expired(request, link)
        answers = flow.Answers.from_json(link.answers)
        steps = flow.steps_for(link, answers)
        index = flow.find_step(steps, key)
        if index is None:
            return _see(_next_url(token, steps, answers))
        dates = await flow.support_dates(link)
        return _question_page(request, token, link, steps, index, answers.get(steps[index]), dates)

    @post(
        "/{token:str}/q/{key:str}", operation_id="surveyAnswer", opt=public(survey_token=True),
        status_code=HTTP_303_SEE_OTHER, request_max_body_size=64 * 1024,
    )  # fmt: skip
    async def answer(
        self, request: Request[Any, Any, Any], token: FromPath[str], key: FromPath[str]
    ) -> Template | Redirect:
        """Save one answer (server-side, partial) and go on to the first unanswered question."""
        link = await _open(request, token)
        if isinstance(link, Template):
            return link
        if link.state() == "completed":
            return _already(request, link)
        if link.state() == "expired":
            return _expired(request, link)
        answers = flow.Answers.from_json(link.answers)
        steps = flow.steps_for(link, answers)
        index = flow.find_step(steps, key)
        if index is None:
            return _see(_next_url(token, steps, answers))
        form = await request.form()
        step = steps[index]
        raw: Any = form.getall("answer") if step.question.type == "multi_choice" else form.get("answer")
        value, err_en, err_cy = flow.check_answer(step, raw)
        if err_en:
            dates = await flow.support_dates(link)
            shown = raw if isinstance(raw, list) else (raw or None)
            error = err_cy if link.lang == "cy" else err_en
            return _question_page(request, token, link, steps, index, shown, dates, error=error)
        saved = await flow.save_answers(link, [(key, value)])
        if saved.status == "completed":
            return _already(request, link)
        return _see(_next_url(token, flow.steps_for(link, saved.answers), saved.answers))

    @get("/{token:str}/check", operation_id="surveyCheck", opt=public(survey_token=True))
    async def check(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template | Redirect:
        """Check your answers, with a Change link for each, and the button that sends them."""
        link = await _open(request, token)
        if isinstance(link, Template):
            return link
        if link.state() == "completed":
            return _see(f"{_base(token)}/done")
        if link.state() == "expired":
            return _expired(request, link)
        answers = flow.Answers.from_json(link.answers)
        steps = flow.steps_for(link, answers)
        if flow.first_unanswered(steps, answers) is not None:
            return _see(_next_url(token, steps, answers))
        lang = link.lang
        rows = []
        for step in steps:
            label = step.question.text.get(lang)
            if step.item and step.item_count > 1:
                label += text("support_suffix", lang, n=step.item_number)
            rows.append(
                {
                    "key": {"text": label},
                    "value": {"text": _label(step.question, answers.get(step), lang)},
                    "actions": {
                        "items": [
                            {
                                "href": f"{_base(token)}/q/{step.key}",
                                "text": text("check_change", lang),
                                "visuallyHiddenText": label,
                            }
                        ]
                    },
                }
            )
        return page(
            request, "check.html", lang,
            title=text("check_title", lang), rows=rows, digest=answers.digest(),
            action_url=f"{_base(token)}/check",
            back_url=f"{_base(token)}/q/{steps[-1].key}" if steps else _base(token),
        )  # fmt: skip

    @post(
        "/{token:str}/check", operation_id="surveySubmit", opt=public(survey_token=True),
        status_code=HTTP_303_SEE_OTHER, request_max_body_size=16 * 1024,
    )  # fmt: skip
    async def send(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template | Redirect:
        """Send the answers: idempotent, so a double click or a resubmit shows the same confirmation."""
        link = await _open(request, token)
        if isinstance(link, Template):
            return link
        form = await request.form()
        digest = form.get("digest") or None
        result = await flow.submit(link, digest=digest)
        if result.outcome in ("completed", "already"):
            return _see(f"{_base(token)}/done")
        if result.outcome == "different":
            return _already(request, link)
        if result.outcome == "incomplete" and result.missing is not None:
            return _see(f"{_base(token)}/q/{result.missing.key}")
        return _expired(request, link)

    @get("/{token:str}/done", operation_id="surveyDone", opt=public(survey_token=True))
    async def done(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template | Redirect:
        """The confirmation page, shown again whenever a completed link is opened."""
        link = await _open(request, token)
        if isinstance(link, Template):
            return link
        if link.state() != "completed":
            return _see(_base(token))
        lang = link.lang
        return page(request, "done.html", lang, title=text("done_title", lang),
                    **_contact_ctx(token, lang, "done_contact_heading"))  # fmt: skip

    @get("/{token:str}/stop", operation_id="surveyStopAsk", opt=public(survey_token=True))
    async def stop_ask(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
        """Confirm "stop asking me"."""
        return await _confirm(request, token, "stop")

    @post(
        "/{token:str}/stop", operation_id="surveyStop", opt=public(survey_token=True), status_code=200,
        request_max_body_size=1024,
    )  # fmt: skip
    async def stop(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
        """Record "stop asking me" for the person, across every provider."""
        link = await _open(request, token)
        if isinstance(link, Template):
            return link
        await scheduling.opt_out(link.person_key, via="survey-link")
        lang = link.lang
        return page(request, "message.html", lang, title=text("stop_done_title", lang),
                    paragraphs=[text("stop_done_text", lang)], show_help=True)  # fmt: skip

    @get("/{token:str}/not-now", operation_id="surveySnoozeAsk", opt=public(survey_token=True))
    async def snooze_ask(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
        """Confirm "not now"."""
        return await _confirm(request, token, "snooze")

    @post(
        "/{token:str}/not-now", operation_id="surveySnooze", opt=public(survey_token=True), status_code=200,
        request_max_body_size=1024,
    )  # fmt: skip
    async def snooze(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
        """Record "not now": no survey invitation for three months."""
        link = await _open(request, token)
        if isinstance(link, Template):
            return link
        until = dt.datetime.now(dt.UTC) + SNOOZE_FOR
        await scheduling.snooze(link.person_key, until, via="survey-link")
        lang = link.lang
        return page(request, "message.html", lang, title=text("snooze_done_title", lang),
                    paragraphs=[text("snooze_done_text", lang, date=long_date(until, lang))],
                    show_help=True)  # fmt: skip


async def _confirm(request: Request[Any, Any, Any], token: str, what: str) -> Template:
    link = await _open(request, token)
    if isinstance(link, Template):
        return link
    lang = link.lang
    back = f"{_base(token)}/done" if link.state() == "completed" else _base(token)
    action = "stop" if what == "stop" else "not-now"
    return page(
        request, "confirm.html", lang,
        title=text(f"{what}_title", lang), body=text(f"{what}_text", lang),
        confirm_text=text(f"{what}_confirm", lang), action_url=f"{_base(token)}/{action}",
        cancel_url=back, back_url=back,
    )  # fmt: skip


def _already(request: Request[Any, Any, Any], link: LinkView) -> Template:
    lang = link.lang
    return page(request, "message.html", lang, title=text("already_title", lang),
                paragraphs=[text("already_text", lang)], show_help=True)  # fmt: skip
