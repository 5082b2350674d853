"""The victim's survey pages over HTTP: flow, validation, resume, idempotent submit, headers, Welsh,
opt-out and snooze, and the JSON API (plain and phone mode)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from surveys.importing import import_referrals
from surveys.links import create_link, referral_pk, resolve_link
from surveys.messages import SURVEY_FORBIDDEN, find_forbidden
from surveys.responses import HELPED
from surveys.scheduling import person_lang
from surveys.tables import LinkItem, Response, SurveyLink
from tests.conftest import referral_line, referrals_csv

# Answers that complete an exit survey with the police/courts questions shown.
EXIT_ANSWERS: dict[str, Any] = {
    "cope": "3", "safety": "4", "health": "2", "informed": "5", "cjs_involved": "yes", "cjs": "3",
    "recover": "4", "helped_cope": "a_lot", "helped_safety": "a_little", "helped_health": "no",
    "helped_informed": "na", "helped_cjs": "a_lot", "helped_recover": "a_little",
    "satisfaction": "very_satisfied", "rights_received": ["1", "4"], "barriers_text": "The bus",
    "gaps_text": "", "comments_text": "",
}  # fmt: skip
ORG_NAMES = ("General service", "Sexual violence service", "CSE service", "ROSA", "BARN")


async def make_link(
    items: list[tuple[str, str, str]] | None = None, *, lang: str = "en", expired: bool = False,
    mode: str = "web",
) -> tuple[str, int]:  # fmt: skip
    """Referrals for one person and a link asking about (provider, referral_id, wave) items."""
    items = items or [("VS", "R1", "exit")]
    lines = [
        referral_line(p, r, "P1", support_start=f"2025-0{n + 5}-10") for n, (p, r, _) in enumerate(items)
    ]
    await import_referrals(referrals_csv(*lines), "r.csv")
    pks = []
    person = ""
    for provider, ref, wave in items:
        found = await referral_pk(provider, ref)
        assert found is not None
        pks.append((found[0], wave))
        person = found[1]
    now = dt.datetime.now(dt.UTC)
    if expired:
        now -= dt.timedelta(days=60)
    return await create_link(person, pks, lang=lang, now=now, mode=mode)


async def answer_all(client: Any, token: str, answers: dict[str, Any]) -> str:
    """Follow the pages from the start, answering each question; returns the final location."""
    r = await client.get(f"/s/{token}")
    location = f"/s/{token}/q/" + re.search(r'href="/s/[^/]+/q/([^"]+)"', r.text).group(1)
    for _ in range(60):
        if not location.startswith(f"/s/{token}/q/"):
            return location
        key = location.rsplit("/", 1)[1]
        qid = key.split(".")[0]
        value = answers.get(key, answers.get(qid, ""))
        r = await client.post(location, data={"answer": value})
        assert r.status_code == 303, (key, r.status_code, r.text[:500])
        location = r.headers["location"]
    raise AssertionError("did not reach the end")


def title(html: str) -> str:
    return re.search(r"<title[^>]*>(.*?)</title>", html, re.S).group(1).strip()


async def test_start_page_is_neutral_and_safe(client: Any, orgs: None) -> None:
    token, _ = await make_link()
    r = await client.get(f"/s/{token}")
    assert r.status_code == 200
    html = r.text
    assert "Exit this page" in html and "govuk-exit-this-page" in html
    assert "116 123" in html and "999" in html  # where to get help now
    assert f"/s/{token}/stop" in html and f"/s/{token}/not-now" in html
    assert token not in title(html)
    assert not find_forbidden(title(html), SURVEY_FORBIDDEN)
    for name in ORG_NAMES:
        assert name not in html
    # Safety headers, no cookie, and a CSP whose nonce matches the only inline script.
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in r.headers
    policy = r.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline and all(f'nonce="{nonce}"' in attrs for attrs in inline)
    # Nothing is loaded from another site (the exit link is a navigation, not a request).
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith(("/", "#", "data:")) or url == "https://www.bbc.co.uk/weather", url


async def test_complete_flow_writes_one_response_with_answer_columns(client: Any, orgs: None) -> None:
    token, link_id = await make_link()
    r = await client.get(f"/s/{token}/q/cope")
    assert "Question 1 of" in r.text and 'href="/s/' in r.text
    end = await answer_all(client, token, EXIT_ANSWERS)
    assert end == f"/s/{token}/check"
    # Partial response while in progress.
    rows = await Response.select().run()
    assert len(rows) == 1 and rows[0]["completed_at"] is None and rows[0]["cope"] == 3
    check = await client.get(end)
    assert check.status_code == 200 and "Check your answers" in check.text
    assert "Yes, a lot" in check.text and "Change" in check.text
    digest = re.search(r'name="digest" value="([^"]+)"', check.text).group(1)
    r = await client.post(end, data={"digest": digest})
    assert r.status_code == 303 and r.headers["location"] == f"/s/{token}/done"
    done = await client.get(f"/s/{token}/done")
    assert "Your answers have been sent" in done.text and f"/s/{token}/stop" in done.text
    rows = await Response.select().run()
    assert len(rows) == 1
    row = rows[0]
    assert row["completed_at"] is not None and row["mode"] == "web" and row["wave"] == "exit"
    assert (row["cope"], row["cjs"], row["helped_cope"], row["helped_informed"]) == (3, 3, "a_lot", "na")
    assert row["rights_mask"] == 0b1001 and row["barriers_text"] == "The bus" and row["gaps_text"] is None
    item = await LinkItem.select().where(LinkItem.link == link_id).first().run()
    assert item["response"] == row["id"]
    # Submitting again: the same confirmation, still one response.
    again = await client.post(end, data={"digest": digest})
    assert again.headers["location"] == f"/s/{token}/done"
    assert await Response.count().run() == 1
    # A different submission after completion gets a clear page, not an error.
    other = await client.post(end, data={"digest": "something-else"})
    assert other.status_code == 200 and "already sent your answers" in other.text
    late = await client.post(f"/s/{token}/q/cope", data={"answer": "1"})
    assert late.status_code == 200 and "already sent your answers" in late.text
    assert (await Response.select(Response.cope).first().run())["cope"] == 3
    # Opening the link again shows the confirmation.
    r = await client.get(f"/s/{token}")
    assert r.headers["location"] == f"/s/{token}/done"


async def test_conditional_questions_follow_the_instrument(client: Any, orgs: None) -> None:
    token, _ = await make_link()
    end = await answer_all(client, token, {**EXIT_ANSWERS, "cjs_involved": "no"})
    check = await client.get(end)
    assert "deal with the police or the courts" not in check.text  # cjs, helped_cjs, rights hidden
    link = await resolve_link(token)
    assert link is not None and "cjs" not in link.answers["person"]


async def test_validation_error_summary(client: Any, orgs: None) -> None:
    token, _ = await make_link()
    r = await client.post(f"/s/{token}/q/cope", data={})
    assert r.status_code == 400
    assert title(r.text).startswith("Error: ")
    assert "There is a problem" in r.text and 'href="#answer"' in r.text
    message = "Select how well you feel you can cope"
    assert r.text.count(message) == 2  # the summary and the inline message say the same
    assert 'class="govuk-error-message"' in r.text
    # A tampered value gets the generic message; checkboxes refuse "None of these" with others.
    r = await client.post(f"/s/{token}/q/cope", data={"answer": "9"})
    assert r.status_code == 400 and "Select an answer from the list" in r.text
    r = await client.post(f"/s/{token}/q/cope", data={"answer": "3"})
    assert r.status_code == 303


async def test_exclusive_checkbox_error(client: Any, orgs: None) -> None:
    token, _ = await make_link()
    for key in ("cope", "safety", "health", "informed"):
        await client.post(f"/s/{token}/q/{key}", data={"answer": "3"})
    await client.post(f"/s/{token}/q/cjs_involved", data={"answer": "yes"})
    r = await client.post(f"/s/{token}/q/rights_received", data={"answer": ["1", "none"]})
    assert r.status_code == 400 and "on its own" in r.text


async def test_resume_at_first_unanswered_on_any_device(client: Any, orgs: None) -> None:
    token, _ = await make_link()
    await client.post(f"/s/{token}/q/cope", data={"answer": "2"})
    await client.post(f"/s/{token}/q/safety", data={"answer": "na"})
    # A fresh client (another device): no cookie is involved, the link resumes where it was left.
    r = await client.get(f"/s/{token}")
    assert r.status_code == 303 and r.headers["location"] == f"/s/{token}/q/health"
    back = await client.get(f"/s/{token}/q/safety")
    assert 'value="na" checked' in back.text  # the saved answer is filled in
    # Skipping an optional question counts as answered (resume does not stop there).
    rows = await Response.select().run()
    assert rows[0]["cope"] == 2 and rows[0]["safety"] is None and rows[0]["completed_at"] is None


async def test_combined_link_asks_person_once_and_support_per_item(client: Any, orgs: None) -> None:
    token, link_id = await make_link(
        [("VS", "R1", "exit"), ("ROSA", "R2", "exit"), ("BARN", "R3", "baseline")]
    )
    r = await client.get(f"/s/{token}")
    assert "more than one service" in r.text
    for name in ORG_NAMES:
        assert name not in r.text
    answers = {**EXIT_ANSWERS, "helped_cope.2": "no", "satisfaction.2": "neither"}
    seen: list[str] = []
    original = client.post

    async def spy(url: str, **kw: Any) -> Any:
        seen.append(url.rsplit("/", 1)[1])
        return await original(url, **kw)

    client.post = spy
    try:
        end = await answer_all(client, token, answers)
    finally:
        client.post = original
    assert seen.count("cope") == 1 and "helped_cope.1" in seen and "helped_cope.2" in seen
    q = await client.get(f"/s/{token}/q/helped_cope.2")
    assert "About support 2 of 2" in q.text and "ROSA" not in q.text
    check = await client.get(end)
    digest = re.search(r'name="digest" value="([^"]+)"', check.text).group(1)
    await client.post(end, data={"digest": digest})
    rows = {r["wave"] + str(r["referral"]): r for r in await Response.select().run()}
    assert len(rows) == 3
    items = await LinkItem.select().where(LinkItem.link == link_id).order_by(LinkItem.id).run()
    by_item = {i["id"]: rows[i["wave"] + str(i["referral"])] for i in items}
    first, second, base = (by_item[i["id"]] for i in items)
    assert first["helped_cope"] == "a_lot" and second["helped_cope"] == "no"
    assert second["satisfaction"] == "neither" and first["cope"] == second["cope"] == base["cope"] == 3
    assert base["helped_cope"] is None and base["barriers_text"] is None  # not asked at baseline
    assert all(r["completed_at"] is not None for r in rows.values())
    assert [i["response"] for i in items] == [r["id"] for r in (first, second, base)]


async def test_welsh_pages(client: Any, orgs: None) -> None:
    token, _ = await make_link()
    r = await client.get(f"/s/{token}?lang=cy")
    assert r.status_code == 200 and '<html lang="cy"' in r.text
    assert "Gadael y dudalen hon" in r.text and "Dechrau nawr" in r.text
    assert not find_forbidden(title(r.text), SURVEY_FORBIDDEN)
    # The choice is stored on the link: later pages (and devices) stay in Welsh.
    link = await resolve_link(token)
    assert link is not None and link.lang == "cy"
    # ... and in the person's contact ledger: their next invitations, from any provider, are in Welsh.
    assert await person_lang(link.person_key) == "cy"
    q = await client.get(f"/s/{token}/q/cope")
    assert "Pa mor dda ydych chi" in q.text and "Cwestiwn 1 o" in q.text
    err = await client.post(f"/s/{token}/q/cope", data={})
    assert title(err.text).startswith("Gwall: ") and "Mae problem wedi codi" in err.text
    assert "Dewiswch pa mor dda" in err.text
    en = await client.get(f"/s/{token}/q/cope?lang=en")
    assert "How well do you feel" in en.text


async def test_expired_and_unknown_links(client: Any, orgs: None) -> None:
    token, _ = await make_link(expired=True)
    r = await client.get(f"/s/{token}")
    assert r.status_code == 410 and "This link has expired" in r.text
    assert r.headers["cache-control"] == "no-store"
    r = await client.post(f"/s/{token}/q/cope", data={"answer": "3"})
    assert r.status_code == 410
    missing = await client.get("/s/not-a-real-token")
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert "Exit this page" in missing.text and missing.headers["referrer-policy"] == "no-referrer"


async def test_unknown_tokens_are_rate_limited(client: Any, orgs: None) -> None:
    from access.policy import limiter_for

    app = client._transport.app  # the same app instance serves every request of this client
    limiter = limiter_for(type("C", (), {"app": app})())
    limiter.per_minute = 3
    for _ in range(3):
        assert (await client.get("/s/guess-guess-guess")).status_code == 404
    assert (await client.get("/s/guess-guess-guess")).status_code == 429
    token, _ = await make_link()
    assert (await client.get(f"/s/{token}")).status_code == 429  # blocked for every token now
    assert (await client.get(f"/api/v1/surveys/{token}")).status_code == 429


async def test_stop_asking_and_not_now(client: Any, orgs: None) -> None:
    scheduling = pytest.importorskip("surveys.scheduling")
    if not hasattr(scheduling, "opt_out"):
        pytest.skip("surveys.scheduling.opt_out is not there yet")
    from surveys.tables import ContactPreference

    token, _ = await make_link()
    ask = await client.get(f"/s/{token}/stop")
    assert ask.status_code == 200 and "Yes, stop asking me" in ask.text
    done = await client.post(f"/s/{token}/stop")
    assert done.status_code == 200 and "We will not ask you again" in done.text
    link = await resolve_link(token)
    assert link is not None
    pref = await ContactPreference.select().where(ContactPreference.person_key == link.person_key).first()
    assert pref is not None and pref["opted_out_at"] is not None
    ask = await client.get(f"/s/{token}/not-now?lang=cy")
    assert "Ydw, gofynnwch i mi yn nes ymlaen" in ask.text
    done = await client.post(f"/s/{token}/not-now")
    assert done.status_code == 200 and "gofyn i chi yn nes ymlaen" in done.text
    pref = await ContactPreference.select().where(ContactPreference.person_key == link.person_key).first()
    assert pref["snoozed_until"] is not None


async def test_every_page_type_has_exit_and_no_forbidden_title(client: Any, orgs: None) -> None:
    token, _ = await make_link()
    pages = [f"/s/{token}", f"/s/{token}/q/cope", f"/s/{token}/stop", f"/s/{token}/not-now", "/s/nope"]
    for lang in ("en", "cy"):
        for url in pages:
            r = await client.get(f"{url}?lang={lang}")
            assert "govuk-exit-this-page" in r.text, url
            assert not find_forbidden(title(r.text), SURVEY_FORBIDDEN), url
            assert token not in title(r.text)
            assert r.headers["cache-control"] == "no-store"


# --- JSON API -----------------------------------------------------------------------------------------


async def test_api_get_save_submit_idempotent(client: Any, orgs: None) -> None:
    token, _ = await make_link()
    r = await client.get(f"/api/v1/surveys/{token}")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["state"] == "open" and body["next"] == "cope" and body["supports"] == 1
    assert body["questions"][0]["options"][0] == {"code": 1, "label": "Not at all"}
    bad = await client.put(f"/api/v1/surveys/{token}/answers", json={"answers": {"cope": 9, "nope": 1}})
    assert bad.status_code == 422
    assert {e["key"] for e in bad.json()["errors"]} == {"cope", "nope"}
    ok = await client.put(f"/api/v1/surveys/{token}/answers", json={"answers": {"cope": 3, "safety": "na"}})
    assert ok.status_code == 200 and ok.json()["next"] == "health"
    short = await client.post(f"/api/v1/surveys/{token}/submit", json={"answers": {"health": 2}})
    assert short.status_code == 422 and short.json()["errors"][0]["key"] == "informed"
    # cjs_involved reveals cjs in the same body: answers are taken in survey order.
    answers = {k: v for k, v in EXIT_ANSWERS.items() if k not in ("cope", "safety")}
    answers["rights_received"] = [1, 4]
    done = await client.post(f"/api/v1/surveys/{token}/submit", json={"answers": answers})
    assert done.status_code == 200, done.text
    assert done.json()["responses"] == 1 and done.json()["repeated"] is False
    again = await client.post(f"/api/v1/surveys/{token}/submit", json={"answers": answers})
    assert again.status_code == 200 and again.json()["repeated"] is True
    differ = await client.post(f"/api/v1/surveys/{token}/submit", json={"answers": {"cope": 1}})
    assert differ.status_code == 409
    assert await Response.count().run() == 1
    row = await Response.select().first()
    assert row["cope"] == 3 and row["rights_mask"] == 0b1001 and row["completed_at"] is not None
    assert (await client.get("/api/v1/surveys/unknown-token")).status_code == 404


async def test_api_phone_mode_only_for_own_clients(client: Any, keys: dict[str, dict[str, str]]) -> None:
    token, _ = await make_link(mode="phone")
    assert (await client.get(f"/api/v1/phone-surveys/{token}")).status_code == 401
    assert (await client.get(f"/api/v1/phone-surveys/{token}", headers=keys["rosa"])).status_code == 404
    assert (await client.get(f"/api/v1/phone-surveys/{token}", headers=keys["opcc"])).status_code == 403
    r = await client.get(f"/api/v1/phone-surveys/{token}", headers=keys["vs"])
    assert r.status_code == 200 and r.json()["mode"] == "phone"
    answers = dict(EXIT_ANSWERS)
    done = await client.post(
        f"/api/v1/phone-surveys/{token}/submit", headers=keys["vs"], json={"answers": answers}
    )
    assert done.status_code == 200, done.text
    row = await Response.select().first()
    assert row["mode"] == "phone" and row["completed_at"] is not None
    from access.tables import AuditEvent

    events = await AuditEvent.select(AuditEvent.action).where(AuditEvent.action.like("survey.phone.%"))
    assert {e["action"] for e in events} >= {"survey.phone.read", "survey.phone.submit"}


async def test_concurrent_submits_store_one_response(client: Any, orgs: None) -> None:
    import asyncio

    token, _ = await make_link()
    await client.put(f"/api/v1/surveys/{token}/answers", json={"answers": EXIT_ANSWERS})
    results = await asyncio.gather(*[client.post(f"/api/v1/surveys/{token}/submit") for _ in range(8)])
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert sum(1 for r in results if not r.json()["repeated"]) == 1
    assert await Response.count().run() == 1
    assert (await SurveyLink.select(SurveyLink.completed_at).first())["completed_at"] is not None


async def test_concurrent_submits_with_answers_store_one_response(client: Any, orgs: None) -> None:
    """Submits carrying every answer race for a link nobody saved on (on PostgreSQL the unlocked
    compare-and-set path): one completes it, the others see it done, one response row."""
    import asyncio

    token, _ = await make_link()
    body = {"answers": EXIT_ANSWERS}
    results = await asyncio.gather(
        *[client.post(f"/api/v1/surveys/{token}/submit", json=body) for _ in range(8)]
    )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert sum(1 for r in results if not r.json()["repeated"]) == 1
    rows = await Response.select(Response.completed_at, Response.cope, Response.satisfaction)
    assert len(rows) == 1 and rows[0]["completed_at"] is not None
    assert (rows[0]["cope"], rows[0]["satisfaction"]) == (3, "very_satisfied")


async def test_api_submit_of_a_combined_link_writes_each_support(client: Any, orgs: None) -> None:
    token, _ = await make_link([("VS", "R1", "exit"), ("ROSA", "R2", "exit")])
    answers = {k: v for k, v in EXIT_ANSWERS.items() if not k.startswith("helped_") and k != "satisfaction"}
    for n, helped in ((1, "a_lot"), (2, "no")):
        answers |= {f"{h}.{n}": helped for h in HELPED}
        answers[f"satisfaction.{n}"] = "very_satisfied" if n == 1 else "fairly_dissatisfied"
    r = await client.post(f"/api/v1/surveys/{token}/submit", json={"answers": answers})
    assert r.status_code == 200, r.text
    assert r.json()["responses"] == 2
    # Each support's answers in the response its link item points at (items in link order).
    items = await LinkItem.select(LinkItem.response).order_by(LinkItem.id)
    rows = [
        await Response.select(Response.helped_cope, Response.satisfaction, Response.completed_at)
        .where(Response.id == i["response"])
        .first()
        for i in items
    ]
    assert [(x["helped_cope"], x["satisfaction"]) for x in rows] == [
        ("a_lot", "very_satisfied"), ("no", "fairly_dissatisfied")
    ]  # fmt: skip
    assert all(x["completed_at"] is not None for x in rows)
    assert await Response.count().run() == 2


async def make_links(count: int) -> list[str]:
    """`count` people, each with one exit referral and a link about it."""
    lines = [referral_line("VS", f"R{n}", f"P{n}") for n in range(count)]
    await import_referrals(referrals_csv(*lines), "r.csv")
    tokens = []
    for n in range(count):
        found = await referral_pk("VS", f"R{n}")
        assert found is not None
        token, _ = await create_link(found[1], [(found[0], "exit")])
        tokens.append(token)
    return tokens


async def test_submits_made_together_share_statements_and_keep_their_own_outcomes(
    client: Any, orgs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, the plain submits that arrive in one turn of the event loop share one read and
    one write; a repeat of one of them, an invalid answer and an unknown link each get their own answer."""
    import asyncio

    from surveys import db
    from surveys.pages import flow

    if db.is_sqlite():
        pytest.skip("SQLite batches its writes in the writer (test_db_writer.py)")
    tokens = await make_links(5)
    reads: list[int] = []
    writes: list[int] = []
    read_links, compare_and_set = flow._LINK_READS.run, flow._compare_and_set

    async def counted_reads(hashes: list[str]) -> Any:
        reads.append(len(hashes))
        return await read_links(hashes)

    async def counted_writes(completions: list[Any]) -> list[bool]:
        writes.append(len(completions))
        return await compare_and_set(completions)

    monkeypatch.setattr(flow._LINK_READS, "run", counted_reads)
    monkeypatch.setattr(flow, "_compare_and_set", counted_writes)
    results = await asyncio.gather(
        *[flow.submit_by_token(t, EXIT_ANSWERS) for t in tokens[:4]],
        flow.submit_by_token(tokens[0], EXIT_ANSWERS),
        flow.submit_by_token(tokens[4], {**EXIT_ANSWERS, "cope": "9"}),
        flow.submit_by_token("x" * 43, EXIT_ANSWERS),
    )
    # One read for all seven, one write for the four valid links (the repeat's link once).
    assert reads == [7] and writes == [4]
    outcomes = [(r[1].outcome if r[1] else None, bool(r[2])) for r in results]
    assert outcomes[:4] == [("completed", False)] * 4
    assert outcomes[4] == ("already", False)  # the repeat was decided under the lock
    assert outcomes[5] == (None, True) and results[5][2][0]["key"] == "cope"
    assert results[6] == (None, None, [])
    links = await SurveyLink.select(SurveyLink.id, SurveyLink.completed_at).order_by(SurveyLink.id)
    assert [x["completed_at"] is not None for x in links] == [True] * 4 + [False]
    rows = await Response.select(Response.referral, Response.cope, Response.completed_at)
    assert len(rows) == 4 and len({r["referral"] for r in rows}) == 4
    assert all(r["cope"] == 3 and r["completed_at"] is not None for r in rows)


