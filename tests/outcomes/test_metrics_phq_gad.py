"""PHQ-9 / GAD-7 figures (brief.md, as in NHS Talking Therapies), hand-worked, through `compute_metrics`.

Items live in `Response.extra_answers` as JSON (`{"phq9_1": 2, ...}`). Every test runs on whatever
VOP_DATABASE_URL names, so the same expectations pin SQLite and PostgreSQL to the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from outcomes.metrics import PHQ_GAD_METRICS
from outcomes.scoring import GAD7_KEYS, PHQ9_KEYS, talking_therapies_outcome
from outcomes.services import compute_metrics
from surveys.instruments import load_instrument
from surveys.responses import answer_columns

pytestmark = pytest.mark.usefixtures("db")


def items(total: int, count: int) -> list[int]:
    """`count` item answers 0..3 adding up to `total` (3s first)."""
    assert 0 <= total <= 3 * count
    return [min(3, max(0, total - 3 * i)) for i in range(count)]


def scales(phq: int | list[Any], gad: int | list[Any], **more: Any) -> dict[str, str]:
    """The `extra_answers` of a response with these PHQ-9 / GAD-7 totals (or item lists)."""
    phq_items = items(phq, 9) if isinstance(phq, int) else phq
    gad_items = items(gad, 7) if isinstance(gad, int) else gad
    answers = {**dict(zip(PHQ9_KEYS, phq_items, strict=True)), **dict(zip(GAD7_KEYS, gad_items, strict=True))}
    return {"extra_answers": json.dumps({**answers, **more}, sort_keys=True)}


async def tt(period: str = "2025-26", **kw: Any) -> dict[str, Any]:
    """The PHQ/GAD figures of the whole area: counts as numbers, rates as (numerator, denominator)."""
    m = (await compute_metrics(period, **kw))["groups"][0]["metrics"]
    return {
        name: (v["numerator"], v["denominator"]) if isinstance(v, dict) else v
        for name in (f"{k}.phq_gad" for k in PHQ_GAD_METRICS)
        for v in [m[name]]
    }


async def pair(rows: Any, before: tuple[int, int], after: tuple[int, int], provider: str = "VS") -> None:
    e = await rows.episode(provider)
    await rows.response(e, "baseline", **scales(*before))
    await rows.response(e, "exit", **scales(*after))


# (PHQ-9, GAD-7) at baseline and exit, and what each pair is, worked by hand.
CASES = {
    # case by PHQ-9 = 10 exactly; PHQ-9 down 6 exactly: reliable improvement, recovery, reliable recovery
    "A": ((10, 0), (4, 0)),
    # one below both thresholds at baseline: reliable improvement (both down), but no recovery to make
    "B": ((9, 7), (3, 3)),
    # case by GAD-7 = 8 exactly; 7 at exit: recovered, but down 1 only (not reliable)
    "C": ((0, 8), (0, 7)),
    # down 5 and 3 (each one short), still a case at exit (PHQ-9 = 10)
    "D": ((15, 12), (10, 9)),
    # PHQ-9 down 6 but GAD-7 up 4: a reliable deterioration, not an improvement; still a case
    "E": ((20, 5), (14, 9)),
    # PHQ-9 down 7: reliable improvement; below both at exit: reliable recovery
    "F": ((12, 10), (5, 7)),
    # never a case; PHQ-9 up 6: reliable deterioration
    "G": ((2, 2), (8, 2)),
}


async def test_caseness_improvement_and_recovery_at_the_thresholds(rows) -> None:
    for before, after in CASES.values():
        await pair(rows, before, after)
    got = await tt()
    assert got == {
        "paired_n.phq_gad": 7,
        "caseness_baseline.phq_gad": (5, 7),  # A C D E F
        "caseness_exit.phq_gad": (2, 7),  # D E
        "reliable_improvement.phq_gad": (3, 7),  # A B F
        "reliable_deterioration.phq_gad": (2, 7),  # E G
        "recovery.phq_gad": (3, 5),  # A C F, over the cases at baseline
        "reliable_recovery.phq_gad": (2, 5),  # A F
    }
    # The same rules as the pure scoring function, pair by pair.
    outs = [talking_therapies_outcome(*b, *x) for b, x in CASES.values()]
    assert got["reliable_recovery.phq_gad"][0] == sum(o.reliable_recovery for o in outs)
    assert got["reliable_improvement.phq_gad"][0] == sum(o.reliable_improvement for o in outs)
    m = (await compute_metrics("2025-26"))["groups"][0]["metrics"]
    assert m["recovery.phq_gad"]["pct"] == pytest.approx(60.0)
    assert m["recovery.phq_gad"]["ci95"][0] < 60.0 < m["recovery.phq_gad"]["ci95"][1]


async def test_one_point_either_side_of_each_threshold(rows) -> None:
    await pair(rows, (9, 0), (9, 0))  # PHQ-9 9: not a case
    await pair(rows, (0, 7), (0, 7))  # GAD-7 7: not a case
    await pair(rows, (27, 21), (22, 18))  # down 5 and 3: no reliable change
    await pair(rows, (27, 21), (21, 21))  # PHQ-9 down 6: reliable
    await pair(rows, (20, 20), (20, 16))  # GAD-7 down 4: reliable
    await pair(rows, (3, 3), (8, 6))  # up 5 and 3: no deterioration
    got = await tt()
    assert got["paired_n.phq_gad"] == 6
    assert got["caseness_baseline.phq_gad"] == (3, 6)
    assert got["caseness_exit.phq_gad"] == (3, 6)
    assert got["reliable_improvement.phq_gad"] == (2, 6)
    assert got["reliable_deterioration.phq_gad"] == (0, 6)
    assert got["recovery.phq_gad"] == (0, 3) and got["reliable_recovery.phq_gad"] == (0, 3)


async def test_missing_or_malformed_items_leave_the_episode_unpaired(rows) -> None:
    full = items(12, 9)
    gad = items(9, 7)
    broken: list[dict[str, str] | None] = [
        scales([*full[:8], None], gad),  # a skipped item (null)
        {"extra_answers": json.dumps({k: 1 for k in PHQ9_KEYS + GAD7_KEYS[:6]})},  # a GAD-7 item absent
        scales(full, [*gad[:6], "2"]),  # text, not a number
        scales(full, [*gad[:6], True]),  # a boolean is no score
        scales(full, [*gad[:6], 2.0]),  # nor a decimal
        scales([4, *full[1:]], gad),  # out of range
        scales([-1, *full[1:]], gad),
        scales(full, [12, *[0] * 6]),
        {"extra_answers": json.dumps({"cjs_involved": "yes"})},  # other answers only
        {"extra_answers": "[1, 2, 3]"},  # not an object
        None,  # no extra answers at all
    ]
    for bad in broken:
        for wave in ("baseline", "exit"):
            e = await rows.episode()
            good = scales(12, 9)
            await rows.response(e, "baseline", **((bad or {}) if wave == "baseline" else good))
            await rows.response(e, "exit", **((bad or {}) if wave == "exit" else good))
    got = await tt()
    assert got["paired_n.phq_gad"] == 0
    assert got["recovery.phq_gad"] == (0, 0)
    m = (await compute_metrics("2025-26"))["groups"][0]["metrics"]
    assert m["exit_responses"] == 2 * len(broken)
    assert m["caseness_baseline.phq_gad"] == {"numerator": 0, "denominator": 0, "pct": None, "ci95": None}


async def test_no_baseline_or_partial_responses_do_not_pair(rows) -> None:
    alone = await rows.episode()
    await rows.response(alone, "exit", **scales(5, 5))
    partial = await rows.episode()
    await rows.response(partial, "baseline", None, **scales(15, 15))  # never completed
    await rows.response(partial, "exit", **scales(5, 5))
    follow = await rows.episode()
    await rows.response(follow, "follow_up", **scales(15, 15))  # follow-ups feed no figure
    await rows.response(follow, "exit", **scales(5, 5))
    assert (await tt())["paired_n.phq_gad"] == 0


async def test_scores_come_from_the_chosen_responses_only(rows) -> None:
    e = await rows.episode()
    at = datetime(2025, 6, 1, tzinfo=UTC)
    await rows.response(e, "baseline", at.replace(hour=9), **scales(20, 15))  # earliest: the baseline
    await rows.response(e, "baseline", at.replace(hour=10), **scales(2, 2))
    await rows.response(e, "exit", at.replace(hour=11), **scales(3, 3))
    await rows.response(e, "exit", at.replace(hour=12))  # latest exit, without the scales: no fall-back
    assert (await tt())["paired_n.phq_gad"] == 0
    e2 = await rows.episode()
    await rows.response(e2, "baseline", at.replace(hour=9), **scales(20, 15))
    await rows.response(e2, "exit", at.replace(hour=11), **scales(20, 15))
    await rows.response(e2, "exit", at.replace(hour=12), **scales(3, 3))  # the latest counts
    assert await tt() == {
        "paired_n.phq_gad": 1,
        "caseness_baseline.phq_gad": (1, 1),
        "caseness_exit.phq_gad": (0, 1),
        "reliable_improvement.phq_gad": (1, 1),
        "reliable_deterioration.phq_gad": (0, 1),
        "recovery.phq_gad": (1, 1),
        "reliable_recovery.phq_gad": (1, 1),
    }


async def test_only_episodes_closed_in_the_period_count(rows) -> None:
    for end in (date(2025, 6, 1), date(2025, 3, 31), None):  # in the year, before it, still open
        e = await rows.episode(start=date(2025, 1, 2), end=end)
        await rows.response(e, "baseline", **scales(15, 10))
        await rows.response(e, "exit", **scales(4, 4))
    got = await tt()
    assert got["paired_n.phq_gad"] == 1 and got["reliable_recovery.phq_gad"] == (1, 1)
    assert (await tt("2024-25"))["paired_n.phq_gad"] == 1


async def test_groups_add_up_to_the_whole_area(rows) -> None:
    await pair(rows, (10, 0), (4, 0), provider="VS")
    await pair(rows, (12, 10), (5, 7), provider="ROSA")
    await pair(rows, (2, 2), (8, 2), provider="ROSA")
    out = await compute_metrics("2025-26", by=["provider"])
    by = {g["by"]["provider"]: g["metrics"] for g in out["groups"][1:]}
    assert by["VS"]["paired_n.phq_gad"] == 1 and by["ROSA"]["paired_n.phq_gad"] == 2
    assert by["ROSA"]["reliable_recovery.phq_gad"]["numerator"] == 1
    assert by["ROSA"]["reliable_deterioration.phq_gad"]["numerator"] == 1
    whole = out["groups"][0]["metrics"]
    assert whole["paired_n.phq_gad"] == 3 and whole["reliable_recovery.phq_gad"]["numerator"] == 2
    only = await tt(provider="ROSA")
    assert only["paired_n.phq_gad"] == 2 and only["caseness_baseline.phq_gad"] == (1, 2)


async def test_answers_stored_by_the_survey_are_read(rows) -> None:
    """Through the surveys' own mapping (a skipped item arrives as None and is stored as null)."""
    e = await rows.episode()
    before = {
        **dict(zip(PHQ9_KEYS, items(14, 9), strict=True)),
        **dict(zip(GAD7_KEYS, items(9, 7), strict=True)),
    }
    after = {
        **dict(zip(PHQ9_KEYS, items(6, 9), strict=True)),
        **dict(zip(GAD7_KEYS, items(3, 7), strict=True)),
    }
    cols_b = answer_columns({"cope": 2, "cjs_involved": "yes", **before})
    cols_x = answer_columns({"cope": 4, "helped_cope": "a_lot", **after})
    await rows.response(e, "baseline", **cols_b)
    await rows.response(e, "exit", **cols_x)
    e2 = await rows.episode()
    await rows.response(e2, "baseline", **cols_b)
    await rows.response(e2, "exit", **answer_columns({**after, "gad7_3": None}))
    got = await tt()
    assert got["paired_n.phq_gad"] == 1 and got["reliable_recovery.phq_gad"] == (1, 1)


def test_item_keys_are_the_instruments_question_ids() -> None:
    assert [q.id for q in load_instrument("phq9-1").questions] == list(PHQ9_KEYS)
    assert [q.id for q in load_instrument("gad7-1").questions] == list(GAD7_KEYS)


async def test_demo_answers_the_scales_for_the_services_that_ask_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no VOP_SCALES_BY_SERVICE, the demo's sexual violence services ask PHQ-9 and GAD-7."""
    import settings
    from surveys.demo import DemoPlan, load_demo

    unset = dataclasses.replace(settings.get_settings(), scales_by_service={})
    monkeypatch.setattr(settings, "get_settings", lambda: unset)
    await load_demo(DemoPlan(scale=0.2))
    out = await compute_metrics("2025-26", by=["service"])
    by = {g["by"]["service"]: g["metrics"] for g in out["groups"][1:]}
    assert by["sav"]["paired_n.phq_gad"] > 0
    assert by["general"]["paired_n.phq_gad"] == 0 and by["cse"]["paired_n.phq_gad"] == 0
    assert 0 < by["sav"]["recovery.phq_gad"]["denominator"] <= by["sav"]["paired_n.phq_gad"]
