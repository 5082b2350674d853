"""Hand-worked fixtures, one per rule of shared/domain/metrics.md, through `compute_metrics`.

Every test runs on whatever VOP_DATABASE_URL names (SQLite by default, PostgreSQL in CI's second run),
so the same expectations pin both engines to the same numbers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from outcomes.metrics import AREAS, BREAKDOWNS, STATUSES, metric_names
from outcomes.services import compute_metrics
from surveys.tables import Referral, Response

pytestmark = pytest.mark.usefixtures("db")

SW3 = {f"swemwbs_{i}": 3 for i in range(1, 8)}  # raw 21 -> 19.25
SW4 = {f"swemwbs_{i}": 4 for i in range(1, 8)}  # raw 28 -> 25.03


async def whole(period: str = "2025-26", **kw: Any) -> dict[str, Any]:
    out = await compute_metrics(period, **kw)
    return out["groups"][0]["metrics"]


def at(*args: int, tz: timezone = UTC) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


async def test_empty_database_gives_zeros_and_null_rates() -> None:
    out = await compute_metrics("2025-26", by=["provider"])
    assert out["period"] == {"code": "2025-26", "start": "2025-04-01", "end": "2026-03-31"}
    assert len(out["groups"]) == 1 and out["groups"][0]["by"] == {}
    m = out["groups"][0]["metrics"]
    assert list(m) == metric_names()
    assert m["referrals_received"] == 0 and m["victims_supported"] == 0
    assert m["exit_response_rate"] == {"numerator": 0, "denominator": 0, "pct": None, "ci95": None}
    assert m["mean_change.cope"] is None and m["mean_change.swemwbs"] is None
    assert m["satisfied_pct_by_rights.10-12"]["pct"] is None


async def test_referrals_received_counts_both_end_days_and_statuses(rows) -> None:
    await rows.referral(referral_date=date(2025, 4, 1), status="declined")
    await rows.referral(referral_date=date(2026, 3, 31), status="supported")
    await rows.referral(referral_date=date(2026, 3, 31), status="supported")
    await rows.referral(referral_date=date(2025, 3, 31))  # the day before
    await rows.referral(referral_date=date(2026, 4, 1))  # the day after
    m = await whole()
    assert m["referrals_received"] == 3
    assert {s: m[f"referrals_by_status.{s}"] for s in STATUSES} == {
        "referred": 0,
        "contacted": 0,
        "declined": 1,
        "uncontactable": 0,
        "out_of_scope": 0,
        "supported": 2,
        "closed": 0,
    }


async def test_victims_are_distinct_people_across_providers(rows) -> None:
    await rows.referral("VS", person_key="alice")
    await rows.referral("ROSA", person_key="alice")
    await rows.referral("VS", person_key="alice")
    await rows.referral("VS", person_key="bob")
    await rows.referral("VS", person_key="carol", referral_date=date(2024, 5, 1))  # other year
    m = await whole()
    assert m["referrals_received"] == 4
    assert m["victims_referred"] == 2
    out = await compute_metrics("2025-26", by=["provider"])
    by = {g["by"]["provider"]: g["metrics"] for g in out["groups"][1:]}
    # A victim counts once in every group where they have a referral: groups add up to more.
    assert by["VS"]["victims_referred"] == 2 and by["ROSA"]["victims_referred"] == 1


async def test_victims_supported_open_across_period_edges(rows) -> None:
    q = "2025-26-Q2"  # 2025-07-01 .. 2025-09-30
    await rows.episode(person_key="before_open", start=date(2024, 1, 1), end=None, status="supported")
    await rows.episode(person_key="ends_first_day", start=date(2025, 6, 1), end=date(2025, 7, 1))
    await rows.episode(person_key="starts_last_day", start=date(2025, 9, 30), end=date(2025, 12, 1))
    await rows.episode(person_key="spans", start=date(2025, 6, 1), end=date(2025, 10, 1))
    await rows.episode(person_key="ended_before", start=date(2025, 5, 1), end=date(2025, 6, 30))
    await rows.episode(person_key="starts_after", start=date(2025, 10, 1), end=None)
    await rows.referral(person_key="never_started", status="contacted")
    # Two episodes of one person open in the period: one victim.
    await rows.episode("ROSA", person_key="spans", start=date(2025, 8, 1), end=None)
    m = await whole(q)
    assert m["victims_supported"] == 4
    assert m["episodes_closed"] == 1  # ends_first_day only


async def test_episodes_closed_needs_support_start(rows) -> None:
    await rows.episode(start=date(2025, 5, 1), end=date(2025, 6, 1))
    await rows.referral(support_end=date(2025, 6, 1), status="closed")  # no support_start: no episode
    await rows.episode(start=date(2025, 5, 1), end=date(2026, 4, 1))  # closes next year
    m = await whole()
    assert m["episodes_closed"] == 1


async def test_q4_spans_the_calendar_year(rows) -> None:
    await rows.referral(referral_date=date(2026, 2, 1))
    await rows.episode(start=date(2025, 12, 1), end=date(2026, 1, 15))
    q4 = await whole("2025-26-Q4")
    assert q4["referrals_received"] == 1 and q4["episodes_closed"] == 1
    assert (await whole("2025-26"))["referrals_received"] == 2  # the episode's referral too
    assert (await whole("2026-27"))["referrals_received"] == 0
    assert (await whole("2025-26-Q3"))["episodes_closed"] == 0


async def test_earliest_baseline_and_latest_exit_by_instant(rows) -> None:
    e = await rows.episode()
    await rows.response(e, "baseline", at(2025, 5, 3, 9), cope=1)
    await rows.response(e, "baseline", at(2025, 5, 2, 9), cope=2)  # earliest: this one
    await rows.response(e, "baseline", None, cope=5)  # partial, even earlier in id terms
    await rows.response(e, "exit", at(2025, 6, 1, 12), cope=4, helped_cope="a_lot")  # latest instant
    # Later local time, earlier instant: 13:30+02:00 is 11:30 UTC.
    await rows.response(
        e, "exit", at(2025, 6, 1, 13, 30, tz=timezone(timedelta(hours=2))), cope=1, helped_cope="no"
    )
    await rows.response(e, "exit", None, cope=5, helped_cope="no")  # partial, never counts
    await rows.response(e, "follow_up", at(2025, 9, 1, 12), cope=5)  # feeds nothing
    m = await whole()
    assert m["exit_responses"] == 1
    assert m["paired_n.cope"] == 1 and m["mean_change.cope"] == 2.0  # 4 - 2
    assert m["improved.cope"] == 1 and m["helped.cope"] == 1


async def test_offsets_stored_as_text_compare_as_instants(rows) -> None:
    """Timestamps written by other tools keep their offset in SQLite's text; they still order by instant."""
    e = await rows.episode()
    a = await rows.response(e, "exit", cope=3)
    b = await rows.response(e, "exit", cope=5)
    await rows.response(e, "baseline", cope=1)
    table = Response._meta.tablename
    # 2025-06-01 12:00 UTC against 2025-06-01 13:00+02:00 (= 11:00 UTC): `a` is the later instant.
    await Response.raw(f"UPDATE {table} SET completed_at = '2025-06-01T12:00:00+00:00' WHERE id = {a.id}")
    await Response.raw(f"UPDATE {table} SET completed_at = '2025-06-01T13:00:00+02:00' WHERE id = {b.id}")
    m = await whole()
    assert m["mean_change.cope"] == 2.0


