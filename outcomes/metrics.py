"""The metric set of shared/domain/metrics.md as three SQL aggregate statements, and their rows' shaping.

Everything row-level runs in the database (see `build_statements`): `volumes` flags each referral as
received / closed in the period and sums per group (with each group's distinct victims); `victims`
counts the whole area's distinct victims person by person; `outcomes` finds, for each closed episode,
its earliest complete baseline and latest complete exit response by instant (exact ties: lowest /
highest id), reads every answer from those two responses only, and sums per group. Python only
merges the grouped rows (the whole area is the sum of the groups, except distinct victims) and turns
them into rates and means (`combine`, `shape_metrics`).

The SQL is the same on SQLite and PostgreSQL except where an engine needs its own form: how an
instant is read (SQLite keeps Timestamptz as text, possibly with a `T` or an offset, so it goes
through julianday()), how the top response is fetched (LATERAL on PostgreSQL), and the fence against
subquery flattening. Means and the SWEMWBS thresholds are summed as integers (metric points in
hundredths), so both engines give identical numbers, not just close ones.

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

from outcomes.scoring import SWEMWBS_METRIC_CENTI, SWEMWBS_RELIABLE_CHANGE_CENTI, rate

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
    the defaults (files, 2 MiB) make the per-person grouping several times slower.
    PostgreSQL: one snapshot for all the statements (REPEATABLE READ; only when the transaction is
    our own, as it must come before any query), enough work_mem for the groupings to stay in
    memory, and no JIT (its compile time exceeds what it saves on these statements).
    """
    if dialect == "sqlite":
        return ["PRAGMA temp_store = MEMORY", "PRAGMA cache_size = -131072"]
    snapshot = ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"] if own_transaction else []
    return [*snapshot, "SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off"]


def _instant(dialect: Dialect, column: str) -> str:
    # SQLite stores Timestamptz as text ("2025-01-01 10:00:00+00:00", or with T / an offset when
    # written by other tools); julianday() reads all of them as one UTC instant (to the millisecond).
    return f"julianday({column})" if dialect == "sqlite" else column


def _episode_columns() -> list[str]:
    """SQL select items of `outc`: one row per closed episode with a complete exit response."""
    cols = []
    for a in AREAS:
        paired = f"b.{a} BETWEEN 1 AND 5 AND x.{a} BETWEEN 1 AND 5"
        cols += [
            f"CASE WHEN x.helped_{a} IN {_in(HELPED_ANSWERED)} THEN 1 ELSE 0 END AS hn_{a}",
            f"CASE WHEN x.helped_{a} IN {_in(HELPED_YES)} THEN 1 ELSE 0 END AS hy_{a}",
            f"CASE WHEN {paired} THEN 1 ELSE 0 END AS pn_{a}",
            f"CASE WHEN {paired} THEN x.{a} - b.{a} END AS d_{a}",
        ]
    cols += [
        f"CASE WHEN x.helped_cope IN {_in(HELPED_YES)} OR x.helped_recover IN {_in(HELPED_YES)} "
        "THEN 1 ELSE 0 END AS hcr",
        f"CASE WHEN x.helped_cope IN {_in(HELPED_ANSWERED)} OR x.helped_recover IN {_in(HELPED_ANSWERED)} "
        "THEN 1 ELSE 0 END AS hcr_n",
        f"CASE WHEN x.satisfaction IN {_in(SATISFACTION_ANSWERS)} THEN 1 ELSE 0 END AS sat_n",
        f"CASE WHEN x.satisfaction IN {_in(SATISFIED)} THEN 1 ELSE 0 END AS sat_y",
        "x.rights_mask AS mask",
        f"CASE WHEN x.rights_mask IS NOT NULL THEN {_rights_count('x.rights_mask')} END AS nrights",
        f"{_swemwbs_centi('b')} AS sw_b",
        f"{_swemwbs_centi('x')} AS sw_x",
    ]
    return cols


