"""Exports fed by the metrics engine: every figure is fetched first (the engine is async), then the
pure builders lay it out. Exports never query tables themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis import services as analysis
from analysis.codebook import load_codebook
from exports.csv_export import metrics_to_csv
from exports.disclosure import SUPPRESSED, suppress_count, themes_visible
from exports.moj_return import build_moj_return, required_breakdowns
from exports.provider_report import build_provider_report, required_calls
from outcomes.periods import parse_period, previous_period
from outcomes.services import compute_metrics
from settings import get_settings

REACH_BREAKDOWNS = ("age_band", "sex", "ethnicity", "disability")


async def metrics_with_splits(period: str, keys: list[str], provider: str | None = None) -> dict[str, Any]:
    """The whole area followed by each one-key split, in one result (not their cross product)."""
    whole = await compute_metrics(period, [], provider)
    for key in keys:
        split = await compute_metrics(period, [key], provider)
        whole["groups"] += split["groups"][1:]
    return whole


async def moj_return(period: str, layout_path: str | Path | None = None) -> bytes:
    """The MoJ return workbook for a period (layout from the default file or another)."""
    keys = required_breakdowns(layout_path)
    fetched: dict[tuple[str, ...], dict[str, Any]] = {(): await compute_metrics(period, [])}
    for key in keys:
        fetched[(key,)] = await compute_metrics(period, [key])
    settings = get_settings()
    return build_moj_return(
        lambda _period, by: fetched[tuple(by)],
        period,
        layout_path,
        area=settings.area_name,
        contact=settings.contact_email,
        suppression_threshold=settings.suppression_threshold,
    )


async def provider_report(provider: str, period: str) -> bytes:
    """One provider's report: 8 quarters of outcomes against all providers, response rates, reach."""
    fetched: dict[tuple[str, str | None], dict[str, Any]] = {}
    for when, who in required_calls(period, provider):
        if when == period:
            fetched[(when, who)] = await metrics_with_splits(when, list(REACH_BREAKDOWNS), who)
        else:
            fetched[(when, who)] = await compute_metrics(when, [], who)
    return build_provider_report(
        lambda when, who: fetched[(when, who)],
        provider,
        period,
        suppression_threshold=get_settings().suppression_threshold,
    )


async def metrics_csv(period: str, by: list[str], provider: str | None = None) -> str:
    """Any metrics table in tidy form, with disclosure control applied."""
    result = await compute_metrics(period, by, provider)
    return metrics_to_csv(result, suppress=True, threshold=get_settings().suppression_threshold)


async def vrg_themes(period: str, examples_per_theme: int = 5) -> dict[str, Any]:
    """Themes for the VRG: counts under disclosure control, trend, and redacted examples only for themes
    with at least 5 distinct victims in the view."""
    current = parse_period(period)
    before = previous_period(current)
    now = await analysis.theme_counts(current.start, current.end)
    then = await analysis.theme_counts(before.start, before.end)
    threshold = get_settings().suppression_threshold
    visible = set(themes_visible({t: c["victims"] for t, c in now.items()}))
    codebook = load_codebook()
    themes = []
    for theme in codebook.themes:
        count = now.get(theme.code, {"answers": 0, "victims": 0})
        previous = then.get(theme.code, {"answers": 0})["answers"]
        shown, shown_before = suppress_count(count["answers"], threshold), suppress_count(previous, threshold)
        if SUPPRESSED in (shown, shown_before):
            trend = SUPPRESSED
        elif previous == 0:
            trend = "new" if count["answers"] else "same"
        else:
            trend = "up" if count["answers"] > previous else "down" if count["answers"] < previous else "same"
        texts = []
        if theme.code in visible:
            texts = [
                e["text"]
                for e in await analysis.examples(theme.code, current.start, current.end, examples_per_theme)
            ]
        themes.append(
            {
                "code": theme.code,
                "name": theme.name,
                "answers": shown,
                "victims": suppress_count(count["victims"], threshold),
                "previous_answers": shown_before,
                "trend": trend,
                "examples": texts,
            }
        )
    return {"period": current.code, "previous_period": before.code, "themes": themes}