async def test_exact_tie_takes_the_highest_id_exit_and_lowest_id_baseline(rows) -> None:
    e = await rows.episode()
    same = at(2025, 6, 1, 12)
    await rows.response(e, "baseline", same, cope=2)
    await rows.response(e, "baseline", same, cope=1)
    await rows.response(e, "exit", same, cope=3)
    await rows.response(e, "exit", same, cope=5)
    m = await whole()
    assert m["mean_change.cope"] == 3.0  # 5 - 2


async def test_na_or_blank_in_the_chosen_response_is_missing_without_fallback(rows) -> None:
    e = await rows.episode()
    await rows.response(e, "baseline", at(2025, 5, 2), cope=None, safety=2)  # cope blank / na
    await rows.response(e, "baseline", at(2025, 5, 3), cope=3, safety=3)  # later: never a fall-back
    await rows.response(e, "exit", at(2025, 6, 1), cope=4, safety=4, helped_cope="a_lot", helped_safety="no")
    await rows.response(e, "exit", at(2025, 6, 2), cope=5, safety=None, helped_cope="na", helped_safety=None)
    m = await whole()
    assert (m["paired_n.cope"] == 1 and m["mean_change.cope"] is None) or m["paired_n.cope"] == 0
    assert m["paired_n.cope"] == 0  # baseline cope missing
    assert m["paired_n.safety"] == 0  # exit safety missing
    assert m["helped_n.cope"] == 0 and m["helped_n.safety"] == 0  # na and blank are not answers
    assert m["exit_responses"] == 1


