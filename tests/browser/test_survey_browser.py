"""The survey in a real browser: end to end, resume, Exit this page, without JavaScript, in Welsh, and
axe-core (WCAG 2.0/2.1/2.2 A and AA) with no violations on every page type."""

from __future__ import annotations

from typing import Any

import pytest

from surveys.links import resolve_link
from surveys.tables import Response
from tests.surveys.test_pages import make_link

pytestmark = pytest.mark.browser

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
# What the browser answers, by question id (None: press Continue without answering, to skip).
ANSWERS: dict[str, Any] = {
    "cope": "3", "safety": "4", "health": "2", "informed": "5", "cjs_involved": "yes", "cjs": "3",
    "recover": "4", "helped_cope": "a_lot", "helped_safety": "a_little", "helped_health": "no",
    "helped_informed": "na", "helped_cjs": "a_lot", "helped_recover": "a_little",
    "satisfaction": None, "rights_received": ["1", "4"], "barriers_text": "Getting there on the bus",
    "gaps_text": None, "comments_text": None,
}  # fmt: skip


async def submit(page: Any, selector: str) -> None:
    """Click a control that submits a form or follows a link, and wait for the next page."""
    async with page.expect_navigation(wait_until="domcontentloaded"):
        await page.click(selector)


async def axe_clean(page: Any, what: str) -> None:
    """axe-core finds no WCAG 2.0/2.1/2.2 A or AA violation on the page."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    violations = results.response["violations"]
    assert violations == [], f"{what}: " + "; ".join(
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['html'][:120]})" for v in violations
    )


async def answer_current(page: Any, token: str) -> str:
    """Answer the question on screen from ANSWERS, press Continue; returns the question key."""
    key = page.url.split("/q/")[1].split("?")[0]
    value = ANSWERS.get(key.split(".")[0])
    if isinstance(value, list):
        for v in value:
            await page.check(f'input[name="answer"][value="{v}"]')
    elif value is not None and await page.locator("textarea#answer").count():
        await page.fill("textarea#answer", value)
    elif value is not None:
        await page.check(f'input[name="answer"][value="{value}"]')
    async with page.expect_navigation(wait_until="domcontentloaded"):
        await page.click("form button.govuk-button")
    return key


async def answer_until_check(page: Any, token: str, limit: int = 40) -> list[str]:
    keys = []
    while "/q/" in page.url and len(keys) < limit:
        keys.append(await answer_current(page, token))
    assert page.url.endswith(f"/s/{token}/check"), page.url
    return keys


async def test_end_to_end_with_axe_on_every_page_type(new_page: Any) -> None:
    token, _ = await make_link()
    page = await new_page()
    await page.goto(f"/s/{token}")
    assert await page.title() == "Tell us how you are doing – Your feedback"
    await axe_clean(page, "start page")
    await submit(page, "text=Start now")
    assert "Question 1 of" in await page.inner_text("legend")
    await axe_clean(page, "question page")
    # Error state: Continue without an answer; the summary takes focus and links to the field.
    await submit(page, "form button.govuk-button")
    assert (await page.title()).startswith("Error: ")
    # GOV.UK Frontend's module script moves focus to the summary once it has loaded.
    await page.wait_for_function("document.activeElement.closest('.govuk-error-summary') !== null")
    await axe_clean(page, "question page with an error")
    await page.click(".govuk-error-summary a")
    assert await page.evaluate("document.activeElement.name") == "answer"
    keys = await answer_until_check(page, token)
    assert "rights_received" in keys and "barriers_text" in keys
    await axe_clean(page, "check your answers")
    await submit(page, 'button:has-text("Send your answers")')
    assert page.url.endswith(f"/s/{token}/done")
    assert "Thank you for your answers" in await page.inner_text("main")
    await axe_clean(page, "confirmation")
    rows = await Response.select().run()
    assert len(rows) == 1 and rows[0]["completed_at"] is not None and rows[0]["satisfaction"] is None
    # Back and send again (a resubmit): the same confirmation, still one response.
    await page.go_back()
    await page.goto(f"/s/{token}/check")
    assert page.url.endswith("/done")
    assert await Response.count().run() == 1
    for url, what in ((f"/s/{token}/stop", "stop asking me"), (f"/s/{token}/not-now", "not now"),
                      ("/s/not-a-token", "not found")):  # fmt: skip
        await page.goto(url)
        await axe_clean(page, what)


async def test_expired_page_is_accessible(new_page: Any) -> None:
    token, _ = await make_link(expired=True)
    page = await new_page()
    await page.goto(f"/s/{token}")
    assert "This link has expired" in await page.inner_text("h1")
    await axe_clean(page, "expired")


async def test_resume_in_a_fresh_browser_context(new_page: Any) -> None:
    token, _ = await make_link()
    first = await new_page()
    await first.goto(f"/s/{token}")
    await submit(first, "text=Start now")
    for _ in range(3):
        await answer_current(first, token)
    await first.context.close()
    second = await new_page()  # another device: nothing shared but the link
    await second.goto(f"/s/{token}")
    assert second.url.endswith(f"/s/{token}/q/informed")
    assert "Question 4 of" in await second.inner_text("legend")
    await submit(second, ".govuk-back-link")
    assert await second.is_checked('input[name="answer"][value="2"]')  # health, saved on the other device


async def test_exit_this_page_button_and_shift_three_times(new_page: Any) -> None:
    token, _ = await make_link()
    page = await new_page()
    await page.goto(f"/s/{token}")
    await page.click(".govuk-exit-this-page__button")
    await page.wait_for_url("https://www.bbc.co.uk/**")
    page = await new_page()
    await page.goto(f"/s/{token}")
    await submit(page, "text=Start now")
    await page.wait_for_selector("body.govuk-frontend-supported")
    for _ in range(3):
        await page.keyboard.press("Shift")
    await page.wait_for_url("https://www.bbc.co.uk/**")
    assert await page.title() == "Weather"


async def test_complete_without_javascript(new_page: Any) -> None:
    token, _ = await make_link()
    page = await new_page(javascript=False)
    await page.goto(f"/s/{token}")
    assert "Exit this page" in await page.inner_text(".govuk-exit-this-page")
    await submit(page, "text=Start now")
    await answer_until_check(page, token)
    await submit(page, 'button:has-text("Send your answers")')
    assert page.url.endswith("/done")
    assert (await Response.select(Response.completed_at).first())["completed_at"] is not None
    # Exit this page is a plain link without JavaScript.
    await page.click(".govuk-exit-this-page__button")
    await page.wait_for_url("https://www.bbc.co.uk/**")


async def test_complete_in_welsh_with_axe(new_page: Any) -> None:
    token, _ = await make_link()
    page = await new_page()
    await page.goto(f"/s/{token}")
    await submit(page, "text=Cymraeg")
    assert await page.get_attribute("html", "lang") == "cy"
    assert "Gadael y dudalen hon" in await page.inner_text(".govuk-exit-this-page")
    await axe_clean(page, "Welsh start page")
    await submit(page, "text=Dechrau nawr")
    assert "Cwestiwn 1 o" in await page.inner_text("legend")
    await submit(page, "form button.govuk-button")
    assert (await page.title()).startswith("Gwall: ")
    await axe_clean(page, "Welsh error state")
    await answer_until_check(page, token)
    assert "Gwiriwch eich atebion" in await page.inner_text("h1")
    await axe_clean(page, "Welsh check your answers")
    await submit(page, 'button:has-text("Anfon eich atebion")')
    assert "Diolch am eich atebion" in await page.inner_text("main")
    await axe_clean(page, "Welsh confirmation")
    link = await resolve_link(token)
    assert link is not None and link.lang == "cy"
