"""A deterministic synthetic financial year shaped like the Warwickshire needs assessment.

~22,500 referrals: the general service ~20,700 (85% never turn into support), two sexual abuse and
violence services ~1,700 between them, a child sexual exploitation service ~50. The crime mix, the share
of repeat victims (~21%) and of people referred to two providers follow the seed document. Everything is
made up: identifiers, contact details (Ofcom's drama ranges, example.org) and dates.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ORGANISATIONS = (
    ("OPCC", "Office of the Police and Crime Commissioner", "commissioner", None),
    ("VS", "Victim Support Warwickshire", "provider", "general"),
    ("ROSA", "ROSA Rape and Sexual Abuse Support", "provider", "sav"),
    ("SAFELINE", "Safeline", "provider", "sav"),
    ("BARN", "Barnardo's CSE Service", "provider", "cse"),
)

# Shares of the general service's referrals by crime code (seed: theft ~50%, violence ~32% ...).
GENERAL_CRIME_MIX = {
    "theft_other": 0.18,
    "theft_person": 0.04,
    "burglary_residential": 0.12,
    "burglary_business": 0.03,
    "vehicle": 0.06,
    "violence_without_injury": 0.18,
    "violence_with_injury": 0.12,
    "stalking_harassment": 0.06,
    "criminal_damage_arson": 0.08,
    "fraud_cyber": 0.04,
    "hate_incident": 0.03,
    "robbery": 0.02,
    "asb": 0.02,
    "road_traffic": 0.005,
    "homicide": 0.0005,
    "other": 0.0045,
}
SAV_CRIME_MIX = {"rape": 0.34, "other_sexual": 0.66}
AGE_BANDS = {
    "0-17": 0.08,
    "18-24": 0.15,
    "25-34": 0.21,
    "35-44": 0.18,
    "45-54": 0.16,
    "55-64": 0.11,
    "65+": 0.08,
    "unknown": 0.03,
}
SAV_AGE_BANDS = {
    "0-17": 0.18,
    "18-24": 0.28,
    "25-34": 0.24,
    "35-44": 0.14,
    "45-54": 0.09,
    "55-64": 0.04,
    "65+": 0.01,
    "unknown": 0.02,
}
ETHNICITY = {"white": 0.84, "asian": 0.06, "black": 0.02, "mixed": 0.02, "other": 0.01, "unknown": 0.05}
DISABILITY = {"no": 0.62, "yes": 0.16, "unknown": 0.22}
CHANNELS = {"email": 0.45, "sms": 0.35, "phone": 0.1, "none": 0.1}
NOT_PROGRESSING = {
    "referred": 0.10,
    "contacted": 0.28,
    "declined": 0.37,
    "uncontactable": 0.19,
    "out_of_scope": 0.06,
}


@dataclass(frozen=True, slots=True)
class DemoPlan:
    year: str = "2025-26"
    seed: int = 2025
    scale: float = 1.0

    @property
    def start(self) -> dt.date:
        match = re.fullmatch(r"(\d{4})-(\d{2})", self.year)
        if not match or (int(match[1]) + 1) % 100 != int(match[2]):
            raise ValueError(f"--year must be a financial year like 2025-26, got {self.year!r}")
        return dt.date(int(match[1]), 4, 1)

    @property
    def end(self) -> dt.date:
        return dt.date(self.start.year + 1, 3, 31)


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class _People:
    """Hands out person ids, re-using some so that ~21% of referrals are of repeat victims."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.issued: list[str] = []

    def new(self) -> str:
        person = f"WP-{len(self.issued) + 1:07d}"
        self.issued.append(person)
        return person

    def next(self, repeat_share: float) -> tuple[str, bool]:
        if self.issued and self.rng.random() < repeat_share:
            return self.rng.choice(self.issued[-4000:]), True
        return self.new(), False