async def test_exit_counts_whenever_completed(rows) -> None:
    early = await rows.episode(end=date(2025, 9, 1))
    await rows.response(early, "exit", at(2025, 6, 1))  # before support_end
    late = await rows.episode(end=date(2026, 3, 31))
    await rows.response(late, "exit", at(2027, 1, 1))  # after the period
    m = await whole()
    assert m["episodes_closed"] == 2 and m["exit_responses"] == 2
    assert m["exit_response_rate"]["pct"] == 100.0


async def test_outcome_areas_helped_and_change(rows) -> None:
    states = [(1, 3, "a_lot"), (2, 3, "a_little"), (4, 2, "no"), (3, 3, "na"), (None, 5, None)]
    for base, exit_, helped in states:
        e = await rows.episode()
        await rows.response(e, "baseline", at(2025, 5, 2), safety=base)
        await rows.response(e, "exit", at(2025, 6, 1), safety=exit_, helped_safety=helped)
    unclosed = await rows.episode(end=None, status="supported")  # not closed: not in exit_responses
    await rows.response(unclosed, "baseline", at(2025, 5, 2), safety=1)
    await rows.response(unclosed, "exit", at(2025, 6, 1), safety=5, helped_safety="a_lot")
    m = await whole()
    assert m["exit_responses"] == 5
    assert (m["helped_n.safety"], m["helped.safety"]) == (3, 2)
    assert m["helped_pct.safety"]["pct"] == pytest.approx(200 / 3)
    assert m["paired_n.safety"] == 4
    assert (m["improved.safety"], m["deteriorated.safety"], m["no_change.safety"]) == (2, 1, 1)
    assert m["improved_pct.safety"]["pct"] == 50.0
    assert m["mean_change.safety"] == pytest.approx((2 + 1 - 2 + 0) / 4)
    assert m["paired_n.cope"] == 0 and m["mean_change.cope"] is None


async def test_helped_cope_and_recover_either_counts(rows) -> None:
    answers = [("a_lot", "no"), ("no", "a_little"), ("no", "no"), ("na", None), (None, "no"), ("na", "na")]
    for cope, recover in answers:
        e = await rows.episode()
        await rows.response(e, "exit", helped_cope=cope, helped_recover=recover)
    m = await whole()
    assert m["helped_cope_and_recover"] == 2
    assert m["helped_cope_and_recover_pct"]["denominator"] == 4
    assert m["helped_cope_and_recover_pct"]["pct"] == 50.0


async def test_satisfaction_and_rights(rows) -> None:
    cases = [
        ("completely_satisfied", 0b111),  # rights 1,2,3 -> band 0-3
        ("fairly_satisfied", 0),  # none -> band 0-3
        ("neither", 0b1111),  # 4 rights -> band 4-6
        ("very_dissatisfied", None),  # rights not asked: no band
        (None, 0b111111111111),  # all 12, no satisfaction answer -> band 10-12
        ("very_satisfied", 0b111111111111),
    ]
    for sat, mask in cases:
        e = await rows.episode()
        await rows.response(e, "exit", satisfaction=sat, rights_mask=mask)
    m = await whole()
    assert (m["answered"], m["satisfied"]) == (5, 3)
    assert m["satisfied_pct"]["pct"] == 60.0
    assert m["rights_received.1"] == {**m["rights_received.1"], "numerator": 4, "denominator": 5}
    assert m["rights_received.4"]["numerator"] == 3
    assert m["rights_received.12"]["numerator"] == 2
    b = {
        k: (m[f"satisfied_pct_by_rights.{k}"]["numerator"], m[f"satisfied_pct_by_rights.{k}"]["denominator"])
        for k in ("0-3", "4-6", "7-9", "10-12")
    }
    assert b == {"0-3": (2, 2), "4-6": (0, 1), "7-9": (0, 0), "10-12": (1, 1)}
    assert m["satisfied_pct_by_rights.7-9"]["pct"] is None