async def test_a_conflict_in_a_shared_write_leaves_the_others_written(client: Any, orgs: None) -> None:
    """The shared write is one transaction: when one link's part fails (a response row appeared that
    its read did not see), each link is written alone, and only that one is left to the locked way."""
    from surveys import db
    from surveys.pages import flow

    if db.is_sqlite():
        pytest.skip("the shared compare-and-set write is PostgreSQL's")
    tokens = await make_links(3)
    now = dt.datetime.now(dt.UTC)
    completions = []
    for token in tokens:
        read = await db.run_unlocked(lambda t, token=token: flow._link_by_token(t, token, lock=False))
        assert read is not None
        link, row = read
        answers = flow.Answers.from_json({})
        flow._validate_into(link, answers, EXIT_ANSWERS)
        completions.append(
            flow._Completion(link, answers, flow.instrument_of(link), "web", now, row["answers"])
        )
    # The middle link's response row, made after the reads (as a concurrent writer would).
    middle = completions[1].link
    await Response.insert(
        Response(
            referral=middle.items[0].referral_pk, wave="exit", created_at=now, updated_at=now,
            submission_key=flow.submission_key(middle.id, middle.items[0].item_id),
        )
    )  # fmt: skip
    assert await flow._write_completions(completions) == [True, False, True]
    links = await SurveyLink.select(SurveyLink.completed_at).order_by(SurveyLink.id)
    assert [x["completed_at"] is not None for x in links] == [True, False, True]
    assert await Response.count().where(Response.completed_at.is_not_null()).run() == 2