def _referral(
    rng: random.Random,
    plan: DemoPlan,
    provider: str,
    number: int,
    person: str,
    repeat: bool,
    crime_mix: dict[str, float],
    ages: dict[str, float],
    progress_share: float,
    sources: dict[str, float],
) -> dict[str, Any]:
    days = (plan.end - plan.start).days
    referral_date = plan.start + dt.timedelta(days=rng.randrange(days + 1))
    crime = _pick(rng, crime_mix)
    status = _pick(rng, NOT_PROGRESSING)
    support_start = support_end = None
    if rng.random() < progress_share:
        support_start = referral_date + dt.timedelta(days=rng.randint(2, 30))
        length = rng.randint(14, 240 if provider in ("ROSA", "SAFELINE", "BARN") else 120)
        end = support_start + dt.timedelta(days=length)
        status = "supported"
        if end <= plan.end + dt.timedelta(days=60) and rng.random() < 0.8:
            status, support_end = "closed", end
    domestic = crime in ("violence_with_injury", "violence_without_injury", "stalking_harassment") and (
        rng.random() < 0.35
    )
    channel = _pick(rng, CHANNELS)
    number_tail = f"{rng.randrange(1000):03d}"
    return {
        "provider": provider,
        "referral_id": f"{provider}-{plan.year}-{number:06d}",
        "person_id": person,
        "referral_date": referral_date,
        "source": _pick(rng, sources),
        "crime_type": crime,
        "domestic_abuse": domestic,
        "hate_crime": crime == "hate_incident" or rng.random() < 0.01,
        "repeat_victim": repeat,
        "age_band": "0-17" if crime == "cse" else _pick(rng, ages),
        "sex": _pick(
            rng,
            {"female": 0.8, "male": 0.18, "unknown": 0.02}
            if crime_mix is SAV_CRIME_MIX
            else {"female": 0.52, "male": 0.45, "unknown": 0.03},
        ),
        "ethnicity": _pick(rng, ETHNICITY),
        "disability": _pick(rng, DISABILITY),
        "status": status,
        "support_start": support_start,
        "support_end": support_end,
        "contact_email": f"person.{person.lower()}@example.org" if channel == "email" else None,
        "contact_phone": f"07700 900{number_tail}" if channel in ("sms", "phone") else None,
        "preferred_channel": channel,
        "safe_to_contact": rng.random() < (0.7 if domestic else 0.93),
        "consent_to_survey": rng.random() < 0.82,
    }


def generate_referrals(
    plan: DemoPlan, on_progress: Callable[[int], None] | None = None
) -> list[dict[str, Any]]:
    """The demo year's referrals as typed rows (the shape the import validates into)."""
    rng = random.Random(plan.seed)
    people = _People(rng)
    rows: list[dict[str, Any]] = []
    police_mostly = {"police": 0.97, "self": 0.02, "agency": 0.01, "other": 0.0}
    sav_sources = {"police": 0.42, "self": 0.38, "agency": 0.18, "other": 0.02}
    general = round(20_700 * plan.scale)
    for n in range(general):
        person, repeat = people.next(0.21)
        rows.append(
            _referral(
                rng, plan, "VS", n + 1, person, repeat, GENERAL_CRIME_MIX, AGE_BANDS, 0.15, police_mostly
            )
        )
        if on_progress and n % 1000 == 0:
            on_progress(len(rows))
    general_people = list(people.issued)
    for provider, count in (("ROSA", 1_000), ("SAFELINE", 700)):
        for n in range(round(count * plan.scale)):
            # About a third of people supported for sexual violence were also referred to the general service.
            if rng.random() < 0.3:
                person, repeat = rng.choice(general_people), True
            else:
                person, repeat = people.next(0.1)
            rows.append(
                _referral(
                    rng, plan, provider, n + 1, person, repeat, SAV_CRIME_MIX, SAV_AGE_BANDS, 0.6, sav_sources
                )
            )
    for n in range(max(1, round(50 * plan.scale))):
        person, repeat = people.next(0.05)
        rows.append(
            _referral(
                rng,
                plan,
                "BARN",
                n + 1,
                person,
                repeat,
                {"cse": 1.0},
                AGE_BANDS,
                0.7,
                {"police": 0.5, "agency": 0.45, "self": 0.05, "other": 0.0},
            )
        )
    if on_progress:
        on_progress(len(rows))
    return rows


