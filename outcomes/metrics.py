"""The metric set of shared/domain/metrics.md as three SQL aggregate statements, and their rows' shaping.

Everything row-level runs in the database (see `build_statements`): `volumes` counts each referral
where it is received / closed in the period, per group (with each group's distinct victims);
`victims` counts the whole area's distinct victims; `outcomes` finds, for each closed episode, its
earliest complete baseline and latest complete exit response by instant (exact ties: lowest /
highest id), reads every answer from those two responses only, and counts per group. Python only
merges the grouped rows (the whole area is the sum of the groups, except distinct victims) and turns
them into rates and means (`combine`, `shape_metrics`).

The SQL is the same on SQLite and PostgreSQL except where an engine needs its own form: how an
instant is read (SQLite keeps Timestamptz as text, possibly with a `T` or an offset, so it goes
through julianday()), how the top response is fetched (LATERAL on PostgreSQL), how the PHQ-9 / GAD-7
items are read from the `extra_answers` JSON text (json_extract / json_to_record, with the same
test of each item as written: the JSON integers 0..3 only), how distinct victims are counted, and
the fence against subquery flattening. Means and the SWEMWBS thresholds are summed as integers
(metric points in hundredths), so both engines give identical numbers, not just close ones.

PHQ-9 / GAD-7 (brief.md, as in NHS Talking Therapies; the rules of `scoring.talking_therapies_outcome`),
over the episodes of `exit_responses` with both scales complete in both their baseline and exit
response (`paired_n.phq_gad`, a count); rates over those paired episodes: `caseness_baseline`,
`caseness_exit` (PHQ-9 >= 10 or GAD-7 >= 8), `reliable_improvement` (PHQ-9 down 6+ or GAD-7 down
4+, and neither up as much), `reliable_deterioration` (PHQ-9 up 6+ or GAD-7 up 4+); rates over the
episodes that were a case at baseline: `recovery` (below both thresholds at exit) and
`reliable_recovery` (recovery and reliable improvement). All carry the suffix `.phq_gad`.

Indexes the statements rely on at national scale (ask for them in a migration):
`response (referral, wave, completed_at, id)` and
`referral (person_key, referral_date, support_start, support_end, provider)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from outcomes.scoring import (
    GAD7_CASENESS,
    GAD7_KEYS,
    GAD7_RELIABLE_CHANGE,
    PHQ9_CASENESS,
    PHQ9_KEYS,
    PHQ9_RELIABLE_CHANGE,
    SWEMWBS_METRIC_CENTI,
    SWEMWBS_RELIABLE_CHANGE_CENTI,
    rate,
)

# The answer vocabularies are the surveys' own: one definition, read here.
from surveys.fields import STATUSES
from surveys.responses import AREAS, SATISFACTION

Dialect = Literal["sqlite", "postgres"]

HELPED_ANSWERED: tuple[str, ...] = ("a_lot", "a_little", "no")
HELPED_YES: tuple[str, ...] = ("a_lot", "a_little")
SATISFACTION_ANSWERS: tuple[str, ...] = SATISFACTION
SATISFIED: tuple[str, ...] = SATISFACTION_ANSWERS[:3]
RIGHTS: tuple[int, ...] = tuple(range(1, 13))
# Bands of the number of distinct Victims' Code rights received: (name, lowest, highest).
RIGHTS_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-3", 0, 3),
    ("4-6", 4, 6),
    ("7-9", 7, 9),
    ("10-12", 10, 12),
)

# PHQ-9 / GAD-7 as in NHS Talking Therapies (brief.md), over the episodes with both scales complete in
# both responses: `paired_n` a count, the rest rates (recovery and reliable recovery over the episodes
# that were a case at baseline, the others over all paired episodes).
PHQ_GAD_METRICS: tuple[str, ...] = (
    "paired_n",
    "caseness_baseline",
    "caseness_exit",
    "reliable_improvement",
    "reliable_deterioration",
    "recovery",
    "reliable_recovery",
)
# Both scales' items, in the order the SQL reads them (PHQ-9 first).
TT_KEYS: tuple[str, ...] = PHQ9_KEYS + GAD7_KEYS
TT_CODES: tuple[str, ...] = ("0", "1", "2", "3")

AREA_METRICS: tuple[str, ...] = (
    "helped_n",
    "helped",
    "helped_pct",
    "paired_n",
    "improved",
    "deteriorated",
    "no_change",
    "improved_pct",
    "mean_change",
)

# Breakdown attribute -> SQL expression over `r` (referral) and `o` (its provider organisation).
# Booleans become the text 'true' / 'false' in SQL, so both engines render and group them alike.
BREAKDOWNS: dict[str, str] = {
    "provider": "o.code",
    "service": "o.service",
    "crime_group": "r.crime_type",
    "age_band": "r.age_band",
    "sex": "r.sex",
    "ethnicity": "r.ethnicity",
    "disability": "r.disability",
    "source": "r.source",
    "domestic_abuse": "CASE WHEN r.domestic_abuse THEN 'true' ELSE 'false' END",
    "hate_crime": "CASE WHEN r.hate_crime THEN 'true' ELSE 'false' END",
    "repeat_victim": "CASE WHEN r.repeat_victim THEN 'true' ELSE 'false' END",
}


def metric_names() -> list[str]:
    """Every metric name of one group, in the order of metrics.md (the keys of `metrics`)."""
    names = ["referrals_received", "victims_referred"]
    names += [f"referrals_by_status.{s}" for s in STATUSES]
    names += ["victims_supported", "episodes_closed", "exit_responses", "exit_response_rate"]
    for a in AREAS:
        names += [f"{kind}.{a}" for kind in AREA_METRICS]
    names += [
        "helped_cope_and_recover",
        "helped_cope_and_recover_pct",
        "answered",
        "satisfied",
        "satisfied_pct",
    ]
    names += [f"rights_received.{r}" for r in RIGHTS]
    names += [f"satisfied_pct_by_rights.{b}" for b, _, _ in RIGHTS_BANDS]
    names += [
        f"{m}.swemwbs"
        for m in (
            "paired_n",
            "mean_baseline",
            "mean_exit",
            "mean_change",
            "reliable_improvement",
            "reliable_deterioration",
        )
    ]
    names += [f"{m}.phq_gad" for m in PHQ_GAD_METRICS]
    return names


def check_breakdown(by: Sequence[str] | None) -> list[str]:
    """The breakdown attributes, validated: known names, no repeats; ValueError otherwise."""
    attrs = list(by or [])
    for attr in attrs:
        if attr not in BREAKDOWNS:
            raise ValueError(f"unknown breakdown {attr!r}; use one of {', '.join(BREAKDOWNS)}")
    if len(set(attrs)) != len(attrs):
        raise ValueError(f"a breakdown attribute is repeated in {attrs}")
    return attrs


def _in(values: Sequence[str]) -> str:
    # Fixed vocabulary from this module, never user input: safe to inline as literals.
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _swemwbs_centi(alias: str) -> str:
    """SQL: the SWEMWBS metric score of response `alias` in hundredths, NULL unless all 7 items 1..5."""
    items = [f"{alias}.swemwbs_{i}" for i in range(1, 8)]
    complete = " AND ".join(f"{i} BETWEEN 1 AND 5" for i in items)
    table = " ".join(f"WHEN {raw} THEN {centi}" for raw, centi in SWEMWBS_METRIC_CENTI.items())
    return f"CASE WHEN {complete} THEN CASE {' + '.join(items)} {table} END END"


# PHQ-9 and GAD-7 totals travel as one integer per response, phq + TT_PACK * gad (NULL unless both are
# complete), so the per-episode layer carries one value per response and no further layer is needed.
TT_PACK = 100


def _tt_sqlite(alias: str) -> str:
    """SQLite: the packed PHQ-9 / GAD-7 totals of response `alias` (NULL unless all 16 items are the
    JSON integers 0..3).

    The test: one json_extract of all 16 items gives a JSON array with each value written as stored
    (`[2,1,null,"2",true,2.0,...]`), so a complete set is exactly `[d,d,...,d]` with digits 0..3.
    The totals: each item's json_extract, which reuses the statement's cached parse of the same text.
    """
    answers = f"{alias}.extra_answers"
    paths = ", ".join(f"'$.{k}'" for k in TT_KEYS)
    complete = "'[[]" + ",".join(["[0-3]"] * len(TT_KEYS)) + "]'"
    phq = " + ".join(f"json_extract({answers}, '$.{k}')" for k in PHQ9_KEYS)
    gad = " + ".join(f"json_extract({answers}, '$.{k}')" for k in GAD7_KEYS)
    return f"CASE WHEN json_extract({answers}, {paths}) GLOB {complete} THEN {phq} + {TT_PACK} * ({gad}) END"


def _tt_postgres(alias: str) -> str:
    """PostgreSQL: the packed PHQ-9 / GAD-7 totals of response `alias` (NULL unless all 16 items are
    the JSON integers 0..3).

    One json_to_record per response that has extra answers (a scalar subquery behind the CASE, so the
    others cost nothing; a LATERAL function scan runs for every episode, and was no faster). Its columns
    are typed `json`, which keeps each value as written, so `::text` is `2` only for the number 2
    (`"2"`, `true`, `2.0` stay themselves): the same test as the SQLite one. Only an object is read
    (json_to_record fails on anything else; SQLite finds no items there).
    """
    answers = f"{alias}.extra_answers"
    cols = ", ".join(f"{k} json" for k in TT_KEYS)
    complete = " AND ".join(f"j.{k}::text IN {_in(TT_CODES)}" for k in TT_KEYS)
    phq = " + ".join(f"(j.{k}::text)::int" for k in PHQ9_KEYS)
    gad = " + ".join(f"(j.{k}::text)::int" for k in GAD7_KEYS)
    blank = "' ' || chr(9) || chr(10) || chr(13)"
    obj = f"left(ltrim({answers}, {blank}), 1) = chr(123)"  # '{', which Piccolo would read as a placeholder
    return (
        f"CASE WHEN {obj} THEN (SELECT CASE WHEN {complete} THEN {phq} + {TT_PACK} * ({gad}) END "
        f"FROM json_to_record({answers}::json) AS j({cols})) END"
    )


def _rights_count(mask: str) -> str:
    # Portable popcount of bits 0..11 (right r is bit r-1): neither engine has one for integers.
    return " + ".join(f"(({mask} >> {r - 1}) & 1)" for r in RIGHTS)


@dataclass(frozen=True, slots=True)
class Tables:
    """Table names of Organisation, Referral and Response (Piccolo's, so never user input)."""

    organisation: str = "organisation"
    referral: str = "referral"
    response: str = "response"


@dataclass(frozen=True, slots=True)
class Statement:
    """One aggregate query of the metric set: its name, SQL with Piccolo `{}` placeholders, arguments."""

    name: str
    sql: str
    args: list[Any]
    settings: tuple[str, ...] = ()  # run just before it, in the same transaction


def session_settings(dialect: Dialect, own_transaction: bool = True) -> list[str]:
    """Statements run first in the read transaction of `compute_metrics`.

    SQLite: temporary b-trees (GROUP BY, ORDER BY) in memory and a bounded 128 MiB page cache, as
    the defaults (files, 2 MiB) make the per-person grouping several times slower. Not mmap: it saves
    a fifth of the CPU at national scale, but every page read stays mapped, so the process's resident
    size grows to the size of the file (1.3 GiB at 1.5 million referrals); a larger page cache saved
    nothing measurable.
    PostgreSQL: one snapshot for all the statements (REPEATABLE READ; only when the transaction is
    our own, as it must come before any query), enough work_mem for the groupings to stay in
    memory, and no JIT (its compile time exceeds what it saves on these statements).
    """
    if dialect == "sqlite":
        return ["PRAGMA temp_store = MEMORY", "PRAGMA cache_size = -131072"]
    snapshot = ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"] if own_transaction else []
    return [*snapshot, "SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off"]


def _episode_columns() -> list[str]:
    """SQL select items of the per-episode layer, over its exit response `x` and baseline response `b`.

    Only what is costly or needs both responses is computed here (once per episode, behind a fence):
    the state changes, the rights count and the SWEMWBS scores; plain answers pass through and are
    tested where they are counted (`_outcome_aggregates`).
    """
    cols = []
    for a in AREAS:
        paired = f"b.{a} BETWEEN 1 AND 5 AND x.{a} BETWEEN 1 AND 5"
        cols += [f"x.helped_{a} AS h_{a}", f"CASE WHEN {paired} THEN x.{a} - b.{a} END AS d_{a}"]
    cols += [
        "x.satisfaction AS sat",
        "x.rights_mask AS mask",
        f"CASE WHEN x.rights_mask IS NOT NULL THEN {_rights_count('x.rights_mask')} END AS nrights",
        f"{_swemwbs_centi('b')} AS sw_b",
        f"{_swemwbs_centi('x')} AS sw_x",
    ]
    return cols


def _count(alias: str, condition: str) -> str:
    # COUNT(*) FILTER: the aggregate step runs only for the rows that count, and it is 0 (not NULL)
    # over no rows on both engines.
    return f"COUNT(*) FILTER (WHERE {condition}) AS {alias}"


def _outcome_aggregates() -> list[str]:
    """SQL aggregate items over the episodes `oc`; aliases are read back by `shape_metrics`."""
    aggs = ["COUNT(*) AS exits"]
    for a in AREAS:
        aggs += [
            _count(f"hn_{a}", f"oc.h_{a} IN {_in(HELPED_ANSWERED)}"),
            _count(f"hy_{a}", f"oc.h_{a} IN {_in(HELPED_YES)}"),
            f"COUNT(oc.d_{a}) AS pn_{a}",
            _count(f"up_{a}", f"oc.d_{a} >= 1"),
            _count(f"down_{a}", f"oc.d_{a} <= -1"),
            # Zero changes add nothing; COALESCE keeps a sum of only zeros a 0 (a mean of 0.0).
            f"COALESCE(SUM(oc.d_{a}) FILTER (WHERE oc.d_{a} <> 0), 0) AS dsum_{a}",
        ]
    either = "oc.h_cope IN {v} OR oc.h_recover IN {v}"
    aggs += [
        _count("hcr", either.format(v=_in(HELPED_YES))),
        _count("hcr_n", either.format(v=_in(HELPED_ANSWERED))),
        _count("sat_n", f"oc.sat IN {_in(SATISFACTION_ANSWERS)}"),
        _count("sat_y", f"oc.sat IN {_in(SATISFIED)}"),
        "COUNT(oc.mask) AS rights_n",
    ]
    aggs += [_count(f"right_{r}", f"(oc.mask & {1 << (r - 1)}) <> 0") for r in RIGHTS]
    for i, (_, lo, hi) in enumerate(RIGHTS_BANDS):
        band = f"oc.nrights BETWEEN {lo} AND {hi}"
        aggs += [
            _count(f"band{i}_n", f"{band} AND oc.sat IN {_in(SATISFACTION_ANSWERS)}"),
            _count(f"band{i}_y", f"{band} AND oc.sat IN {_in(SATISFIED)}"),
        ]
    paired = "oc.sw_b IS NOT NULL AND oc.sw_x IS NOT NULL"
    aggs += [
        _count("sw_n", paired),
        f"COALESCE(SUM(oc.sw_b) FILTER (WHERE {paired}), 0) AS sw_bsum",
        f"COALESCE(SUM(oc.sw_x) FILTER (WHERE {paired}), 0) AS sw_xsum",
        _count("sw_up", f"{paired} AND oc.sw_x - oc.sw_b >= {SWEMWBS_RELIABLE_CHANGE_CENTI}"),
        _count("sw_down", f"{paired} AND oc.sw_b - oc.sw_x >= {SWEMWBS_RELIABLE_CHANGE_CENTI}"),
    ]
    # PHQ-9 / GAD-7 (scoring.talking_therapies_outcome), from the packed totals of each response.
    ph_b, ga_b = f"(oc.tt_b % {TT_PACK})", f"(oc.tt_b / {TT_PACK})"
    ph_x, ga_x = f"(oc.tt_x % {TT_PACK})", f"(oc.tt_x / {TT_PACK})"
    paired = "oc.tt_b IS NOT NULL AND oc.tt_x IS NOT NULL"
    case_b = f"({ph_b} >= {PHQ9_CASENESS} OR {ga_b} >= {GAD7_CASENESS})"
    case_x = f"({ph_x} >= {PHQ9_CASENESS} OR {ga_x} >= {GAD7_CASENESS})"
    worse = f"({ph_x} - {ph_b} >= {PHQ9_RELIABLE_CHANGE} OR {ga_x} - {ga_b} >= {GAD7_RELIABLE_CHANGE})"
    better = (
        f"({ph_b} - {ph_x} >= {PHQ9_RELIABLE_CHANGE} OR {ga_b} - {ga_x} >= {GAD7_RELIABLE_CHANGE}) "
        f"AND NOT {worse}"
    )
    recovered = f"{case_b} AND NOT {case_x}"
    aggs += [
        _count("tt_n", paired),
        _count("tt_cb", f"{paired} AND {case_b}"),
        _count("tt_cx", f"{paired} AND {case_x}"),
        _count("tt_ri", f"{paired} AND {better}"),
        _count("tt_rd", f"{paired} AND {worse}"),
        _count("tt_rec", f"{paired} AND {recovered}"),
        _count("tt_rr", f"{paired} AND {recovered} AND {better}"),
    ]
    return aggs


# SQL conditions on a referral `r` for the period (:start, :end both inclusive; dates compare as dates,
# and on SQLite as their ISO text, which sorts the same).
RECEIVED = "r.referral_date >= :start AND r.referral_date <= :end"
# Open at any time in the period: started by its end, and not ended before its start.
SUPPORTED = (
    "r.support_start IS NOT NULL AND r.support_start <= :end "
    "AND (r.support_end IS NULL OR r.support_end >= :start)"
)
# Only episodes (support_start set) close; a support_end alone makes no episode.
CLOSED = "r.support_start IS NOT NULL AND r.support_end >= :start AND r.support_end <= :end"

_GROUP_COL = re.compile(r"g\d+")
_TOKEN = re.compile(r":(start|end|provider)\b")


def _bind(name: str, sql: str, values: Mapping[str, Any], settings: tuple[str, ...] = ()) -> Statement:
    """Turn :start / :end / :provider into Piccolo `{}` placeholders, with arguments in order."""
    args: list[Any] = []

    def placeholder(m: re.Match[str]) -> str:
        args.append(values[m.group(1)])
        return "{}"

    return Statement(name, _TOKEN.sub(placeholder, sql), args, settings)


def build_statements(
    dialect: Dialect,
    start: date,
    end: date,
    by: Sequence[str] | None = None,
    provider: str | None = None,
    tables: Tables | None = None,
) -> list[Statement]:
    """The aggregate queries that together compute every metric, for each `by` group.

    - `volumes`: per group, referrals received (by status) and episodes closed. Groups come from all
      stored referrals (of the provider, when filtered), whatever their dates, so a group may be all
      zeros; the whole area is the sum of the groups.
      With `by`, also the distinct victims referred / supported of each group.
    - `victims`: distinct victims referred / supported over the whole area (distinct counts do not add
      up over groups).
    - `outcomes`: per group, over closed episodes with a complete exit response, every outcome,
      satisfaction, rights, SWEMWBS and PHQ-9 / GAD-7 count and sum (all additive, so the whole area
      is their sum).
    Each returns columns g0, g1, ... (the `by` values) and aggregates named as `shape_metrics` reads.
    """
    attrs = check_breakdown(by)
    t = tables or Tables()
    values = {"start": start, "end": end, "provider": provider}
    dims = "".join(f"{BREAKDOWNS[a]} AS g{i}, " for i, a in enumerate(attrs))
    gcols = [f"g{i}" for i in range(len(attrs))]

    def group_by(alias: str, *more: str) -> str:
        cols = [f"{alias}.{g}" for g in gcols] + list(more)
        return f" GROUP BY {', '.join(cols)}" if cols else ""

    def keys(alias: str) -> str:
        return "".join(f"{alias}.{g}, " for g in gcols)

    # The organisation only when a breakdown reads it: the statements over all referrals then read
    # nothing but the referral table (or a covering index of it).
    source = f"{t.referral} r"
    if any(BREAKDOWNS[a].startswith("o.") for a in attrs):
        source += f" JOIN {t.organisation} o ON o.id = r.provider"
    only = (
        f" AND r.provider IN (SELECT id FROM {t.organisation} WHERE code = :provider)"
        if provider is not None
        else ""
    )
    fence = " LIMIT -1" if dialect == "sqlite" else " OFFSET 0"

    # One plain scan of every stored referral (groups need all of them anyway), each one counted where
    # its FILTER holds. A WHERE of received or closed in the period made SQLite walk two indexes with a
    # table lookup per referral: 2-3x slower whenever most referrals are in the period, as in a year's
    # report. A subquery computing the flags first cost SQLite more than the repeated date tests.
    counts = [_count("received", RECEIVED), _count("closed", CLOSED)]
    # The status test first: it fails for all but one status, so the dates are read once per referral.
    counts += [_count(f"st_{s}", f"r.status = '{s}' AND {RECEIVED}") for s in STATUSES]
    if gcols:
        # Per group, distinct victims come with the volumes: one grouping of the referrals, and a
        # distinct set per group (half the time of a second grouping by group and person on SQLite).
        counts += [
            f"COUNT(DISTINCT CASE WHEN {RECEIVED} THEN r.person_key END) AS victims_referred",
            f"COUNT(DISTINCT CASE WHEN {SUPPORTED} THEN r.person_key END) AS victims_supported",
        ]
    group_dims = ", ".join(BREAKDOWNS[a] for a in attrs)
    volumes = (
        f"SELECT {dims}{', '.join(counts)} FROM {source} WHERE 1 = 1{only}"
        f"{f' GROUP BY {group_dims}' if attrs else ''}"
    )
    # The whole area's distinct victims from the (person_key, dates, provider) index read in order, no
    # DISTINCT set of a million keys. SQLite: one count of distinct keys per figure, which it does in
    # index order (each key compared with the previous one); the unary + keeps it off the
    # referral_date index, which would visit the table for every referral of the period.
    # PostgreSQL (which sorts for a DISTINCT): one row per person, then a plain sum.
    if dialect == "sqlite":
        received = RECEIVED.replace("r.referral_date", "+r.referral_date")
        victims = (
            f"SELECT (SELECT COUNT(DISTINCT r.person_key) FROM {t.referral} r WHERE {received}{only}) "
            f"AS victims_referred, (SELECT COUNT(DISTINCT r.person_key) FROM {t.referral} r "
            f"WHERE {SUPPORTED}{only}) AS victims_supported"
        )
    else:
        whole_person = (
            f"SELECT MAX(CASE WHEN {RECEIVED} THEN 1 ELSE 0 END) AS vr, "
            f"MAX(CASE WHEN {SUPPORTED} THEN 1 ELSE 0 END) AS vs FROM {t.referral} r "
            f"WHERE (({RECEIVED}) OR ({SUPPORTED})){only} GROUP BY r.person_key"
        )
        victims = (
            f"SELECT SUM(p.vr) AS victims_referred, SUM(p.vs) AS victims_supported FROM ({whole_person}) p"
        )
    # PostgreSQL hashes the ~1 million people (spilling to disk) unless told not to; walking the
    # covering index in order and grouping as it goes is 2-3x faster.
    ordered = ("SET LOCAL enable_hashagg = off",) if dialect == "postgres" else ()
    hashed = ("SET LOCAL enable_hashagg = on",) if dialect == "postgres" else ()
    statements = [_bind("volumes", volumes, values), _bind("victims", victims, values, ordered)]

    closed = f"SELECT {dims}r.id AS rid FROM {source} WHERE {CLOSED}{only}"
    complete = "s.referral = c.rid AND s.wave = '{wave}' AND s.completed_at IS NOT NULL"
    if dialect == "postgres":
        # PostgreSQL: a LATERAL top-1 per episode walks the (referral, wave, completed_at, id) index in
        # order; scalar subqueries there made the planner hash the whole response table twice.
        def lateral(wave: str, order: str) -> str:
            return (
                f"(SELECT * FROM {t.response} s WHERE {complete.format(wave=wave)} "
                f"ORDER BY s.completed_at {order}, s.id {order} LIMIT 1)"
            )

        scales = [f"{_tt_postgres('b')} AS tt_b", f"{_tt_postgres('x')} AS tt_x"]
        answers = (
            f"SELECT {keys('c')}{', '.join(_episode_columns() + scales)} FROM ({closed}) c "
            f"JOIN LATERAL {lateral('exit', 'DESC')} x ON TRUE "
            f"LEFT JOIN LATERAL {lateral('baseline', 'ASC')} b ON TRUE"
        )
    else:
        # SQLite (no LATERAL): the id of the top response per episode as a scalar subquery, from the
        # (referral, wave, completed_at, id) index alone; ordered by julianday(), which reads every text
        # form SQLite may hold (space or T, any offset) as a UTC instant, with the id breaking ties as
        # in the PostgreSQL form. The baseline is looked for only once an exit response was found.
        def pick(wave: str, order: str) -> str:
            return (
                f"(SELECT s.id FROM {t.response} s WHERE {complete.format(wave=wave)} "
                f"ORDER BY julianday(s.completed_at) {order}, s.id {order} LIMIT 1)"
            )

        # Episodes in referral order: each one's responses are then next to the previous one's in the
        # (referral, ...) index, which is read in order rather than all over (a third less time for
        # the look-ups at national scale).
        closed = f"SELECT c.*, {pick('exit', 'DESC')} AS ex_id FROM ({closed} ORDER BY r.id{fence}) c"
        scales = [f"{_tt_sqlite('b')} AS tt_b", f"{_tt_sqlite('x')} AS tt_x"]
        answers = (
            f"SELECT {keys('c')}{', '.join(_episode_columns() + scales)} FROM ({closed}) c "
            f"JOIN {t.response} x ON x.id = c.ex_id "
            f"LEFT JOIN {t.response} b ON b.id = {pick('baseline', 'ASC')}"
        )
    # The fence again: flattened, each per-episode expression (the SWEMWBS table, the rights count,
    # the changes) was re-evaluated in every aggregate that reads it, 3-8 times over.
    outcomes = (
        f"SELECT {keys('oc')}{', '.join(_outcome_aggregates())} FROM ({answers}{fence}) oc{group_by('oc')}"
    )
    statements.append(_bind("outcomes", outcomes, values, hashed))
    return statements


def _int(row: Mapping[str, Any], key: str) -> int:
    # SUM over no rows is NULL, and PostgreSQL returns bigint / numeric: normalise to int.
    value = row.get(key)
    return 0 if value is None else int(value)


def _mean(total: Any, count: int, scale: int = 1) -> float | None:
    if count == 0 or total is None:
        return None
    return int(total) / count / scale


def shape_metrics(row: Mapping[str, Any]) -> dict[str, Any]:
    """One aggregated row -> the metrics of metrics.md (flat names, rates as Wilson rate objects)."""
    m: dict[str, Any] = {
        "referrals_received": _int(row, "received"),
        "victims_referred": _int(row, "victims_referred"),
    }
    for s in STATUSES:
        m[f"referrals_by_status.{s}"] = _int(row, f"st_{s}")
    closed, exits = _int(row, "closed"), _int(row, "exits")
    m["victims_supported"] = _int(row, "victims_supported")
    m["episodes_closed"] = closed
    m["exit_responses"] = exits
    m["exit_response_rate"] = rate(exits, closed)
    for a in AREAS:
        hn, hy, pn = _int(row, f"hn_{a}"), _int(row, f"hy_{a}"), _int(row, f"pn_{a}")
        up, down = _int(row, f"up_{a}"), _int(row, f"down_{a}")
        m[f"helped_n.{a}"] = hn
        m[f"helped.{a}"] = hy
        m[f"helped_pct.{a}"] = rate(hy, hn)
        m[f"paired_n.{a}"] = pn
        m[f"improved.{a}"] = up
        m[f"deteriorated.{a}"] = down
        m[f"no_change.{a}"] = pn - up - down
        m[f"improved_pct.{a}"] = rate(up, pn)
        m[f"mean_change.{a}"] = _mean(row.get(f"dsum_{a}"), pn)
    m["helped_cope_and_recover"] = _int(row, "hcr")
    m["helped_cope_and_recover_pct"] = rate(_int(row, "hcr"), _int(row, "hcr_n"))
    m["answered"] = _int(row, "sat_n")
    m["satisfied"] = _int(row, "sat_y")
    m["satisfied_pct"] = rate(_int(row, "sat_y"), _int(row, "sat_n"))
    rights_n = _int(row, "rights_n")
    for r in RIGHTS:
        m[f"rights_received.{r}"] = rate(_int(row, f"right_{r}"), rights_n)
    for i, (band, _, _) in enumerate(RIGHTS_BANDS):
        m[f"satisfied_pct_by_rights.{band}"] = rate(_int(row, f"band{i}_y"), _int(row, f"band{i}_n"))
    sw_n = _int(row, "sw_n")
    mean_b = _mean(row.get("sw_bsum"), sw_n, 100)
    mean_x = _mean(row.get("sw_xsum"), sw_n, 100)
    m["paired_n.swemwbs"] = sw_n
    m["mean_baseline.swemwbs"] = mean_b
    m["mean_exit.swemwbs"] = mean_x
    m["mean_change.swemwbs"] = None if sw_n == 0 else (int(row["sw_xsum"]) - int(row["sw_bsum"])) / sw_n / 100
    m["reliable_improvement.swemwbs"] = _int(row, "sw_up")
    m["reliable_deterioration.swemwbs"] = _int(row, "sw_down")
    tt_n, tt_cases = _int(row, "tt_n"), _int(row, "tt_cb")
    m["paired_n.phq_gad"] = tt_n
    m["caseness_baseline.phq_gad"] = rate(tt_cases, tt_n)
    m["caseness_exit.phq_gad"] = rate(_int(row, "tt_cx"), tt_n)
    m["reliable_improvement.phq_gad"] = rate(_int(row, "tt_ri"), tt_n)
    m["reliable_deterioration.phq_gad"] = rate(_int(row, "tt_rd"), tt_n)
    m["recovery.phq_gad"] = rate(_int(row, "tt_rec"), tt_cases)
    m["reliable_recovery.phq_gad"] = rate(_int(row, "tt_rr"), tt_cases)
    return m


def _sort_key(values: Sequence[Any]) -> tuple[tuple[int, str], ...]:
    # Sorted in Python, not SQL: the engines' collations differ, and NULL must sort the same on both.
    return tuple((1, "") if v is None else (0, str(v)) for v in values)


def combine(results: Mapping[str, Sequence[Mapping[str, Any]]], by: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of the `build_statements` queries -> `groups`: the whole area first, then every group.

    Groups are those of `volumes` (every combination present among the stored referrals); additive
    counts of the whole area are the sums over groups, distinct victims come from `victims`.
    """
    width = len(by)

    def key(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[f"g{i}"] for i in range(width))

    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in results["volumes"]:
        merged[key(row)] = dict(row)
    for row in results.get("outcomes", []):
        merged.setdefault(key(row), {}).update(row)
    whole: dict[str, int] = {}
    for row in merged.values():
        for k, v in row.items():
            if (
                not _GROUP_COL.fullmatch(k)
                and k not in ("victims_referred", "victims_supported")
                and v is not None
            ):
                whole[k] = whole.get(k, 0) + int(v)
    for row in results["victims"][:1]:
        whole.update({k: 0 if v is None else int(v) for k, v in row.items()})
    groups: list[dict[str, Any]] = [{"by": {}, "metrics": shape_metrics(whole)}]
    if width:
        for group in sorted(merged, key=_sort_key):
            groups.append({"by": dict(zip(by, group, strict=True)), "metrics": shape_metrics(merged[group])})
    return groups
