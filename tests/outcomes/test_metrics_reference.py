"""Random data against an independent, row-by-row Python reading of metrics.md.

The SQL engine must agree exactly with this reference (counts) and to 1e-9 (means, percentages) for
the whole area, every single-attribute breakdown and the provider filter, on either engine.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from outcomes.metrics import AREAS, BREAKDOWNS, RIGHTS_BANDS, SATISFIED, STATUSES
from outcomes.periods import parse_period
from outcomes.scoring import (
    GAD7_KEYS,
    PHQ9_KEYS,
    SWEMWBS_METRIC,
    gad7_score,
    phq9_score,
    rate,
    swemwbs_raw,
    talking_therapies_outcome,
)
from outcomes.services import compute_metrics
from surveys.tables import Organisation, Referral, Response

pytestmark = pytest.mark.usefixtures("db")

PROVIDERS = {"VS": "general", "ROSA": "sav", "BAR": "cse"}
SATISFACTION = [*SATISFIED, "neither", "fairly_dissatisfied", "very_dissatisfied", "completely_dissatisfied"]


def _day(rng: random.Random, lo: date, hi: date) -> date:
    return lo + timedelta(days=rng.randint(0, (hi - lo).days))


def make_data(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    people = [f"person{i}" for i in range(70)]
    refs: list[dict[str, Any]] = []
    for i in range(160):
        ref = {
            "provider": rng.choice(list(PROVIDERS)),
            "referral_id": f"R{i}",
            "person_key": rng.choice(people),
            "referral_date": _day(rng, date(2024, 12, 1), date(2026, 5, 1)),
            "source": rng.choice(["police", "self", "agency"]),
            "crime_type": rng.choice(["robbery", "rape", "fraud_cyber"]),
            "domestic_abuse": rng.random() < 0.3,
            "hate_crime": rng.random() < 0.2,
            "repeat_victim": rng.random() < 0.4,
            "age_band": rng.choice(["18-24", "65+", "unknown"]),
            "sex": rng.choice(["female", "male"]),
            "ethnicity": rng.choice(["white", "asian", "unknown"]),
            "disability": rng.choice(["yes", "no"]),
            "status": rng.choice(STATUSES),
            "support_start": None,
            "support_end": None,
        }
        if rng.random() < 0.7:
            ref["support_start"] = _day(rng, date(2024, 12, 1), date(2026, 2, 1))
            if rng.random() < 0.8:
                ref["support_end"] = ref["support_start"] + timedelta(days=rng.randint(0, 200))
        elif rng.random() < 0.1:
            ref["support_end"] = _day(rng, date(2025, 1, 1), date(2026, 2, 1))  # no episode
        refs.append(ref)
    resps: list[dict[str, Any]] = []
    for _ in range(420):
        i = rng.randrange(len(refs))
        wave = rng.choice(["baseline", "exit", "exit", "follow_up"])
        completed: datetime | None = None
        if rng.random() < 0.85:
            tz = timezone(timedelta(hours=rng.choice([-5, 0, 0, 1, 2])))
            # Few distinct instants, so ties and near-ties happen.
            completed = datetime(2025, 6, 1, 12, tzinfo=UTC) + timedelta(hours=rng.randint(0, 6))
            completed = completed.astimezone(tz)
        resp: dict[str, Any] = {"ref": i, "wave": wave, "completed_at": completed}
        for a in AREAS:
            resp[a] = rng.choice([None, 1, 2, 3, 4, 5])
            resp[f"helped_{a}"] = rng.choice([None, "na", "a_lot", "a_little", "no"])
        resp["satisfaction"] = rng.choice([None, *SATISFACTION])
        resp["rights_mask"] = rng.choice([None, 0, rng.randrange(4096), 4095, rng.randrange(64)])
        sw_missing = rng.random() < 0.2
        for k in range(1, 8):
            resp[f"swemwbs_{k}"] = None if sw_missing and k == 3 else rng.randint(1, 5)
        resp["extra_answers"] = _extra_answers(rng)
        resps.append(resp)
    return refs, resps


def _extra_answers(rng: random.Random) -> str | None:
    """PHQ-9 / GAD-7 items as `extra_answers` JSON: mostly complete, around the caseness thresholds,
    sometimes with a skipped, missing or malformed item, or other keys only."""
    roll = rng.random()
    if roll < 0.25:
        return None
    if roll < 0.3:
        return rng.choice(['{"cjs_involved": "yes"}', "{}", "[1, 2]", '{"phq9_1": 1}'])
    level = rng.choice([0, 1, 1, 2, 3])  # low, around the thresholds, or high
    answers: dict[str, object] = {"cjs_involved": rng.choice(["yes", "no"]), "ons4_1": rng.randint(0, 10)}
    for key in PHQ9_KEYS + GAD7_KEYS:
        answers[key] = max(0, min(3, level + rng.choice([-1, 0, 0, 1]) - 1))
    if rng.random() < 0.15:
        key = rng.choice(PHQ9_KEYS + GAD7_KEYS)
        bad = rng.choice([None, "2", True, False, 4, -1, 2.0, "missing"])
        if bad == "missing":
            del answers[key]
        else:
            answers[key] = bad
    return json.dumps(answers, sort_keys=True)


def phq_gad(resp: dict[str, Any]) -> tuple[int, int] | None:
    """The PHQ-9 and GAD-7 totals of a response (scoring's own rules), None unless both are complete."""
    text = resp.get("extra_answers")
    answers = json.loads(text) if text else {}
    if not isinstance(answers, dict):
        return None
    phq = phq9_score([answers.get(k) for k in PHQ9_KEYS])
    gad = gad7_score([answers.get(k) for k in GAD7_KEYS])
    return None if phq is None or gad is None else (phq, gad)


async def store(refs: list[dict[str, Any]], resps: list[dict[str, Any]]) -> None:
    orgs = {}
    for code, service in PROVIDERS.items():
        org = Organisation(code=code, name=code, kind="provider", service=service)
        await org.save()
        orgs[code] = org.id
    ids = []
    for ref in refs:
        row = Referral(**{**ref, "provider": orgs[ref["provider"]]})
        await row.save()
        ids.append(row.id)
    for n, resp in enumerate(resps):
        fields = {k: v for k, v in resp.items() if k != "ref"}
        row = Response(referral=ids[resp["ref"]], **fields)
        await row.save()
        resp["id"] = row.id if row.id is not None else n


def reference(
    refs: list[dict[str, Any]], resps: list[dict[str, Any]], start: date, end: date
) -> dict[str, Any]:
    """metrics.md read literally, one Python loop over rows (the SQL must never do this)."""
    m: dict[str, Any] = {}
    received = [r for r in refs if start <= r["referral_date"] <= end]
    m["referrals_received"] = len(received)
    m["victims_referred"] = len({r["person_key"] for r in received})
    for s in STATUSES:
        m[f"referrals_by_status.{s}"] = sum(r["status"] == s for r in received)
    m["victims_supported"] = len(
        {
            r["person_key"]
            for r in refs
            if r["support_start"] is not None
            and r["support_start"] <= end
            and (r["support_end"] is None or r["support_end"] >= start)
        }
    )
    closed = [
        r
        for r in refs
        if r["support_start"] is not None
        and r["support_end"] is not None
        and start <= r["support_end"] <= end
    ]
    m["episodes_closed"] = len(closed)
    pairs = []
    for r in closed:
        mine = [x for x in resps if refs[x["ref"]] is r and x["completed_at"] is not None]
        bl = sorted((x for x in mine if x["wave"] == "baseline"), key=lambda x: (x["completed_at"], x["id"]))
        ex = sorted((x for x in mine if x["wave"] == "exit"), key=lambda x: (x["completed_at"], x["id"]))
        if ex:
            pairs.append((bl[0] if bl else {}, ex[-1]))
    m["exit_responses"] = len(pairs)
    m["exit_response_rate"] = rate(len(pairs), len(closed))
    for a in AREAS:
        hn = sum(x.get(f"helped_{a}") in ("a_lot", "a_little", "no") for _, x in pairs)
        hy = sum(x.get(f"helped_{a}") in ("a_lot", "a_little") for _, x in pairs)
        diffs = [x[a] - b[a] for b, x in pairs if b.get(a) is not None and x.get(a) is not None]
        up, down = sum(d >= 1 for d in diffs), sum(d <= -1 for d in diffs)
        m |= {
            f"helped_n.{a}": hn,
            f"helped.{a}": hy,
            f"helped_pct.{a}": rate(hy, hn),
            f"paired_n.{a}": len(diffs),
            f"improved.{a}": up,
            f"deteriorated.{a}": down,
            f"no_change.{a}": sum(d == 0 for d in diffs),
            f"improved_pct.{a}": rate(up, len(diffs)),
            f"mean_change.{a}": sum(diffs) / len(diffs) if diffs else None,
        }
    yes, answered = ("a_lot", "a_little"), ("a_lot", "a_little", "no")
    hcr = sum(x["helped_cope"] in yes or x["helped_recover"] in yes for _, x in pairs)
    hcr_n = sum(x["helped_cope"] in answered or x["helped_recover"] in answered for _, x in pairs)
    m["helped_cope_and_recover"] = hcr
    m["helped_cope_and_recover_pct"] = rate(hcr, hcr_n)
    sat = [x for _, x in pairs if x["satisfaction"] is not None]
    m["answered"] = len(sat)
    m["satisfied"] = sum(x["satisfaction"] in SATISFIED for x in sat)
    m["satisfied_pct"] = rate(m["satisfied"], m["answered"])
    asked = [x for _, x in pairs if x["rights_mask"] is not None]
    for r in range(1, 13):
        m[f"rights_received.{r}"] = rate(
            sum(bool(x["rights_mask"] >> (r - 1) & 1) for x in asked), len(asked)
        )
    for band, lo, hi in RIGHTS_BANDS:
        inband = [x for x in asked if lo <= bin(x["rights_mask"]).count("1") <= hi and x["satisfaction"]]
        m[f"satisfied_pct_by_rights.{band}"] = rate(
            sum(x["satisfaction"] in SATISFIED for x in inband), len(inband)
        )
    scored = []
    for b, x in pairs:
        rb = swemwbs_raw([b.get(f"swemwbs_{k}") for k in range(1, 8)]) if b else None
        rx = swemwbs_raw([x.get(f"swemwbs_{k}") for k in range(1, 8)])
        if rb is not None and rx is not None:
            scored.append((SWEMWBS_METRIC[rb], SWEMWBS_METRIC[rx]))
    n = len(scored)
    m["paired_n.swemwbs"] = n
    m["mean_baseline.swemwbs"] = sum(b for b, _ in scored) / n if n else None
    m["mean_exit.swemwbs"] = sum(x for _, x in scored) / n if n else None
    m["mean_change.swemwbs"] = sum(x - b for b, x in scored) / n if n else None
    m["reliable_improvement.swemwbs"] = sum(round(x * 100) - round(b * 100) >= 300 for b, x in scored)
    m["reliable_deterioration.swemwbs"] = sum(round(b * 100) - round(x * 100) >= 300 for b, x in scored)
    outs = []
    for b, x in pairs:
        sb, sx = (phq_gad(b) if b else None), phq_gad(x)
        if sb is not None and sx is not None:
            outs.append(talking_therapies_outcome(sb[0], sb[1], sx[0], sx[1]))
    cases = sum(o.case_at_start for o in outs)
    m["paired_n.phq_gad"] = len(outs)
    m["caseness_baseline.phq_gad"] = rate(cases, len(outs))
    m["caseness_exit.phq_gad"] = rate(sum(o.case_at_end for o in outs), len(outs))
    m["reliable_improvement.phq_gad"] = rate(sum(o.reliable_improvement for o in outs), len(outs))
    m["reliable_deterioration.phq_gad"] = rate(sum(o.reliable_deterioration for o in outs), len(outs))
    m["recovery.phq_gad"] = rate(sum(o.recovery for o in outs), cases)
    m["reliable_recovery.phq_gad"] = rate(sum(o.reliable_recovery for o in outs), cases)
    return m


def value_of(ref: dict[str, Any], attr: str) -> str:
    if attr == "provider":
        return ref["provider"]
    if attr == "service":
        return PROVIDERS[ref["provider"]]
    if attr == "crime_group":
        return ref["crime_type"]
    value = ref[attr]
    return ("true" if value else "false") if isinstance(value, bool) else value


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        if isinstance(w, dict):
            assert g["numerator"] == w["numerator"] and g["denominator"] == w["denominator"], key
            assert (g["pct"] is None) == (w["pct"] is None), key
            if w["pct"] is not None:
                assert g["pct"] == pytest.approx(w["pct"], abs=1e-9), key
                assert g["ci95"] == pytest.approx(w["ci95"], abs=1e-9), key
        elif isinstance(w, float):
            assert g == pytest.approx(w, abs=1e-9), key
        else:
            assert g == w, key


@pytest.mark.parametrize("seed", [1, 2])
async def test_sql_matches_the_reference(seed: int) -> None:
    refs, resps = make_data(seed)
    await store(refs, resps)
    for code in ("2025-26", "2025-26-Q2", "2025-26-Q4"):
        p = parse_period(code)
        out = await compute_metrics(code, by=list(BREAKDOWNS))
        assert_same(out["groups"][0]["metrics"], reference(refs, resps, p.start, p.end))
    p = parse_period("2025-26")
    for attr in BREAKDOWNS:
        out = await compute_metrics("2025-26", by=[attr])
        groups = {g["by"][attr]: g["metrics"] for g in out["groups"][1:]}
        parts: dict[str, list[int]] = defaultdict(list)
        for i, ref in enumerate(refs):
            parts[value_of(ref, attr)].append(i)
        assert set(groups) == set(parts), attr
        for value, idx in parts.items():
            keep = {i: n for n, i in enumerate(idx)}
            sub_refs = [refs[i] for i in idx]
            sub_resps = [{**x, "ref": keep[x["ref"]]} for x in resps if x["ref"] in keep]
            assert_same(groups[value], reference(sub_refs, sub_resps, p.start, p.end))
    out = await compute_metrics("2025-26", provider="ROSA")
    idx = [i for i, r in enumerate(refs) if r["provider"] == "ROSA"]
    keep = {i: n for n, i in enumerate(idx)}
    want = reference(
        [refs[i] for i in idx],
        [{**x, "ref": keep[x["ref"]]} for x in resps if x["ref"] in keep],
        p.start,
        p.end,
    )
    assert_same(out["groups"][0]["metrics"], want)