async def test_swemwbs_pairs_means_and_reliable_change(rows) -> None:
    e1 = await rows.episode()  # raw 21 -> 28: 19.25 -> 25.03, +5.78: reliable improvement
    await rows.response(e1, "baseline", **SW3)
    await rows.response(e1, "exit", **SW4)
    e2 = await rows.episode()  # raw 22 -> 19: 19.98 -> 17.98, -2.00: no reliable change
    await rows.response(e2, "baseline", **{**SW3, "swemwbs_1": 4})
    await rows.response(e2, "exit", **{**SW3, "swemwbs_1": 1})
    e3 = await rows.episode()  # raw 25 -> 29: 22.35 -> 26.02, +3.67: reliable improvement
    await rows.response(e3, "baseline", **{**SW4, "swemwbs_1": 1})
    await rows.response(e3, "exit", **{**SW4, "swemwbs_1": 5})
    e4 = await rows.episode()  # a missing baseline item: no score, so not paired
    await rows.response(e4, "baseline", **{**SW3, "swemwbs_7": None})
    await rows.response(e4, "exit", **SW4)
    e5 = await rows.episode()  # raw 28 -> 21: 25.03 -> 19.25: reliable deterioration
    await rows.response(e5, "baseline", **SW4)
    await rows.response(e5, "exit", **SW3)
    e6 = await rows.episode()  # an item out of range (0) at exit: no score
    await rows.response(e6, "baseline", **SW3)
    await rows.response(e6, "exit", **{**SW4, "swemwbs_2": 0})
    m = await whole()
    assert m["paired_n.swemwbs"] == 4
    assert m["mean_baseline.swemwbs"] == pytest.approx((19.25 + 19.98 + 22.35 + 25.03) / 4, abs=1e-12)
    assert m["mean_exit.swemwbs"] == pytest.approx((25.03 + 17.98 + 26.02 + 19.25) / 4, abs=1e-12)
    assert m["mean_change.swemwbs"] == pytest.approx((5.78 - 2.00 + 3.67 - 5.78) / 4, abs=1e-12)
    assert (m["reliable_improvement.swemwbs"], m["reliable_deterioration.swemwbs"]) == (2, 1)


async def test_swemwbs_reliable_change_threshold(rows) -> None:
    # The table has no two scores exactly 3.00 apart; the nearest either side are 3.10 and 2.95.
    up = await rows.episode()  # raw 17 -> 22: 16.88 -> 19.98 = +3.10
    await rows.response(up, "baseline", **{**SW3, "swemwbs_1": 1, "swemwbs_2": 1, "swemwbs_3": 3})
    await rows.response(up, "exit", **{**SW3, "swemwbs_1": 4})
    flat = await rows.episode()  # raw 24 -> 20: 21.54 -> 18.59 = -2.95
    await rows.response(flat, "baseline", **{**SW3, "swemwbs_1": 5, "swemwbs_2": 4})
    await rows.response(flat, "exit", **{**SW3, "swemwbs_1": 2})
    m = await whole()
    assert (m["reliable_improvement.swemwbs"], m["reliable_deterioration.swemwbs"]) == (1, 0)
    assert m["mean_change.swemwbs"] == pytest.approx((3.10 - 2.95) / 2, abs=1e-12)


@pytest.mark.parametrize("attr", list(BREAKDOWNS))
async def test_every_breakdown_has_a_group_per_stored_value(rows, attr: str) -> None:
    await rows.org("ROSA", service="sav")
    await rows.referral(
        "VS",
        crime_type="robbery",
        age_band="18-24",
        sex="female",
        ethnicity="white",
        disability="no",
        source="police",
        domestic_abuse=True,
        hate_crime=False,
        repeat_victim=True,
    )
    # Stored but in another year: its values still make (all-zero) groups.
    await rows.referral(
        "ROSA",
        referral_date=date(2023, 5, 1),
        crime_type="rape",
        age_band="65+",
        sex="male",
        ethnicity="asian",
        disability="yes",
        source="self",
        domestic_abuse=False,
        hate_crime=True,
        repeat_victim=False,
    )
    out = await compute_metrics("2025-26", by=[attr])
    assert out["groups"][0]["by"] == {}
    groups = out["groups"][1:]
    assert len(groups) == 2
    received = sorted(g["metrics"]["referrals_received"] for g in groups)
    assert received == [0, 1]
    values = {g["by"][attr] for g in groups}
    expected = {
        "provider": {"VS", "ROSA"},
        "service": {"general", "sav"},
        "crime_group": {"robbery", "rape"},
        "age_band": {"18-24", "65+"},
        "sex": {"female", "male"},
        "ethnicity": {"white", "asian"},
        "disability": {"no", "yes"},
        "source": {"police", "self"},
        "domestic_abuse": {"true", "false"},
        "hate_crime": {"true", "false"},
        "repeat_victim": {"true", "false"},
    }[attr]
    assert values == expected
    zero = next(g for g in groups if g["metrics"]["referrals_received"] == 0)["metrics"]
    assert zero["exit_response_rate"]["pct"] is None and zero["victims_referred"] == 0


