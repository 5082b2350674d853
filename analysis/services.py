"""Queries of the analysis domain: processing free-text answers, alerts, and the VRG's review.

The mining itself (analysis.pipeline) is pure and CPU-bound; it runs in a worker thread so the server
keeps answering while a batch is analysed. Only redacted text is stored here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from access import audit
from analysis.tables import EmergingTopic, SafeguardingAlert, TextAnalysis, ThemeReview, YouSaidWeDid
from surveys import db
from surveys.tables import Referral, Response

TEXT_FIELDS = ("barriers_text", "gaps_text", "comments_text")
MIN_VICTIMS_FOR_TEXT = 5
# Answers flagged for safeguarding are for the supporting provider only, never for review or examples.
NOT_FLAGGED = TextAnalysis.safeguarding == False  # noqa: E712 - Piccolo builds SQL from ==


@lru_cache(maxsize=1)
def analyser() -> Any:
    """The packaged text pipeline (models loaded once per process)."""
    from analysis.pipeline import TextAnalyser

    return TextAnalyser.load()


def uncertainty(scores: dict[str, float]) -> float:
    """How unsure the theme model is about an answer: 1 when some theme sits at p = 0.5, 0 when all are
    near 0 or 1. The review queue shows the most uncertain answers first."""
    if not scores:
        return 0.0
    return max(1.0 - abs(2.0 * p - 1.0) for p in scores.values())


async def pending(
    period: tuple[dt.date, dt.date] | None, reprocess: bool, limit: int, after_id: int = 0
) -> list[dict[str, Any]]:
    """Complete responses with free text not yet analysed (or all of them, to reprocess), by id."""
    query = Response.select(
        Response.id, Response.referral, *(getattr(Response, f) for f in TEXT_FIELDS)
    ).where(
        Response.completed_at.is_not_null()
        & (
            Response.barriers_text.is_not_null()
            | Response.gaps_text.is_not_null()
            | Response.comments_text.is_not_null()
        )
    )
    query = query.where(Response.id > after_id)
    if period:
        start = dt.datetime.combine(period[0], dt.time(0), dt.UTC)
        end = dt.datetime.combine(period[1] + dt.timedelta(days=1), dt.time(0), dt.UTC)
        query = query.where((Response.completed_at >= start) & (Response.completed_at < end))
    if not reprocess:
        done = TextAnalysis.select(TextAnalysis.response)
        query = query.where(Response.id.not_in(done))
    return await query.order_by(Response.id).limit(limit).run()


async def analyse_rows(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Analyse the free text of these responses and store the results; returns (answers, alerts)."""
    answers = [(row, field) for row in rows for field in TEXT_FIELDS if (row.get(field) or "").strip()]
    if not answers:
        return 0, 0
    pipeline = analyser()
    results = await asyncio.to_thread(pipeline.analyse, [row[field] for row, field in answers])
    analysed = list(zip(answers, results, strict=True))
    alerts = 0
    # A transaction per few responses, never per batch: on SQLite a transaction holds the one write
    # lock, and every survey submit waits while a batch of 500 responses is stored statement by
    # statement. A response's answers are stored together, so one not yet analysed has no row at all.
    by_response = [list(group) for _, group in itertools.groupby(analysed, key=lambda e: e[0][0]["id"])]
    for start in range(0, len(by_response), ROWS_PER_TRANSACTION):
        alerts += await _store(
            [e for group in by_response[start : start + ROWS_PER_TRANSACTION] for e in group]
        )
    return len(answers), alerts


ROWS_PER_TRANSACTION = 20


async def _store(analysed: list[tuple[tuple[dict[str, Any], str], dict[str, Any]]]) -> int:
    """Store the analyses of a few answers in one transaction; returns how many raised an alert."""
    alerts = 0
    async with db.write_transaction():
        for (row, field), found in analysed:
            await (
                TextAnalysis.delete()
                .where((TextAnalysis.response == row["id"]) & (TextAnalysis.field == field))
                .run()
            )
            analysis = TextAnalysis(
                response=row["id"],
                field=field,
                redacted=found["redacted"],
                sentiment=found["sentiment"],
                themes=json.dumps(found["themes"]),
                theme_scores=json.dumps(found["theme_scores"]),
                uncertainty=uncertainty(found["theme_scores"]),
                safeguarding=bool(found["safeguarding"]),
                model_version=found["model_version"],
            )
            await analysis.save().run()
            if found["safeguarding"]:
                alerts += 1
                await SafeguardingAlert.insert(
                    SafeguardingAlert(analysis=analysis.id, referral=row["referral"])
                ).run()
                await audit.record(
                    "safeguarding.alert",
                    actor="text-pipeline",
                    subject_type="referral",
                    subject_id=str(row["referral"]),
                )
    return alerts