def _outcome_aggregates() -> list[str]:
    """SQL aggregate items over `outc oc`; aliases are read back by `shape_metrics`."""
    aggs = ["COUNT(*) AS exits"]
    for a in AREAS:
        aggs += [
            f"SUM(oc.hn_{a}) AS hn_{a}",
            f"SUM(oc.hy_{a}) AS hy_{a}",
            f"SUM(oc.pn_{a}) AS pn_{a}",
            f"SUM(CASE WHEN oc.d_{a} >= 1 THEN 1 ELSE 0 END) AS up_{a}",
            f"SUM(CASE WHEN oc.d_{a} <= -1 THEN 1 ELSE 0 END) AS down_{a}",
            f"SUM(oc.d_{a}) AS dsum_{a}",
        ]
    aggs += [
        "SUM(oc.hcr) AS hcr",
        "SUM(oc.hcr_n) AS hcr_n",
        "SUM(oc.sat_n) AS sat_n",
        "SUM(oc.sat_y) AS sat_y",
    ]
    aggs.append("SUM(CASE WHEN oc.mask IS NOT NULL THEN 1 ELSE 0 END) AS rights_n")
    aggs += [f"SUM(CASE WHEN (oc.mask & {1 << (r - 1)}) <> 0 THEN 1 ELSE 0 END) AS right_{r}" for r in RIGHTS]
    for i, (_, lo, hi) in enumerate(RIGHTS_BANDS):
        band = f"oc.nrights BETWEEN {lo} AND {hi}"
        aggs += [
            f"SUM(CASE WHEN {band} THEN oc.sat_n ELSE 0 END) AS band{i}_n",
            f"SUM(CASE WHEN {band} THEN oc.sat_y ELSE 0 END) AS band{i}_y",
        ]
    paired = "oc.sw_b IS NOT NULL AND oc.sw_x IS NOT NULL"
    aggs += [
        f"SUM(CASE WHEN {paired} THEN 1 ELSE 0 END) AS sw_n",
        f"SUM(CASE WHEN {paired} THEN oc.sw_b ELSE 0 END) AS sw_bsum",
        f"SUM(CASE WHEN {paired} THEN oc.sw_x ELSE 0 END) AS sw_xsum",
        f"SUM(CASE WHEN {paired} AND oc.sw_x - oc.sw_b >= {SWEMWBS_RELIABLE_CHANGE_CENTI} THEN 1 ELSE 0 END) "
        "AS sw_up",
        f"SUM(CASE WHEN {paired} AND oc.sw_b - oc.sw_x >= {SWEMWBS_RELIABLE_CHANGE_CENTI} THEN 1 ELSE 0 END) "
        "AS sw_down",
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
      satisfaction, rights and SWEMWBS count and sum (all additive, so the whole area is their sum).
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

    # One plain scan of every stored referral (groups need all of them anyway). A WHERE of received
    # or closed in the period made SQLite walk two indexes with a table lookup per referral: 2-3x
    # slower whenever most referrals are in the period, as in a year's report.
    # The flags are computed once per referral behind a fence (no subquery flattening), then summed.
    fence = " LIMIT -1" if dialect == "sqlite" else " OFFSET 0"
    per_status = ", ".join(
        f"SUM(CASE WHEN v.status = '{s}' THEN v.rec ELSE 0 END) AS st_{s}" for s in STATUSES
    )
    # Per group, distinct victims come with the volumes: one grouping of the referrals, and a distinct
    # set per group (half the time of a second grouping by group and person on SQLite).
    distinct = (
        ", COUNT(DISTINCT CASE WHEN v.rec = 1 THEN v.pk END) AS victims_referred"
        ", COUNT(DISTINCT CASE WHEN v.sup = 1 THEN v.pk END) AS victims_supported"
        if gcols
        else ""
    )
    person = f"r.person_key AS pk, CASE WHEN {SUPPORTED} THEN 1 ELSE 0 END AS sup, " if gcols else ""
    volumes = (
        f"SELECT {keys('v')}SUM(v.rec) AS received, SUM(v.clo) AS closed, {per_status}{distinct} "
        f"FROM (SELECT {dims}{person}r.status AS status, CASE WHEN {RECEIVED} THEN 1 ELSE 0 END AS rec, "
        f"CASE WHEN {CLOSED} THEN 1 ELSE 0 END AS clo FROM {source} WHERE 1 = 1{only}{fence}) v"
        f"{group_by('v')}"
    )
    # The whole area's distinct victims in two steps (one row per person, then a plain sum): the
    # (person_key, dates, provider) index read in order, no DISTINCT set of a million keys.
    whole_person = (
        f"SELECT MAX(CASE WHEN {RECEIVED} THEN 1 ELSE 0 END) AS vr, "
        f"MAX(CASE WHEN {SUPPORTED} THEN 1 ELSE 0 END) AS vs FROM {t.referral} r "
        f"WHERE (({RECEIVED}) OR ({SUPPORTED})){only} GROUP BY r.person_key"
    )
    victims = f"SELECT SUM(p.vr) AS victims_referred, SUM(p.vs) AS victims_supported FROM ({whole_person}) p"
    # PostgreSQL hashes the ~1 million people (spilling to disk) unless told not to; walking the
    # covering index in order and grouping as it goes is 2-3x faster.
    ordered = ("SET LOCAL enable_hashagg = off",) if dialect == "postgres" else ()
    hashed = ("SET LOCAL enable_hashagg = on",) if dialect == "postgres" else ()
    statements = [_bind("volumes", volumes, values), _bind("victims", victims, values, ordered)]

    closed = f"SELECT {dims}r.id AS rid FROM {source} WHERE {CLOSED}{only}"
    answers = f"SELECT {keys('c')}{', '.join(_episode_columns())} FROM ({closed}) c "
    complete = "s.referral = c.rid AND s.wave = '{wave}' AND s.completed_at IS NOT NULL"
    if dialect == "postgres":
        # PostgreSQL: a LATERAL top-1 per episode walks the (referral, wave, completed_at, id) index in
        # order; scalar subqueries there made the planner hash the whole response table twice.
        def lateral(wave: str, order: str) -> str:
            return (
                f"(SELECT * FROM {t.response} s WHERE {complete.format(wave=wave)} "
                f"ORDER BY s.completed_at {order}, s.id {order} LIMIT 1)"
            )

        answers += (
            f"JOIN LATERAL {lateral('exit', 'DESC')} x ON TRUE "
            f"LEFT JOIN LATERAL {lateral('baseline', 'ASC')} b ON TRUE"
        )
    else:
        # SQLite (no LATERAL): the id of the top response per episode as a scalar subquery, from the
        # (referral, wave, completed_at, id) index alone; ordered by julianday(), which reads every text
        # form SQLite may hold (space or T, any offset) as a UTC instant, with the id breaking ties as
        # in the PostgreSQL form.
        def pick(wave: str, order: str) -> str:
            return (
                f"(SELECT s.id FROM {t.response} s WHERE {complete.format(wave=wave)} "
                f"ORDER BY julianday(s.completed_at) {order}, s.id {order} LIMIT 1)"
            )

        bl_id, ex_id = pick("baseline", "ASC"), pick("exit", "DESC")
        closed = f"SELECT c.*, {bl_id} AS bl_id, {ex_id} AS ex_id FROM ({closed}) c"
        answers = (
            f"SELECT {keys('c')}{', '.join(_episode_columns())} FROM ({closed}) c "
            f"JOIN {t.response} x ON x.id = c.ex_id LEFT JOIN {t.response} b ON b.id = c.bl_id"
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