async def test_two_attribute_breakdown_lists_present_combinations_sorted(rows) -> None:
    await rows.referral("VS", crime_type="robbery")
    await rows.referral("VS", crime_type="burglary_residential")
    await rows.referral("ROSA", crime_type="rape")
    await rows.referral("ROSA", crime_type="rape")
    out = await compute_metrics("2025-26", by=["provider", "crime_group"])
    assert [g["by"] for g in out["groups"]] == [
        {},
        {"provider": "ROSA", "crime_group": "rape"},
        {"provider": "VS", "crime_group": "burglary_residential"},
        {"provider": "VS", "crime_group": "robbery"},
    ]
    assert [g["metrics"]["referrals_received"] for g in out["groups"]] == [4, 2, 1, 1]


async def test_provider_filter_restricts_everything(rows) -> None:
    await rows.referral("VS", person_key="alice", crime_type="robbery")
    await rows.referral("ROSA", person_key="alice", crime_type="rape")
    e = await rows.episode("ROSA", person_key="bob")
    await rows.response(e, "exit", helped_cope="a_lot")
    out = await compute_metrics("2025-26", by=["crime_group"], provider="ROSA")
    m = out["groups"][0]["metrics"]
    assert (m["referrals_received"], m["victims_referred"], m["exit_responses"]) == (2, 2, 1)
    assert [g["by"] for g in out["groups"][1:]] == [
        {"crime_group": "burglary_residential"},
        {"crime_group": "rape"},
    ]
    vs = await whole(provider="VS")
    assert (vs["referrals_received"], vs["exit_responses"]) == (1, 0)


async def test_bad_arguments_are_value_errors(rows) -> None:
    await rows.referral("VS")
    with pytest.raises(ValueError, match="unknown provider"):
        await compute_metrics("2025-26", provider="NOPE")
    with pytest.raises(ValueError, match="unknown breakdown"):
        await compute_metrics("2025-26", by=["colour"])
    with pytest.raises(ValueError, match="repeated"):
        await compute_metrics("2025-26", by=["sex", "sex"])
    with pytest.raises(ValueError, match="unknown period"):
        await compute_metrics("2025")


def test_metric_names_cover_every_area() -> None:
    names = metric_names()
    assert len(names) == len(set(names))
    for a in AREAS:
        assert f"mean_change.{a}" in names and f"helped_pct.{a}" in names


async def test_partial_exit_alone_is_no_exit_response(rows) -> None:
    e = await rows.episode()
    await rows.response(e, "baseline", cope=2)
    await rows.response(e, "exit", None, cope=4, helped_cope="a_lot", satisfaction="very_satisfied")
    m = await whole()
    assert (m["episodes_closed"], m["exit_responses"]) == (1, 0)
    assert m["exit_response_rate"]["pct"] == 0.0 and m["exit_response_rate"]["ci95"][0] == 0.0
    assert m["helped_n.cope"] == 0 and m["answered"] == 0 and m["paired_n.cope"] == 0


async def test_service_of_a_commissioner_is_a_null_group_sorted_last(rows) -> None:
    await rows.org("OPCC", service=None, kind="commissioner")
    await rows.referral("OPCC")
    await rows.referral("VS")
    out = await compute_metrics("2025-26", by=["service"])
    assert [g["by"] for g in out["groups"]] == [{}, {"service": "general"}, {"service": None}]
    assert out["groups"][0]["metrics"]["referrals_received"] == 2


async def test_whole_area_counts_do_not_depend_on_the_breakdown(rows) -> None:
    for provider, person in (("VS", "a"), ("ROSA", "a"), ("VS", "b")):
        e = await rows.episode(provider, person_key=person)
        await rows.response(e, "exit", helped_cope="a_lot", rights_mask=5)
    plain = await whole()
    for attr in ("provider", "sex", "domestic_abuse"):
        assert (await compute_metrics("2025-26", by=[attr]))["groups"][0]["metrics"] == plain
    assert plain["victims_supported"] == 2 and plain["exit_responses"] == 3


async def test_runs_inside_a_callers_transaction(rows) -> None:
    await rows.referral()
    engine = Referral._meta.db
    async with engine.transaction():
        assert await Referral.count() == 1  # a query first: the snapshot setting must not come after it
        out = await compute_metrics("2025-26")
    assert out["groups"][0]["metrics"]["referrals_received"] == 1