async def process(
    period: tuple[dt.date, dt.date] | None = None,
    reprocess: bool = False,
    batch: int = 500,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Analyse every pending answer (or all, with `reprocess`) in batches; returns counts."""
    total_answers = total_alerts = 0
    last_id = 0
    while True:
        rows = await pending(period, reprocess, batch, after_id=last_id)
        if not rows:
            break
        last_id = rows[-1]["id"]
        answers, alerts = await analyse_rows(rows)
        total_answers += answers
        total_alerts += alerts
        if on_progress:
            on_progress(total_answers, total_alerts)
    return {"answers": total_answers, "alerts": total_alerts}


async def theme_counts(start: dt.date, end: dt.date) -> dict[str, dict[str, int]]:
    """Answers and distinct victims per theme among complete responses of a period (raw counts)."""
    rows = (
        await TextAnalysis.select(
            TextAnalysis.themes,
            TextAnalysis.response.referral.person_key.as_alias("person"),
        )
        .where(
            (TextAnalysis.response.completed_at >= dt.datetime.combine(start, dt.time(0), dt.UTC))
            & (
                TextAnalysis.response.completed_at
                < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), dt.UTC)
            )
        )
        .run()
    )
    answers: dict[str, int] = {}
    victims: dict[str, set[str]] = {}
    for row in rows:
        for theme in json.loads(row["themes"]):
            answers[theme] = answers.get(theme, 0) + 1
            victims.setdefault(theme, set()).add(row["person"])
    return {t: {"answers": n, "victims": len(victims[t])} for t, n in answers.items()}


async def examples(theme: str, start: dt.date, end: dt.date, limit: int = 10) -> list[dict[str, Any]]:
    """Redacted answers carrying a theme (never safeguarding-flagged ones), most certain first."""
    rows = (
        await TextAnalysis.select(
            TextAnalysis.id,
            TextAnalysis.redacted,
            TextAnalysis.sentiment,
            TextAnalysis.themes,
            TextAnalysis.uncertainty,
        )
        .where(
            NOT_FLAGGED
            & TextAnalysis.themes.like(f'%"{theme}"%')
            & (TextAnalysis.response.completed_at >= dt.datetime.combine(start, dt.time(0), dt.UTC))
            & (
                TextAnalysis.response.completed_at
                < dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), dt.UTC)
            )
        )
        .order_by(TextAnalysis.uncertainty)
        .limit(limit)
        .run()
    )
    return [{"id": r["id"], "text": r["redacted"], "sentiment": r["sentiment"]} for r in rows]


async def review_queue(limit: int = 20) -> list[dict[str, Any]]:
    """Answers the model is least sure of, not yet reviewed, never safeguarding-flagged."""
    reviewed = ThemeReview.select(ThemeReview.analysis)
    rows = (
        await TextAnalysis.select(
            TextAnalysis.id,
            TextAnalysis.redacted,
            TextAnalysis.themes,
            TextAnalysis.theme_scores,
            TextAnalysis.uncertainty,
        )
        .where(NOT_FLAGGED & TextAnalysis.id.not_in(reviewed))
        .order_by(TextAnalysis.uncertainty, ascending=False)
        .limit(limit)
        .run()
    )
    return [
        {
            "id": r["id"],
            "text": r["redacted"],
            "themes": json.loads(r["themes"]),
            "scores": json.loads(r["theme_scores"]),
            "uncertainty": r["uncertainty"],
        }
        for r in rows
    ]


async def record_review(analysis_id: int, theme: str, decision: str, new_theme: str, reviewer: str) -> None:
    """Confirm, reject or relabel one theme of one answer; `vop text retrain` learns from these."""
    if not await TextAnalysis.exists().where(TextAnalysis.id == analysis_id):
        raise LookupError(analysis_id)
    await ThemeReview.insert(
        ThemeReview(
            analysis=analysis_id, theme=theme, decision=decision, new_theme=new_theme, reviewer=reviewer
        )
    ).run()


async def confirmed_labels() -> list[tuple[str, list[str]]]:
    """(redacted text, themes) as reviewers left them: the extra training data of `vop text retrain`."""
    reviews = (
        await ThemeReview.select(
            ThemeReview.analysis,
            ThemeReview.theme,
            ThemeReview.decision,
            ThemeReview.new_theme,
            ThemeReview.analysis.redacted.as_alias("text"),
            ThemeReview.analysis.themes.as_alias("themes"),
        )
        .order_by(ThemeReview.id)
        .run()
    )
    labelled: dict[int, tuple[str, set[str]]] = {}
    for r in reviews:
        _, themes = labelled.setdefault(r["analysis"], (r["text"], set(json.loads(r["themes"]))))
        if r["decision"] == "reject":
            themes.discard(r["theme"])
        elif r["decision"] == "relabel":
            themes.discard(r["theme"])
            themes.add(r["new_theme"])
        else:
            themes.add(r["theme"])
    return [(text, sorted(themes)) for text, themes in labelled.values()]


async def alerts_for(provider_id: int | None, unseen_only: bool = True) -> list[dict[str, Any]]:
    """Safeguarding alerts for a provider's clients (None: every provider), with the unredacted answer."""
    query = SafeguardingAlert.select(
        SafeguardingAlert.id,
        SafeguardingAlert.created_at,
        SafeguardingAlert.seen_at,
        SafeguardingAlert.referral.referral_id.as_alias("referral_id"),
        SafeguardingAlert.referral.provider.code.as_alias("provider"),
        SafeguardingAlert.analysis.field.as_alias("field"),
        SafeguardingAlert.analysis.response.as_alias("response_id"),
    )
    if provider_id is not None:
        query = query.where(SafeguardingAlert.referral.provider == provider_id)
    if unseen_only:
        query = query.where(SafeguardingAlert.seen_at.is_null())
    rows = await query.order_by(SafeguardingAlert.id).run()
    for row in rows:
        answer = (
            await Response.select(getattr(Response, row["field"]))
            .where(Response.id == row["response_id"])
            .first()
        )
        row["text"] = answer[row["field"]] if answer else None
    return rows


async def mark_alert_seen(alert_id: int, provider_id: int | None, actor: str) -> bool:
    query = SafeguardingAlert.update(
        {SafeguardingAlert.seen_at: dt.datetime.now(dt.UTC), SafeguardingAlert.seen_by: actor}
    ).where(SafeguardingAlert.id == alert_id)
    if provider_id is not None:
        mine = Referral.select(Referral.id).where(Referral.provider == provider_id)
        query = query.where(SafeguardingAlert.referral.is_in(mine))
    return bool(await query.returning(SafeguardingAlert.id).run())


async def add_you_said_we_did(theme: str, period: str, you_said: str, we_did: str, actor: str) -> int:
    row = YouSaidWeDid(theme=theme, period=period, you_said=you_said, we_did=we_did, recorded_by=actor)
    await row.save().run()
    return int(row.id)


async def you_said_we_did(theme: str | None = None) -> list[dict[str, Any]]:
    query = YouSaidWeDid.select().order_by(YouSaidWeDid.id, ascending=False)
    if theme:
        query = query.where(YouSaidWeDid.theme == theme)
    return await query.run()


async def decide_topic(topic_id: int, status: str, name: str, actor: str) -> bool:
    rows = (
        await EmergingTopic.update(
            {EmergingTopic.status: status, EmergingTopic.name: name, EmergingTopic.decided_by: actor}
        )
        .where(EmergingTopic.id == topic_id)
        .returning(EmergingTopic.id)
        .run()
    )
    return bool(rows)


async def run_background(stop: asyncio.Event, every_seconds: float = 30.0) -> None:
    """While the server runs: analyse newly stored answers soon after they arrive."""
    import logging

    log = logging.getLogger("vop.analysis")
    while not stop.is_set():
        try:
            counts = await process()
            if counts["answers"]:
                log.info("text analysed", extra={"answers": counts["answers"], "alerts": counts["alerts"]})
        except Exception:  # a failing batch must not stop the loop; it is retried on the next turn
            log.exception("text analysis failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
