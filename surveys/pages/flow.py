"""The survey flow behind the pages and the JSON API: which questions, in what order, saving and submit.

A link asks about one or more (referral, wave) items. Questions about the person ("how safe do you
feel") are asked once; questions about the support ("has the support you got helped ...", satisfaction)
are asked once per exit item. The answers so far live on the link as JSON:
`{"person": {question_id: value}, "items": {"<link item id>": {question_id: value}}}`; a key that is
present was answered (None = an optional question skipped), so "the first unanswered question" is the
first step whose key is missing.

Every save also writes, per item, a partial Response row (completed_at NULL) through
`surveys.responses.answer_columns`, and keeps `LinkItem.response` pointing at it; submit completes
them and the link in one transaction. Each item's row carries a submission key derived from the link
and item, so however often or concurrently a survey is submitted there is one response per item.
Nothing here logs an answer (special category data).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any, Literal

import msgspec

from surveys import db
from surveys.coalesce import Coalescer
from surveys.crypto import token_hash
from surveys.instruments import Instrument, Question, load_instrument, questions_for, validate_answer
from surveys.links import LinkItemView, LinkView
from surveys.responses import HELPED, answer_columns

_CANONICAL = msgspec.json.Encoder(order="sorted")

# Questions about the support a provider gave, asked once per exit item of a combined link. Everything
# else describes the person (or the police and courts) and is asked once.
PER_ITEM: frozenset[str] = frozenset((*HELPED, "satisfaction"))

SubmitOutcome = Literal["completed", "already", "different", "incomplete", "expired"]


@dataclass(frozen=True, slots=True)
class Step:
    """One page: a question, asked about the person (item None) or about one exit item's support.

    `key` is the step's key in URLs and the API: `cope`, or `helped_cope.2` for the second of two
    supports (steps are made from a `Plan`, which names the keys; see `steps_for`).
    """

    question: Question
    key: str
    item: LinkItemView | None = None
    item_number: int = 0  # 1-based among the link's exit items; 0 for person-level questions
    item_count: int = 0


_NO_ANSWERS: Mapping[str, Any] = MappingProxyType({})


@dataclass(slots=True)
class Answers:
    """The answers so far: person-level by question id, and per exit item."""

    person: dict[str, Any] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Answers:
        """Read the link's stored answers (a flat dict is taken as person-level answers)."""
        if "person" not in raw and "items" not in raw:
            return cls(person=dict(raw))
        return cls(
            person=dict(raw.get("person") or {}),
            items={str(k): dict(v) for k, v in (raw.get("items") or {}).items()},
        )

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), so equal answers give equal text and digests."""
        return _CANONICAL.encode({"person": self.person, "items": self.items}).decode()

    def copied(self) -> dict[str, Any]:
        """The answers as the link stores them, copied (later changes to these answers don't reach it)."""
        return {"person": dict(self.person), "items": {k: dict(v) for k, v in self.items.items()}}

    def has(self, step: Step) -> bool:
        """Whether the step was answered (or skipped)."""
        if step.item:
            return step.question.id in self.items.get(str(step.item.item_id), {})
        return step.question.id in self.person

    def get(self, step: Step) -> Any:
        if step.item:
            return self.items.get(str(step.item.item_id), {}).get(step.question.id)
        return self.person.get(step.question.id)

    def own(self, item: LinkItemView) -> Mapping[str, Any]:
        """One item's own answers (about its support), empty when it has none yet."""
        return self.items.get(str(item.item_id), _NO_ANSWERS)

    def digest(self) -> str:
        """A short fingerprint of the answers, so a repeated submit can be told from a different one."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:20]


def instrument_of(link: LinkView) -> Instrument:
    """The instrument version the link was issued with."""
    return load_instrument(link.instrument_version)


def _master_order(inst: Instrument, scales: Sequence[str]) -> dict[str, int]:
    """Rank of every question id: the core order with the switched-on scales after `scales_after`."""
    core = [q.id for q in inst.questions]
    wanted = {s.split("-")[0] for s in scales}
    extra: list[str] = []
    for name, pinned in inst.scales.items():
        if name in wanted:
            extra += [q.id for q in load_instrument(pinned).questions]
    at = core.index(inst.scales_after) + 1 if inst.scales_after in core else len(core)
    return {qid: n for n, qid in enumerate(core[:at] + extra + core[at:])}


def exit_items(link: LinkView) -> list[LinkItemView]:
    """The link's exit items, in link order: each gets its own questions about the support."""
    return [i for i in link.items if i.wave == "exit"]


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """The steps for one shape of link and the answers that matter to routing: (question, exit item
    number or 0 for the person, step key) in order. Plans are cached and compared by identity."""

    entries: tuple[tuple[Question, int, str], ...]


def plan_for(link: LinkView, answers: Answers, inst: Instrument) -> Plan:
    """The plan of this link for the answers so far (an answer can reveal or hide later steps)."""
    routing = _routing_order(inst.id_version)
    exits = exit_items(link)
    return _plan(
        inst.id_version, tuple(link.scales), tuple(link.waves), len(exits),
        _routing_values(routing, answers.person),
        tuple(_routing_values(routing, answers.own(i), answers.person) for i in exits),
    )  # fmt: skip


def steps_for(link: LinkView, answers: Answers, inst: Instrument | None = None) -> list[Step]:
    """Every page to ask, in order, given the answers so far (an answer can reveal or hide later ones)."""
    plan = plan_for(link, answers, inst or instrument_of(link))
    # The link keeps the steps of each plan it met (pages ask for them several times a request).
    steps = link.steps_memo.get(plan)
    if steps is None:
        exits = exit_items(link)
        count = len(exits)
        steps = link.steps_memo[plan] = [
            Step(q, key, exits[n - 1], n, count) if n else Step(q, key) for q, n, key in plan.entries
        ]
    return list(steps)


RoutingValues = tuple[tuple[str, Any], ...]


def _routing_values(routing: tuple[str, ...], *scopes: Mapping[str, Any]) -> RoutingValues:
    """The answers that conditions look at, hashable: all that decides which steps are asked. Each is
    taken from the first scope that has it (an item's own answers, then the person's)."""
    values = []
    for qid in routing:
        for scope in scopes:
            if qid in scope:
                value = scope[qid]
                if isinstance(value, list):
                    values.append((qid, tuple(value)))
                elif isinstance(value, str | int | float | None):
                    values.append((qid, value))
                break
    return tuple(values)


@lru_cache(maxsize=4096)
def _plan(
    id_version: str,
    scales: tuple[str, ...],
    waves: tuple[str, ...],
    exit_count: int,
    person_answers: RoutingValues,
    item_answers: tuple[RoutingValues, ...],
) -> Plan:
    """The plan for answers that matter to routing (cached: many links share a plan)."""
    inst = load_instrument(id_version)
    rank = _master_order(inst, scales)
    person: dict[str, Question] = {}
    for wave in waves:
        for q in questions_for(inst, wave, scales, dict(person_answers)):
            if q.id not in PER_ITEM:
                person.setdefault(q.id, q)
    blocks: list[tuple[Question, int]] = []
    for number in range(1, exit_count + 1):
        for q in questions_for(inst, "exit", scales, dict(item_answers[number - 1])):
            if q.id in PER_ITEM:
                blocks.append((q, number))
    per_item_rank = min((rank[q] for q in PER_ITEM if q in rank), default=len(rank))
    ordered = sorted(person.values(), key=lambda q: rank[q.id])
    before = [(q, 0) for q in ordered if rank[q.id] < per_item_rank]
    after = [(q, 0) for q in ordered if rank[q.id] >= per_item_rank]
    return Plan(
        tuple((q, n, f"{q.id}.{n}" if n and exit_count > 1 else q.id) for q, n in (*before, *blocks, *after))
    )


def find_step(steps: Sequence[Step], key: str) -> int | None:
    """Index of the step with this key, or None."""
    for n, step in enumerate(steps):
        if step.key == key:
            return n
    return None


def first_unanswered(steps: Sequence[Step], answers: Answers) -> Step | None:
    """Where a person resumes: the first step not yet answered, or None when all are."""
    return next((s for s in steps if not answers.has(s)), None)


def check_answer(step: Step, raw: Any) -> tuple[Any, str | None, str | None]:
    """Validate a raw answer (form value, list, or a JSON number) against the instrument."""
    return _check(step.question, raw)


def _check(question: Question, raw: Any) -> tuple[Any, str | None, str | None]:
    if isinstance(raw, bool):
        raw = str(raw).lower()
    if isinstance(raw, int | float):
        raw = str(raw)
    elif isinstance(raw, list):
        raw = tuple(str(v) for v in raw)
    if question.type == "text" or not isinstance(raw, str | tuple) or len(raw) > 40:
        return validate_answer(question, list(raw) if isinstance(raw, tuple) else raw)
    # Choices repeat across submissions: remember the verdicts on them (never on free text, which is
    # personal data and is not kept beyond the request).
    key = (id(question), raw)
    known = _VERDICTS.get(key)
    if known is None or known[0] is not question:
        if len(_VERDICTS) > 20_000:
            _VERDICTS.clear()
        verdict = validate_answer(question, list(raw) if isinstance(raw, tuple) else raw)
        known = _VERDICTS[key] = (question, verdict)
    value, err_en, err_cy = known[1]
    return (list(value) if isinstance(value, list) else value), err_en, err_cy


_VERDICTS: dict[tuple[int, str | tuple[str, ...]], tuple[Question, tuple[Any, str | None, str | None]]] = {}


def item_answers(link: LinkView, answers: Answers, item: LinkItemView, inst: Instrument) -> dict[str, Any]:
    """The answers that belong in one item's Response: those asked at the item's wave.

    Person-level answers apply to every item; answers to questions now hidden (say, after changing
    an earlier answer) are left out, so the stored response matches what the routing asked.
    """
    own = answers.own(item)
    routing = _routing_values(_routing_order(inst.id_version), own, answers.person)
    asked = _asked_ids(inst.id_version, item.wave, tuple(link.scales), routing)
    out: dict[str, Any] = {}
    for qid in asked:
        source = own if qid in PER_ITEM else answers.person
        if qid in source:
            out[qid] = source[qid]
    return out


@lru_cache(maxsize=4096)
def _asked_ids(
    id_version: str, wave: str, scales: tuple[str, ...], routing: RoutingValues
) -> tuple[str, ...]:
    """The ids of the questions asked at a wave, for the answers that matter to routing (cached)."""
    return tuple(q.id for q in questions_for(load_instrument(id_version), wave, scales, dict(routing)))


def submission_key(link_id: int, item_id: int) -> str:
    """The idempotency key of a link item's response: one row per item, however often submitted."""
    return hashlib.sha256(f"survey-link:{link_id}:item:{item_id}".encode()).hexdigest()


# --- storage -----------------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _locked_link(t: db.Statements, link_id: int) -> dict[str, Any] | None:
    # FOR UPDATE serialises concurrent saves of one link on PostgreSQL; SQLite's IMMEDIATE transaction
    # already holds the write lock.
    lock = "" if t.sqlite else " FOR UPDATE"
    return await t.fetchrow(f"SELECT answers, completed_at FROM survey_link WHERE id = ?{lock}", link_id)


async def _write_responses(
    t: db.Statements,
    link: LinkView,
    answers: Answers,
    inst: Instrument,
    mode: str,
    completed_at: dt.datetime | None,
    link_update: tuple[str, tuple[Any, ...]],
    items_fresh: bool = False,
) -> None:
    """Run the link's own UPDATE, then insert or update each item's response row.

    `link_update` is the UPDATE of the link row (statement ending in its WHERE, arguments).
    `items_fresh`: the link's items were read inside this transaction, with the link locked, so their
    response ids are current; otherwise they are read again (another save may have created a row).

    On PostgreSQL all of it is one statement (`_pg_link_writes`).
    """
    if items_fresh:
        current = {i.item_id: i.response_id for i in link.items}
    else:
        rows = await t.fetch("SELECT id, response FROM link_item WHERE link = ?", link.id)
        current = {r["id"]: r["response"] for r in rows}
    writes = _response_writes(link, answers, inst, mode, completed_at, current)
    if t.sqlite:
        lead_sql, lead_args = link_update
        await t.execute(lead_sql, *lead_args)
        for item, response_id, cols in writes:
            if response_id is not None:
                sets = ", ".join(f"{c} = ?" for c in cols)
                await t.execute(f"UPDATE response SET {sets} WHERE id = ?", *cols.values(), response_id)
                continue
            marks = ", ".join("?" for _ in cols)
            row = await t.fetchrow(
                f"INSERT INTO response ({', '.join(cols)}) VALUES ({marks}) RETURNING id", *cols.values()
            )
            assert row is not None
            await t.execute("UPDATE link_item SET response = ? WHERE id = ?", row["id"], item.item_id)
        return
    sql, args = _pg_link_writes([(link_update, writes, None)])
    await t.execute(sql, *args)


ResponseWrite = tuple[LinkItemView, int | None, dict[str, Any]]


def _response_writes(
    link: LinkView,
    answers: Answers,
    inst: Instrument,
    mode: str,
    completed_at: dt.datetime | None,
    current: Mapping[int, int | None],
) -> list[ResponseWrite]:
    """Per item: (item, its response row's id or None for a new row, the columns to write)."""
    now = _now()
    writes: list[ResponseWrite] = []
    for item in link.items:
        cols = answer_columns(item_answers(link, answers, item, inst))
        cols.update(mode=mode, completed_at=completed_at, updated_at=now)
        response_id = current.get(item.item_id)
        if response_id is None:
            cols.update(
                referral=item.referral_pk, wave=item.wave, instrument_version=link.instrument_version,
                submission_key=submission_key(link.id, item.item_id), created_at=now,
            )  # fmt: skip
        writes.append((item, response_id, cols))
    return writes


LinkWrites = tuple[tuple[str, tuple[Any, ...]], list[ResponseWrite], str | None]


def _pg_link_writes(links: Sequence[LinkWrites]) -> tuple[str, list[Any]]:
    """One PostgreSQL statement writing one or more links: (link UPDATE, response writes, expected).

    Each link's UPDATE is a data-modifying CTE (`l0`, `l1` ...), and its items' writes run only if it
    did. The statement returns `n0`, `n1` ...: 1 where that link was updated, 0 where `expected` no
    longer held (then nothing of that link was written). Being one statement, it is one transaction.
    """
    parts: list[str] = []
    args: list[Any] = []
    for j, ((lead_sql, lead_args), writes, expected) in enumerate(links):
        args += lead_args
        if expected is not None:
            lead_sql += " AND completed_at IS NULL AND answers = ?"
            args.append(expected)
        parts.append(f"l{j} AS ({lead_sql} RETURNING id)")
        for n, (item, response_id, cols) in enumerate(writes):
            if response_id is not None:
                sets = ", ".join(f"{c} = ?" for c in cols)
                parts.append(
                    f"u{j}_{n} AS (UPDATE response SET {sets} WHERE id = ? AND EXISTS (SELECT 1 FROM l{j}))"
                )
                args += [*cols.values(), response_id]
                continue
            marks = ", ".join("?" for _ in cols)
            parts.append(
                f"r{j}_{n} AS (INSERT INTO response ({', '.join(cols)}) SELECT {marks} "
                f"WHERE EXISTS (SELECT 1 FROM l{j}) RETURNING id)"
            )
            parts.append(
                f"i{j}_{n} AS (UPDATE link_item SET response = (SELECT id FROM r{j}_{n}) "
                f"WHERE id = ? AND EXISTS (SELECT 1 FROM r{j}_{n}))"
            )
            args += [*cols.values(), item.item_id]
    counts = ", ".join(f"(SELECT count(*) FROM l{j}) AS n{j}" for j in range(len(links)))
    return f"WITH {', '.join(parts)} SELECT {counts}", args


def _apply(link: LinkView, answers: Answers, inst: Instrument, updates: Sequence[tuple[str, Any]]) -> None:
    # The plan is worked out again only after a routing answer: only those can reveal or hide a step.
    routing = _routing_order(inst.id_version)
    scopes = _Scopes(link, answers)
    plan = plan_for(link, answers, inst)
    where = {key: (q, n) for q, n, key in plan.entries}
    for key, value in updates:
        found = where.get(key)
        if found is None:
            continue
        question, number = found
        scopes[number][question.id] = value
        if question.id in routing:
            plan = plan_for(link, answers, inst)
            where = {key: (q, n) for q, n, key in plan.entries}


@dataclass(slots=True)
class SaveResult:
    """What a save did: `saved`, or `completed` when the link was completed meanwhile."""

    status: Literal["saved", "completed"]
    answers: Answers


async def save_answers(
    link: LinkView, updates: Sequence[tuple[str, Any]], mode: str | None = None
) -> SaveResult:
    """Apply validated answers (by step key) and save them with the partial responses, atomically.

    The stored answers are re-read inside the transaction, so two devices answering different
    questions at once both keep their answers.
    """
    inst = instrument_of(link)

    async def body(t: db.Statements) -> SaveResult:
        row = await _locked_link(t, link.id)
        if row is None or row["completed_at"] is not None:
            return SaveResult("completed", Answers.from_json(json.loads(row["answers"]) if row else {}))
        answers = Answers.from_json(json.loads(row["answers"] or "{}"))
        _apply(link, answers, inst, updates)
        update = (
            "UPDATE survey_link SET answers = ?, opened_at = COALESCE(opened_at, ?) WHERE id = ?",
            (answers.to_json(), _now(), link.id),
        )
        await _write_responses(t, link, answers, inst, mode or link.mode, None, update)
        return SaveResult("saved", answers)

    result = await db.run_write(body)
    if result.status == "saved":
        link.answers = result.answers.copied()
    return result


@dataclass(slots=True)
class SubmitResult:
    """The outcome of a submit, with the answers as stored and the first missing step if incomplete."""

    outcome: SubmitOutcome
    answers: Answers
    missing: Step | None = None
    completed_at: dt.datetime | None = None


async def submit(
    link: LinkView,
    digest: str | None = None,
    updates: Sequence[tuple[str, Any]] = (),
    mode: str | None = None,
    now: dt.datetime | None = None,
) -> SubmitResult:
    """Complete the survey: every item's response gets `completed_at`, and the link is closed.

    Idempotent: on a completed link, a submit of the same answers (same `digest`, or `updates` that
    change nothing) is `already`, a different one `different`; neither writes anything. A survey with
    a required question unanswered is `incomplete` (with the step to go back to).
    """
    when = now or _now()

    async def body(t: db.Statements) -> SubmitResult:
        row = await _locked_link(t, link.id)
        if row is None:
            return SubmitResult("expired", Answers())
        return await _submit_in(t, link, row, digest, updates, mode, when)

    return await db.run_write(body)


async def _submit_in(
    t: db.Statements,
    link: LinkView,
    row: Mapping[str, Any],
    digest: str | None,
    updates: Sequence[tuple[str, Any]],
    mode: str | None,
    now: dt.datetime,
    items_fresh: bool = False,
    applied: Answers | None = None,
) -> SubmitResult:
    """The body of a submit, inside the caller's transaction with the link row locked.

    `applied`: the stored answers with `updates` already set on them (by `_validate_into`).
    """
    inst = instrument_of(link)
    answers = applied
    if answers is None:
        answers = Answers.from_json(json.loads(row["answers"] or "{}"))
        _apply(link, answers, inst, updates)
    if row["completed_at"] is not None:
        original = Answers.from_json(json.loads(row["answers"] or "{}")).digest()
        same = answers.digest() == original and (digest is None or digest == original)
        return SubmitResult(
            "already" if same else "different", answers, completed_at=_aware(row["completed_at"])
        )
    if link.expires_at <= now:
        return SubmitResult("expired", answers)
    missing = (
        None
        if _answered_all(link, answers, inst)
        else first_unanswered(steps_for(link, answers, inst), answers)
    )
    if missing is not None:
        if updates:
            update = ("UPDATE survey_link SET answers = ? WHERE id = ?", (answers.to_json(), link.id))
            await _write_responses(t, link, answers, inst, mode or link.mode, None, update, items_fresh)
        return SubmitResult("incomplete", answers, missing=missing)
    await _complete(t, link, answers, inst, mode or link.mode, now, items_fresh)
    return SubmitResult("completed", answers, completed_at=now)


async def _complete(
    t: db.Statements,
    link: LinkView,
    answers: Answers,
    inst: Instrument,
    mode: str,
    now: dt.datetime,
    items_fresh: bool,
) -> None:
    """Store the answers and close the link and its responses as completed at `now`."""
    update = _completion_update(link, answers, now)
    await _write_responses(t, link, answers, inst, mode, now, update, items_fresh)
    _mark_completed(link, answers, now)


def _mark_completed(link: LinkView, answers: Answers, now: dt.datetime) -> None:
    """The in-memory view after its completion was written."""
    link.completed_at = now
    link.answers = answers.copied()


def _completion_update(link: LinkView, answers: Answers, now: dt.datetime) -> tuple[str, tuple[Any, ...]]:
    """The link's UPDATE that completes it (for `_write_responses` and `_pg_link_writes`)."""
    return (
        "UPDATE survey_link SET answers = ?, completed_at = ?, opened_at = COALESCE(opened_at, ?) "
        "WHERE id = ?",
        (answers.to_json(), now, now, link.id),
    )


def _answered_all(link: LinkView, answers: Answers, inst: Instrument) -> bool:
    """Whether every step of the plan is answered (the quick test before looking for the first gap)."""
    keys = [str(i.item_id) for i in exit_items(link)]
    person, items = answers.person, answers.items
    return all(
        q.id in (items.get(keys[n - 1], {}) if n else person)
        for q, n, _ in plan_for(link, answers, inst).entries
    )


def _aware(value: Any) -> Any:
    """A timestamp read with the raw driver: SQLite hands back ISO text."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


_LINK_SELECT = (
    "SELECT sl.id, sl.person_key, sl.instrument_version, sl.scales, sl.mode, sl.lang, sl.answers, "
    "sl.expires_at, sl.completed_at, sl.token_hash, li.id AS item_id, li.referral, li.wave, li.response, "
    "o.code AS provider, o.service AS service FROM {links} LEFT JOIN link_item li ON li.link = sl.id "
    "LEFT JOIN referral r ON r.id = li.referral LEFT JOIN organisation o ON o.id = r.provider "
)


def _token_hash_or_none(token: str) -> str | None:
    return token_hash(token) if token and len(token) <= 100 else None


async def _link_by_token(
    t: db.Statements, token: str, lock: bool = True
) -> tuple[LinkView, dict[str, Any]] | None:
    """The link of a token, read (and on PostgreSQL locked, unless `lock` is false) on the statements'
    own connection.

    The same view as `surveys.links.resolve_link`, in one statement: the link's columns come on each
    of its item rows (a link has one to a few items), one round trip fewer on PostgreSQL.
    """
    hashed = _token_hash_or_none(token)
    if hashed is None:
        return None
    lock_clause = "" if t.sqlite or not lock else " FOR UPDATE OF sl"
    rows = await t.fetch(
        _LINK_SELECT.format(links="survey_link sl") + f"WHERE sl.token_hash = ? ORDER BY li.id{lock_clause}",
        hashed,
    )
    return _link_view(rows)


def _link_view(rows: Sequence[dict[str, Any]]) -> tuple[LinkView, dict[str, Any]] | None:
    """The link read by `_LINK_SELECT` (a row per item, in item order), with its first row."""
    if not rows:
        return None
    row = rows[0]
    link = LinkView(
        id=row["id"], person_key=row["person_key"], instrument_version=row["instrument_version"],
        scales=[s for s in row["scales"].split(",") if s], mode=row["mode"], lang=row["lang"],
        answers=msgspec.json.decode(row["answers"] or "{}"), expires_at=_aware(row["expires_at"]),
        completed_at=_aware(row["completed_at"]),
        items=[
            LinkItemView(item_id=i["item_id"], referral_pk=i["referral"], provider=i["provider"],
                         service=i["service"] or "", wave=i["wave"], response_id=i["response"])
            for i in rows
            if i["item_id"] is not None
        ],
    )  # fmt: skip
    return link, row


async def _read_links(hashes: list[str]) -> list[tuple[LinkView, dict[str, Any]] | None]:
    """PostgreSQL: the links of many token hashes, unlocked, in one statement (see `_LINK_READS`)."""
    wanted = list(dict.fromkeys(hashes))  # each once: the statement returns a row per item
    rows = await db.run_unlocked(
        lambda t: t.fetch(
            _LINK_SELECT.format(links="unnest(?::text[]) AS wanted(hash) JOIN survey_link sl "
                                      "ON sl.token_hash = wanted.hash") + "ORDER BY li.id",
            wanted,
        )
    )  # fmt: skip
    by_hash: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_hash.setdefault(row["token_hash"], []).append(row)
    # A view per call (the caller changes it), even when one token came twice.
    return [_link_view(by_hash.get(h, [])) for h in hashes]


@dataclass(slots=True)
class _Completion:
    """A compare-and-set completion (see `_complete_unlocked`)."""

    link: LinkView
    answers: Answers
    inst: Instrument
    mode: str
    now: dt.datetime
    expected: str  # the stored answers as read: the link is completed only if they are unchanged


async def _write_completions(batch: list[_Completion]) -> list[bool]:
    """PostgreSQL: complete many links in one statement (see `_COMPLETIONS`); True where written.

    Links are written in id order, the same in every batch, so that two batches never wait on each
    other's rows crosswise. A link that comes twice is written once: its other submits go the locked
    way, which finds it completed. If the statement fails (one transaction: nothing of it was
    written), each link is tried alone, so that one link's conflict does not fail the others.
    """
    first: dict[int, int] = {}
    for n, completion in enumerate(batch):
        first.setdefault(completion.link.id, n)
    chosen = sorted(first.values(), key=lambda n: batch[n].link.id)
    done = [False] * len(batch)
    try:
        written = await _compare_and_set([batch[n] for n in chosen])
    except Exception:
        if len(chosen) == 1:
            raise
        written = [await _compare_and_set_alone(batch[n]) for n in chosen]
    for n, ok in zip(chosen, written, strict=True):
        done[n] = ok
    return done


async def _compare_and_set_alone(completion: _Completion) -> bool:
    try:
        return (await _compare_and_set([completion]))[0]
    except db.UniqueViolation:
        return False  # a concurrent save made a response row the read did not see


async def _compare_and_set(completions: list[_Completion]) -> list[bool]:
    links: list[LinkWrites] = []
    for c in completions:
        current = {i.item_id: i.response_id for i in c.link.items}
        writes = _response_writes(c.link, c.answers, c.inst, c.mode, c.now, current)
        links.append((_completion_update(c.link, c.answers, c.now), writes, c.expected))
    sql, args = _pg_link_writes(links)
    row = await db.run_unlocked(lambda t: t.fetchrow(sql, *args))
    assert row is not None
    return [row[f"n{j}"] == 1 for j in range(len(links))]


# The submits that reach a statement in the same turn of the event loop share it (`surveys.coalesce`).
# 64 concurrent submits (bench/submit.py's load, 24 write connections then): 2,270-2,490 req/s over
# four runs with up to 16 writes a statement, against 1,180 with none shared, 2,180 with 32 and 2,360
# with 8.
_LINK_READS = Coalescer(_read_links, limit=64)
_COMPLETIONS = Coalescer(_write_completions, limit=16)


Problems = list[dict[str, str]]


async def submit_by_token(
    token: str, raw: Mapping[str, Any], mode: str | None = None
) -> tuple[LinkView | None, SubmitResult | None, Problems]:
    """The API's submit: look up, validate and complete in one transaction on one connection.

    Returns (None, None, []) for an unknown token, (link, None, problems) when an answer is invalid
    (nothing is saved), else (link, result, []).
    """
    now = _now()
    if not db.is_sqlite():
        completed = await _complete_unlocked(token, raw, mode, now)
        if completed is not None:
            link, answers = completed
            return link, SubmitResult("completed", answers, completed_at=now), []

    async def body(t: db.Statements) -> tuple[LinkView | None, SubmitResult | None, Problems]:
        found = await _link_by_token(t, token)
        if found is None:
            return None, None, []
        link, row = found
        if link.completed_at is None and link.expires_at <= now:
            return link, SubmitResult("expired", Answers()), []
        answers = Answers.from_json(link.answers)
        accepted, problems = _validate_into(link, answers, raw) if raw else ([], [])
        if problems:
            return link, None, problems
        result = await _submit_in(t, link, row, None, accepted, mode, now, items_fresh=True, applied=answers)
        return link, result, []

    return await db.run_write(body)


async def _complete_unlocked(
    token: str, raw: Mapping[str, Any], mode: str | None, now: dt.datetime
) -> tuple[LinkView, Answers] | None:
    """PostgreSQL's usual submit in two statements and no transaction: read the link without a lock,
    then complete it with one compare-and-set statement (`_pg_link_writes` with `expected`). Each
    statement is shared with the other submits of the same turn of the event loop.

    Returns the completed link and its answers, or None when this is not the plain case (unknown,
    completed, expired, invalid or incomplete, or the link changed in between, or a concurrent writer
    made a response row): the locked transaction then decides, as it does for every submit on SQLite.
    """
    hashed = _token_hash_or_none(token)
    found = await _LINK_READS(hashed) if hashed is not None else None
    if found is None:
        return None
    link, row = found
    if link.completed_at is not None or link.expires_at <= now:
        return None
    inst = instrument_of(link)
    answers = Answers.from_json(link.answers)
    _, problems = _validate_into(link, answers, raw)
    if problems or not _answered_all(link, answers, inst):
        return None
    if not await _COMPLETIONS(_Completion(link, answers, inst, mode or link.mode, now, row["answers"])):
        return None
    _mark_completed(link, answers, now)
    return link, answers


@cache
def _routing_order(id_version: str) -> tuple[str, ...]:
    """Question ids that some condition looks at, sorted: only answering one of these can change the
    steps (and `_routing_values` lists them in this order)."""
    inst = load_instrument(id_version)
    ids = {c.question for q in inst.questions for c in q.when}
    for pinned in inst.scales.values():
        ids |= {c.question for q in load_instrument(pinned).questions for c in q.when}
    return tuple(sorted(ids))


def validate_updates(link: LinkView, raw: Mapping[str, Any]) -> tuple[list[tuple[str, Any]], Problems]:
    """Validate answers by step key, in survey order; a step revealed by an earlier answer counts.

    Returns the validated (key, value) pairs and the problems, with the GOV.UK messages in English
    and Welsh. A key that is not a step of this survey (now) is a problem too.
    """
    return _validate_into(link, Answers.from_json(link.answers), raw)


def _validate_into(
    link: LinkView, answers: Answers, raw: Mapping[str, Any]
) -> tuple[list[tuple[str, Any]], Problems]:
    """`validate_updates`, setting each valid answer on `answers` as it goes."""
    inst = instrument_of(link)
    routing = _routing_order(inst.id_version)
    scopes = _Scopes(link, answers)
    pending = dict(raw)
    accepted: list[tuple[str, Any]] = []
    problems: Problems = []
    plan = plan_for(link, answers, inst)
    changed = True
    while pending and changed:
        changed = False
        for question, number, key in plan.entries:
            if key not in pending:
                continue
            value, err_en, err_cy = _check(question, pending.pop(key))
            if err_en:
                problems.append({"key": key, "message": err_en, "message_cy": err_cy or err_en})
                continue
            scopes[number][question.id] = value
            accepted.append((key, value))
            if question.id in routing:
                changed = True  # this answer may reveal or hide later steps: plan them again
                break
        if changed:
            plan = plan_for(link, answers, inst)
    for key in pending:
        problems.append({"key": key, "message": "This is not a question of this survey",
                         "message_cy": "Dydy hwn ddim yn gwestiwn yn yr arolwg hwn"})  # fmt: skip
    return accepted, problems


class _Scopes:
    """Where a plan entry's answer is set, by exit item number: the person's answers (0), else the item's."""

    __slots__ = ("answers", "keys")

    def __init__(self, link: LinkView, answers: Answers) -> None:
        self.answers = answers
        self.keys = [str(i.item_id) for i in exit_items(link)]

    def __getitem__(self, number: int) -> dict[str, Any]:
        if not number:
            return self.answers.person
        return self.answers.items.setdefault(self.keys[number - 1], {})


async def set_language(link: LinkView, lang: str) -> None:
    """Remember the person's language on the link, so every later page (and device) uses it."""
    if lang not in ("en", "cy") or lang == link.lang:
        return

    async def body(t: db.Statements) -> None:
        await t.execute("UPDATE survey_link SET lang = ? WHERE id = ?", lang, link.id)

    await db.run_write(body)
    link.lang = lang


async def support_dates(link: LinkView) -> dict[int, dt.date]:
    """The date each exit item's support started (or its referral date): how a combined survey tells
    the supports apart without naming the organisation."""
    from surveys.tables import Referral

    refs = [i.referral_pk for i in exit_items(link)]
    if len(refs) < 2:
        return {}
    rows = await Referral.select(Referral.id, Referral.support_start, Referral.referral_date).where(
        Referral.id.is_in(refs)
    )
    return {r["id"]: r["support_start"] or r["referral_date"] for r in rows}