async def ensure_organisations() -> int:
    """Add the demo organisations that are missing; returns how many were added."""
    from surveys.tables import Organisation

    existing = {r["code"] for r in await Organisation.select(Organisation.code).run()}
    missing = [
        Organisation(code=c, name=n, kind=k, service=s) for c, n, k, s in ORGANISATIONS if c not in existing
    ]
    if missing:
        await Organisation.insert(*missing).run()
    return len(missing)


async def load_demo(plan: DemoPlan, on_progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Write the demo year through the real import path; returns counts."""
    from surveys import db
    from surveys.fields import REFERRAL_READERS
    from surveys.importing import Parsed, provider_ids, referral_records, upsert_referrals

    await ensure_organisations()
    rows = generate_referrals(
        plan, (lambda n: on_progress("referrals generated", n)) if on_progress else None
    )
    parsed = Parsed(
        numbers=list(range(2, len(rows) + 2)), columns={c: [r[c] for r in rows] for c in REFERRAL_READERS}
    )
    records = referral_records(parsed, await provider_ids(), None, for_sqlite=db.is_sqlite())
    created, updated = await upsert_referrals([records])
    if on_progress:
        on_progress("referrals stored", len(records))
    responses = await load_demo_responses(plan)
    if on_progress:
        on_progress("responses stored", responses)
    return {"referrals": len(records), "created": created, "updated": updated, "responses": responses}


# Made-up free-text answers for the demo (the project's own words), so the text pipeline has material.
DEMO_BARRIERS = (
    "I didn't know there was any help until months later.",
    "The police took ages to ring me back and I felt like I was wasting their time.",
    "I work shifts so I could never make the appointments.",
    "I felt stupid for needing help, it was only a break in.",
    "The bus to town costs too much and there is only one a day from our village.",
    "Nobody told me what was happening with my case.",
    "I was scared they wouldn't believe me.",
    "The waiting list for counselling was six months.",
    "Nothing, the support worker rang me the next day.",
    "I had to tell my story again to every new person.",
    "No internet at home so the online forms were no good.",
    "Childcare. I have three kids and no one to watch them.",
)
DEMO_GAPS = (
    "I needed counselling and couldn't get it.",
    "Help to move house, I still live round the corner from him.",
    "Someone to keep me updated about the court date.",
    "Support after the trial ended, it just stopped.",
    "Money to replace the door and the locks.",
    "Nothing really, I got what I needed.",
    "Help for my children, they saw everything.",
    "Someone to talk to at night when it's worst.",
)
DEMO_COMMENTS = (
    "My worker was brilliant, she listened and never judged me.",
    "Thank you for everything.",
    "I felt fobbed off by the police but the charity was great.",
    "It helped me feel safe at home again.",
    "Too many different people rang me about the same thing.",
    "Kind people but it ended too soon.",
)
SATISFACTION_WEIGHTS = {
    "completely_satisfied": 0.22,
    "very_satisfied": 0.3,
    "fairly_satisfied": 0.2,
    "neither": 0.1,
    "fairly_dissatisfied": 0.08,
    "very_dissatisfied": 0.06,
    "completely_dissatisfied": 0.04,
}
AREAS = ("cope", "safety", "health", "informed", "cjs", "recover")


def _state_answer(rng: random.Random, mean: float) -> int | None:
    if rng.random() < 0.04:
        return None  # "prefer not to say" or skipped
    return max(1, min(5, round(rng.gauss(mean, 1.0))))


def generate_responses(
    plan: DemoPlan, episodes: list[dict[str, Any]], now: dt.datetime
) -> list[dict[str, Any]]:
    """Baseline, exit and follow-up responses for the demo's episodes: some partial, some by phone.

    Tuned so that about 6 in 10 say the support helped them cope and about 4 in 10 that it helped them
    recover, as the Crime Survey found nationally.
    """
    rng = random.Random(plan.seed + 1)
    out: list[dict[str, Any]] = []

    def response(ep: dict[str, Any], wave: str, day: dt.date, answers: dict[str, Any]) -> None:
        when = dt.datetime.combine(day, dt.time(rng.randint(9, 20), rng.randint(0, 59)), dt.UTC)
        partial = rng.random() < 0.08
        if when > now:
            return
        out.append(
            {
                "referral": ep["id"],
                "wave": wave,
                "completed_at": None if partial else when,
                "mode": _pick(rng, {"web": 0.7, "phone": 0.25, "paper": 0.05}),
                **answers,
            }
        )

    for ep in episodes:
        if not ep["consent_to_survey"] or ep["support_start"] is None:
            continue
        gain = rng.gauss(0.7, 0.9)
        baseline = {a: _state_answer(rng, 2.4) for a in AREAS}
        if rng.random() < 0.6:
            swem = [rng.randint(1, 4) for _ in range(7)]
            baseline.update({f"swemwbs_{i + 1}": v for i, v in enumerate(swem)})
        if rng.random() < 0.55:
            response(ep, "baseline", ep["support_start"] + dt.timedelta(days=rng.randint(0, 10)), baseline)
        end = ep["support_end"]
        if end is None or rng.random() > 0.5:
            continue
        exit_answers: dict[str, Any] = {
            a: (
                None
                if baseline[a] is None or rng.random() < 0.05
                else max(1, min(5, round(baseline[a] + gain)))
            )
            for a in AREAS
        }
        helped_cope = "a_lot" if rng.random() < 0.33 else ("a_little" if rng.random() < 0.4 else "no")
        helped_recover = "a_lot" if rng.random() < 0.18 else ("a_little" if rng.random() < 0.27 else "no")
        for area in AREAS:
            choice = rng.random()
            exit_answers[f"helped_{area}"] = (
                "na" if choice < 0.08 else "a_lot" if choice < 0.4 else "a_little" if choice < 0.65 else "no"
            )
        exit_answers["helped_cope"], exit_answers["helped_recover"] = helped_cope, helped_recover
        exit_answers["satisfaction"] = _pick(rng, SATISFACTION_WEIGHTS)
        rights = [r for r in range(1, 13) if rng.random() < 0.45]
        exit_answers["rights_mask"] = sum(1 << (r - 1) for r in rights) if rng.random() < 0.9 else None
        if "swemwbs_1" in baseline:
            exit_answers.update(
                {
                    f"swemwbs_{i}": min(5, baseline[f"swemwbs_{i}"] + rng.choice((0, 0, 1)))
                    for i in range(1, 8)
                }
            )
        exit_answers["barriers_text"] = rng.choice(DEMO_BARRIERS) if rng.random() < 0.35 else None
        exit_answers["gaps_text"] = rng.choice(DEMO_GAPS) if rng.random() < 0.3 else None
        exit_answers["comments_text"] = rng.choice(DEMO_COMMENTS) if rng.random() < 0.25 else None
        response(ep, "exit", end + dt.timedelta(days=rng.randint(0, 14)), exit_answers)
        if rng.random() < 0.3:
            follow = {a: exit_answers[a] for a in AREAS}
            response(ep, "follow_up", end + dt.timedelta(days=90 + rng.randint(0, 20)), follow)
    return out


# Optional scales the demo answers when VOP_SCALES_BY_SERVICE switches none on: the sexual abuse and
# violence services ask PHQ-9 and GAD-7, so the demo shows those figures too.
DEMO_SCALES_BY_SERVICE: dict[str, list[str]] = {"sav": ["phq9", "gad7"]}
SCALE_INSTRUMENTS = {"phq9": "phq9-1", "gad7": "gad7-1"}


def _scale_items(rng: random.Random, total: int, count: int) -> list[int | None]:
    """`count` answers 0..3 adding up to `total` (clipped to 0..3 x count), spread at random."""
    values: list[int | None] = [0] * count
    for _ in range(max(0, min(total, 3 * count))):
        open_items = [i for i, v in enumerate(values) if v is not None and v < 3]
        i = rng.choice(open_items)
        values[i] = (values[i] or 0) + 1
    return values


def add_scale_answers(
    plan: DemoPlan,
    responses: list[dict[str, Any]],
    service_of: dict[int, str | None],
    scales_by_service: dict[str, list[str]],
) -> int:
    """PHQ-9 / GAD-7 answers (`extra_answers`) on the responses of services that switch the scales on.

    Deterministic (its own random stream, so the other answers stay as they were). Each episode gets
    a severity at baseline (about two in three are a case, as in services for sexual violence) and a
    share of it gone by exit (on average 40%; about 1 in 25 get worse); about 1 in 10 responses skip
    the scale, and 1 in 25 skip one item. Returns how many responses got scale answers.
    """
    from surveys.instruments import load_instrument
    from surveys.responses import answer_columns

    keys = {name: [q.id for q in load_instrument(v).questions] for name, v in SCALE_INSTRUMENTS.items()}
    rng = random.Random(plan.seed + 2)
    episode: dict[int, tuple[float, float, float]] = {}
    done = 0
    for r in responses:
        wanted = [
            s
            for s in SCALE_INSTRUMENTS
            if s in scales_by_service.get(service_of.get(r["referral"]) or "", [])
        ]
        if not wanted:
            continue
        if r["referral"] not in episode:
            phq = min(27.0, max(0.0, rng.gauss(10.5, 5.5)))
            gad = min(21.0, max(0.0, 0.7 * phq + rng.gauss(0.0, 3.0)))
            better = -rng.uniform(0.3, 0.8) if rng.random() < 0.04 else min(1.0, rng.gauss(0.4, 0.4))
            episode[r["referral"]] = (phq, gad, better)
        phq, gad, better = episode[r["referral"]]
        if r["wave"] != "baseline":
            phq = phq * (1 - better) + rng.gauss(0.0, 1.5)
            gad = gad * (1 - better) + rng.gauss(0.0, 1.2)
        if rng.random() < 0.1:
            continue  # skipped the scale
        answers: dict[str, Any] = {}
        for name, total in (("phq9", phq), ("gad7", gad)):
            if name in wanted:
                answers.update(zip(keys[name], _scale_items(rng, round(total), len(keys[name])), strict=True))
        if rng.random() < 0.04:
            answers[rng.choice(sorted(answers))] = None  # one item skipped
        r["extra_answers"] = answer_columns(answers)["extra_answers"]
        done += 1
    return done


async def load_demo_responses(plan: DemoPlan) -> int:
    """Generate and store the demo's responses (idempotent: the same seed stores each response once)."""
    from settings import get_settings
    from surveys import db
    from surveys.responses import STORED_COLUMNS, insert_responses, submission_key
    from surveys.tables import Referral

    episodes = (
        await Referral.select(
            Referral.id,
            Referral.support_start,
            Referral.support_end,
            Referral.consent_to_survey,
            Referral.provider.service.as_alias("service"),
        )
        .where(Referral.support_start.is_not_null())
        .order_by(Referral.id)
        .run()
    )
    now = dt.datetime.now(dt.UTC)
    sqlite = db.is_sqlite()
    responses = generate_responses(plan, episodes, now)
    add_scale_answers(
        plan,
        responses,
        {e["id"]: e["service"] for e in episodes},
        get_settings().scales_by_service or DEMO_SCALES_BY_SERVICE,
    )
    records = []
    extra = []
    for r in responses:
        r = {**r, "instrument_version": "core-1", "created_at": now, "updated_at": now}
        r["submission_key"] = submission_key(
            {"demo": plan.seed, "referral": r["referral"], "wave": r["wave"]}
        )
        values = [r.get(c) for c in STORED_COLUMNS]
        if sqlite:
            values = [v.isoformat() if isinstance(v, dt.datetime) else v for v in values]
        records.append(tuple(values))
        if r.get("extra_answers"):
            extra.append((r["extra_answers"], r["submission_key"]))
    stored = await insert_responses(records)
    if extra:
        # The responses import stores the core columns only; the scale items go in by submission key.
        engine = db.current_engine()
        answers, key = db.placeholders(engine, 2)
        async with db.write_transaction() as tx:
            await db.executemany(
                tx, f"UPDATE response SET extra_answers = {answers} WHERE submission_key = {key}", extra
            )
    return stored