async def test_unlocked_completion_refuses_a_link_changed_since_it_was_read(client: Any, orgs: None) -> None:
    """PostgreSQL's two-statement submit is a compare and set: when a save lands between its read and
    its write, it writes nothing, and the submit is decided again under the lock."""
    from surveys import db
    from surveys.pages import flow

    if db.is_sqlite():
        pytest.skip("the unlocked path is PostgreSQL's; SQLite writes always hold the write lock")
    token, _ = await make_link()
    read = await db.run_unlocked(lambda t: flow._link_by_token(t, token, lock=False))
    assert read is not None
    link, row = read
    saved = await client.put(f"/api/v1/surveys/{token}/answers", json={"answers": {"cope": "2"}})
    assert saved.status_code == 200
    answers = flow.Answers.from_json({})
    flow._validate_into(link, answers, EXIT_ANSWERS)
    inst = flow.instrument_of(link)
    stale = flow._Completion(link, answers, inst, "web", dt.datetime.now(dt.UTC), row["answers"])
    assert await flow._compare_and_set([stale]) == [False]
    assert (await SurveyLink.select(SurveyLink.completed_at).first())["completed_at"] is None
    assert await Response.count().where(Response.completed_at.is_not_null()).run() == 0
    # The save's partial row is there; a submit now completes it (under the lock), keeping one row.
    r = await client.post(f"/api/v1/surveys/{token}/submit", json={"answers": EXIT_ANSWERS})
    assert r.status_code == 200 and not r.json()["repeated"]
    rows = await Response.select(Response.cope, Response.completed_at)
    assert len(rows) == 1 and rows[0]["cope"] == 3 and rows[0]["completed_at"] is not None
