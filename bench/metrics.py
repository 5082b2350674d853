"""Benchmark: the full metric set for a national year, in SQL on SQLite and PostgreSQL, against pandas.

    .venv/bin/python bench/metrics.py                  # 1.5 million referrals, 3 million responses
    .venv/bin/python bench/metrics.py --scale 0.01     # a quick run (15k referrals)

Generates a synthetic year (numpy, fixed seed; the responses of the sav and da services carry PHQ-9 /
GAD-7 items in extra_answers), bulk-loads it into a SQLite file (raw executemany) and
a PostgreSQL database (COPY), adds the indexes the metric query needs, then times - each in its own
process, so peak memory is that step's own - `compute_metrics("2025-26")` and the provider x
crime_group breakdown on each engine, and the same figures computed by loading the rows into pandas
and grouping them there. The pandas figures also check the SQL at scale: every whole-area metric
must agree. The last line printed is one JSON object with the timings, ratios and peak memory.
A database generated before the PHQ-9 / GAD-7 items were added has none: generate again (no --reuse).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

PERIOD = "2025-26"
BY = ["provider", "crime_group"]
FULL_REFERRALS = 1_500_000
FULL_RESPONSES = 3_000_000
# What the metric queries need beyond the indexes of surveys/tables.py (the lead puts them in a
# migration): each closed episode finds its top baseline / exit response inside one index, without
# touching the table; the distinct-victim counts walk one index in person order.
INDEXES = [
    "CREATE INDEX IF NOT EXISTS response_referral_wave_completed "
    "ON response (referral, wave, completed_at, id)",
    "CREATE INDEX IF NOT EXISTS referral_person_dates "
    "ON referral (person_key, referral_date, support_start, support_end, provider)",
]
CRIMES = [
    "violence_with_injury", "violence_without_injury", "stalking_harassment", "homicide", "rape",
    "other_sexual", "robbery", "burglary_residential", "burglary_business", "vehicle", "theft_person",
    "theft_other", "criminal_damage_arson", "fraud_cyber", "hate_incident", "asb", "road_traffic", "cse",
    "other",
]  # fmt: skip
STATUSES = ["referred", "contacted", "declined", "uncontactable", "out_of_scope", "supported", "closed"]
STATUS_P = [0.10, 0.15, 0.20, 0.12, 0.08, 0.15, 0.20]
SERVICES = ["general"] * 42 + ["sav"] * 30 + ["cse"] * 10 + ["da"] * 20 + ["hate"] * 10 + ["other"] * 8
AREAS = ["cope", "safety", "health", "informed", "cjs", "recover"]
HELPED = [None, "na", "a_lot", "a_little", "no"]
SATISFACTION = [
    None, "completely_satisfied", "very_satisfied", "fairly_satisfied", "neither", "fairly_dissatisfied",
    "very_dissatisfied", "completely_dissatisfied",
]  # fmt: skip
REF_COLS = [
    "id", "provider", "referral_id", "person_key", "referral_date", "source", "crime_type", "domestic_abuse",
    "hate_crime", "repeat_victim", "age_band", "sex", "ethnicity", "disability", "status", "support_start",
    "support_end", "preferred_channel", "safe_to_contact", "consent_to_survey", "created_at", "updated_at",
]  # fmt: skip
RESP_COLS = [
    "id", "referral", "wave", "completed_at", "mode", "instrument_version", *AREAS,
    *[f"helped_{a}" for a in AREAS], "satisfaction", "rights_mask", *[f"swemwbs_{i}" for i in range(1, 8)],
    "extra_answers", "created_at", "updated_at",
]  # fmt: skip
# Services that switch PHQ-9 and GAD-7 on (VOP_SCALES_BY_SERVICE): their responses carry the items in
# extra_answers, as JSON text like the survey stores.
SCALE_SERVICES = ("sav", "da")
TT_KEYS = [*[f"phq9_{i}" for i in range(1, 10)], *[f"gad7_{i}" for i in range(1, 8)]]
BOOL_COLS = {"domestic_abuse", "hate_crime", "repeat_victim", "safe_to_contact", "consent_to_survey"}


def peak_mib() -> float:
    """Peak resident memory of this process image in MiB.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child started by the (large)
    generating process would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- synthetic data --------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, values: list[Any], n: int, p: list[float] | None = None) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p)]


def person_keys(people: np.ndarray) -> np.ndarray:
    """64 hex characters per person, like the HMAC-SHA256 keys the platform stores (same width)."""
    parts = []
    with np.errstate(over="ignore"):  # multiplicative hashing wraps around on purpose
        for mult in (11400714819323198485, 14029467366897019727, 1609587929392839161, 9650029242287828579):
            mixed = (people.astype(np.uint64) * np.uint64(mult)) >> np.uint64(1)
            parts.append(np.char.zfill(np.char.mod("%x", mixed.astype(np.int64)), 16))
    return np.char.add(np.char.add(parts[0], parts[1]), np.char.add(parts[2], parts[3]))


def generate(scale: float, seed: int = 2026) -> dict[str, Any]:
    """Column arrays of organisations, referrals and responses for financial year 2025-26."""
    rng = np.random.default_rng(seed)
    n_ref, n_resp = int(FULL_REFERRALS * scale), int(FULL_RESPONSES * scale)
    orgs = [(i + 1, f"P{i + 1:03d}", SERVICES[i]) for i in range(len(SERVICES))]
    year0 = np.datetime64("2025-04-01")
    ref: dict[str, Any] = {"id": np.arange(1, n_ref + 1)}
    ref["provider"] = rng.integers(1, len(orgs) + 1, n_ref)
    ref["referral_id"] = np.char.add("R", ref["id"].astype(str))
    # ~0.8 distinct people per referral: repeat victims and people referred to several providers.
    people = rng.integers(0, max(1, int(n_ref * 0.8)), n_ref)
    ref["person_key"] = person_keys(people)
    ref["referral_date"] = year0 + rng.integers(0, 365, n_ref).astype("timedelta64[D]")
    ref["source"] = _pick(rng, ["police", "self", "agency", "other"], n_ref, [0.9, 0.05, 0.04, 0.01])
    ref["crime_type"] = _pick(rng, CRIMES, n_ref)
    for col, p in (("domestic_abuse", 0.25), ("hate_crime", 0.04), ("repeat_victim", 0.3)):
        ref[col] = rng.random(n_ref) < p
    ref["age_band"] = _pick(
        rng, ["0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"], n_ref
    )
    ref["sex"] = _pick(rng, ["female", "male", "unknown"], n_ref, [0.55, 0.4, 0.05])
    ref["ethnicity"] = _pick(rng, ["asian", "black", "mixed", "white", "other", "unknown"], n_ref)
    ref["disability"] = _pick(rng, ["yes", "no", "unknown"], n_ref)
    ref["status"] = _pick(rng, STATUSES, n_ref, STATUS_P)
    episode = np.isin(ref["status"], ["supported", "closed"]) | (rng.random(n_ref) < 0.15)
    start = ref["referral_date"] + rng.integers(0, 30, n_ref).astype("timedelta64[D]")
    end = start + rng.integers(0, 240, n_ref).astype("timedelta64[D]")
    ended = episode & (ref["status"] != "supported")
    ref["support_start"] = np.where(episode, start, np.datetime64("NaT"))
    ref["support_end"] = np.where(ended, end, np.datetime64("NaT"))
    ref["preferred_channel"] = _pick(rng, ["email", "sms", "phone", "none"], n_ref)
    ref["safe_to_contact"] = rng.random(n_ref) < 0.8
    ref["consent_to_survey"] = rng.random(n_ref) < 0.7

    episodes = ref["id"][episode]
    ep_start = ref["support_start"][episode]
    resp: dict[str, Any] = {"id": np.arange(1, n_resp + 1)}
    which = rng.integers(0, len(episodes), n_resp)
    resp["referral"] = episodes[which]
    resp["wave"] = _pick(rng, ["baseline", "exit", "follow_up"], n_resp, [0.35, 0.4, 0.25])
    seconds = rng.integers(0, 260 * 86400, n_resp).astype("timedelta64[s]")
    stamp = ep_start[which].astype("datetime64[s]") + seconds
    resp["completed_at"] = np.where(rng.random(n_resp) < 0.85, stamp, np.datetime64("NaT"))
    resp["mode"] = _pick(rng, ["web", "phone", "paper"], n_resp, [0.7, 0.2, 0.1])
    for a in AREAS:
        state = rng.integers(1, 6, n_resp).astype(object)
        state[rng.random(n_resp) < 0.1] = None
        resp[a] = state
        resp[f"helped_{a}"] = _pick(rng, HELPED, n_resp, [0.1, 0.1, 0.35, 0.25, 0.2])
    resp["satisfaction"] = _pick(rng, SATISFACTION, n_resp)
    mask = rng.integers(0, 4096, n_resp).astype(object)
    mask[rng.random(n_resp) < 0.2] = None
    resp["rights_mask"] = mask
    has_sw = rng.random(n_resp) < 0.5
    for i in range(1, 8):
        item = rng.integers(1, 6, n_resp).astype(object)
        item[~has_sw | (rng.random(n_resp) < 0.03)] = None
        resp[f"swemwbs_{i}"] = item
    resp["extra_answers"] = _scale_answers(rng, orgs, ref, resp)
    return {"orgs": orgs, "ref": ref, "resp": resp, "n_ref": n_ref, "n_resp": n_resp}


def _scale_answers(
    rng: np.random.Generator, orgs: list[tuple[int, str, str]], ref: dict[str, Any], resp: dict[str, Any]
) -> np.ndarray:
    """PHQ-9 / GAD-7 items (JSON text, null for a skipped item) on the responses of SCALE_SERVICES.

    Each referral has a severity (item mean 0..3, so about half are a case at baseline); a response's
    items scatter around it, later waves lower on average. About 1 in 12 responses skip the scale and
    1 in 30 skip an item.
    """
    n_resp = len(resp["referral"])
    services = np.asarray([""] + [service for _, _, service in orgs], dtype=object)
    on = np.isin(services[ref["provider"][resp["referral"] - 1]], SCALE_SERVICES)
    on &= rng.random(n_resp) >= 1 / 12
    severity = rng.gamma(2.0, 0.55, len(ref["id"]))[resp["referral"] - 1]
    severity = np.where(resp["wave"] == "baseline", severity, severity * rng.uniform(0.2, 1.3, n_resp))
    where = np.flatnonzero(on)
    items = np.clip(np.rint(severity[where, None] + rng.normal(0, 0.7, (len(where), len(TT_KEYS)))), 0, 3)
    text = items.astype(int).astype(str).astype(object)
    skipped = rng.random(len(where)) < 1 / 30
    text[skipped, rng.integers(0, len(TT_KEYS), int(skipped.sum()))] = "null"
    template = "{" + ", ".join(f'"{k}": %s' for k in TT_KEYS) + "}"
    out = np.full(n_resp, None, dtype=object)
    out[where] = [template % tuple(row) for row in text]
    return out


def _text_column(values: np.ndarray, kind: str) -> list[Any]:
    """A column as Python values for the database: ISO text for dates, None for NaT / missing."""
    if values.dtype.kind == "M":
        text = np.datetime_as_string(values, unit="D" if kind == "date" else "s")
        if kind == "timestamptz":
            text = np.char.add(np.char.replace(text, "T", " "), "+00:00")  # Piccolo's SQLite format
        out = text.astype(object)
        out[np.isnat(values)] = None
        return list(out)
    if values.dtype == bool:
        return list(values.astype(int))
    if values.dtype.kind in "iu":
        return values.tolist()
    return list(values)


def _columns(data: dict[str, Any], table: str) -> tuple[list[str], list[list[Any]]]:
    now = "2026-04-02 00:00:00+00:00"
    if table == "referral":
        src, cols, dates = data["ref"], REF_COLS, {"referral_date", "support_start", "support_end"}
        n = data["n_ref"]
    else:
        src, cols, dates = data["resp"], RESP_COLS, set()
        n = data["n_resp"]
    out = []
    for c in cols:
        if c in ("created_at", "updated_at"):
            out.append([now] * n)
        elif c == "instrument_version":
            out.append(["core-1"] * n)
        else:
            out.append(_text_column(src[c], "date" if c in dates else "timestamptz"))
    return cols, out


# --- loading ---------------------------------------------------------------------------------------


async def create_schema(url: str) -> None:
    """Empty tables from the Piccolo definitions (with their own indexes) on the engine of `url`."""
    from surveys.db import build_engine
    from surveys.tables import Organisation, Referral, Response

    engine = build_engine(url)
    tables = (Organisation, Referral, Response)
    for t in tables:
        t._meta.db = engine
    for t in reversed(tables):
        await t.alter().drop_table(if_exists=True)
    for t in tables:
        await t.create_table()


def load_sqlite(path: Path, data: dict[str, Any]) -> float:
    """Bulk-load into a fresh SQLite file with raw executemany; returns seconds."""
    t0 = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    asyncio.run(create_schema(f"sqlite:///{path}"))
    con = sqlite3.connect(path)
    # A benchmark load: no journal, no syncs (durability is not the point); WAL again afterwards.
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    now = "2026-04-02 00:00:00+00:00"
    con.executemany(
        "INSERT INTO organisation (id, code, name, kind, service, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(i, code, f"Provider {code}", "provider", service, now) for i, code, service in data["orgs"]],
    )
    for table in ("referral", "response"):
        cols, values = _columns(data, table)
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        con.executemany(sql, zip(*values, strict=True))
    for index in INDEXES:
        con.execute(index)
    con.commit()
    con.execute("ANALYZE")
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    return time.perf_counter() - t0


async def _load_postgres(url: str, data: dict[str, Any]) -> None:
    import asyncpg
    import pandas as pd

    from surveys.db import postgres_config

    config = postgres_config(url)
    admin = await asyncpg.connect(**{**config, "database": "postgres"})
    await admin.execute(f'DROP DATABASE IF EXISTS "{config["database"]}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{config["database"]}"')
    await admin.close()
    await create_schema(url)
    conn = await asyncpg.connect(**config)
    now = "2026-04-02 00:00:00+00:00"
    await conn.copy_records_to_table(
        "organisation",
        records=[(i, code, f"Provider {code}", "provider", service) for i, code, service in data["orgs"]],
        columns=["id", "code", "name", "kind", "service"],
    )
    for table in ("referral", "response"):
        cols, values = _columns(data, table)
        frame = pd.DataFrame(dict(zip(cols, values, strict=True)))
        for c in frame.columns:
            if frame[c].dtype.kind == "f":  # None among ints made floats: "5.0" is no smallint
                frame[c] = frame[c].astype("Int64")
        for c in BOOL_COLS & set(cols):
            frame[c] = frame[c].map({1: "t", 0: "f"})
        frame["created_at"] = now
        buf = io.BytesIO()
        # COPY from CSV is ~10x asyncpg's record COPY here; an empty field is NULL in COPY's CSV.
        frame.to_csv(buf, index=False, header=False, na_rep="")
        buf.seek(0)
        await conn.copy_to_table(table, source=buf, columns=cols, format="csv")
    for table in ("organisation", "referral", "response"):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
    for index in INDEXES:
        await conn.execute(index)
    await conn.execute("VACUUM ANALYZE")
    await conn.close()


def load_postgres(url: str, data: dict[str, Any]) -> float:
    """Bulk-load into a fresh PostgreSQL database with COPY; returns seconds."""
    t0 = time.perf_counter()
    asyncio.run(_load_postgres(url, data))
    return time.perf_counter() - t0


# --- phases run in their own process ---------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a local process (the PostgreSQL backend serving the queries)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _query(url: str) -> dict[str, Any]:
    from piccolo.engine.postgres import PostgresEngine

    from outcomes.services import compute_metrics
    from surveys.db import build_engine
    from surveys.tables import Organisation, Referral, Response

    engine = build_engine(url)
    for t in (Organisation, Referral, Response):
        t._meta.db = engine
    backend = None
    if isinstance(engine, PostgresEngine):
        # One connection, so its backend's CPU time is the queries' CPU time.
        await engine.start_connection_pool(min_size=1, max_size=1)
        backend = (await Referral.raw("SELECT pg_backend_pid() AS pid"))[0]["pid"]

    def cpu() -> float:
        return _cpu_seconds(backend) if backend else time.process_time()

    try:
        t0, c0 = time.perf_counter(), cpu()
        year = await compute_metrics(PERIOD)
        t1, c1 = time.perf_counter(), cpu()
        split = await compute_metrics(PERIOD, by=BY)
        t2, c2 = time.perf_counter(), cpu()
    finally:
        if isinstance(engine, PostgresEngine):
            await engine.close_connection_pool()
    return {
        "year_s": t1 - t0,
        "by_s": t2 - t1,
        "year_cpu_s": c1 - c0,
        "by_cpu_s": c2 - c1,
        "groups": len(split["groups"]) - 1,
        "whole": year["groups"][0]["metrics"],
        "split": split["groups"],
    }


def phase_query(url: str) -> dict[str, Any]:
    """Time the metric set on one engine (whole year, then provider x crime_group)."""
    out = asyncio.run(_query(url))
    out["peak_mib"] = peak_mib()
    return out


def phase_pandas(sqlite_path: str) -> dict[str, Any]:
    """Load the rows the metrics read into pandas, then compute the same metrics there."""
    import pandas as pd

    from outcomes.periods import parse_period

    t0 = time.perf_counter()
    con = sqlite3.connect(sqlite_path)
    refs = pd.read_sql_query(
        "SELECT r.id, r.person_key, o.code AS provider, r.crime_type, r.status, r.referral_date, "
        "r.support_start, r.support_end FROM referral r JOIN organisation o ON o.id = r.provider",
        con,
    )
    cols = ["id", "referral", "wave", "completed_at", *AREAS, *[f"helped_{a}" for a in AREAS]]
    cols += ["satisfaction", "rights_mask", *[f"swemwbs_{i}" for i in range(1, 8)], "extra_answers"]
    resps = pd.read_sql_query(f"SELECT {', '.join(cols)} FROM response", con)
    con.close()
    t1 = time.perf_counter()
    p = parse_period(PERIOD)
    whole = pandas_metrics(refs, resps, p.start.isoformat(), p.end.isoformat(), [])
    t2 = time.perf_counter()
    split = pandas_metrics(refs, resps, p.start.isoformat(), p.end.isoformat(), BY)
    t3 = time.perf_counter()
    return {
        "load_s": t1 - t0,
        "year_s": t2 - t1,
        "by_s": t3 - t2,
        "groups": len(split) - 1,
        "whole": whole[0]["metrics"],
        "split": split,
        "peak_mib": peak_mib(),
    }


def tt_scores(frame: Any) -> tuple[Any, Any]:
    """PHQ-9 and GAD-7 totals of each response (both NaN unless all 16 items are 0..3)."""
    import pandas as pd

    text = frame.extra_answers.dropna()
    items = pd.DataFrame.from_records([json.loads(t) for t in text], index=text.index, columns=TT_KEYS)
    items = items.reindex(frame.index)
    ok = items.apply(lambda c: c.isin([0, 1, 2, 3])).all(axis=1)
    phq = items[TT_KEYS[:9]].sum(axis=1).where(ok)
    gad = items[TT_KEYS[9:]].sum(axis=1).where(ok)
    return phq, gad


def pandas_metrics(refs: Any, resps: Any, start: str, end: str, by: list[str]) -> list[dict[str, Any]]:
    """The metric set in pandas (vectorised; ISO date text compares in date order)."""
    import pandas as pd

    from outcomes.metrics import SATISFACTION_ANSWERS, SATISFIED, shape_metrics
    from outcomes.scoring import SWEMWBS_METRIC_CENTI

    r = refs.copy()
    r["rec"] = ((r.referral_date >= start) & (r.referral_date <= end)).astype(int)
    started = r.support_start.notna()
    r["sup"] = (
        started & (r.support_start <= end) & (r.support_end.isna() | (r.support_end >= start))
    ).astype(int)
    r["clo"] = (started & (r.support_end >= start) & (r.support_end <= end)).astype(int)
    closed_ids = r.id[r.clo == 1]
    s = resps[
        resps.completed_at.notna() & resps.referral.isin(closed_ids) & resps.wave.isin(["baseline", "exit"])
    ]
    s = s.assign(at=pd.to_datetime(s.completed_at, utc=True, format="ISO8601"))
    s = s.sort_values(["referral", "at", "id"])
    base = s[s.wave == "baseline"].drop_duplicates("referral", keep="first").set_index("referral")
    exit_ = s[s.wave == "exit"].drop_duplicates("referral", keep="last").set_index("referral")
    e = pd.DataFrame(index=exit_.index)
    e["exits"] = 1
    for a in AREAS:
        b, x = base[a].reindex(e.index), exit_[a]
        paired = b.between(1, 5) & x.between(1, 5)
        d = (x - b).where(paired)
        e[f"hn_{a}"] = exit_[f"helped_{a}"].isin(["a_lot", "a_little", "no"]).astype(int)
        e[f"hy_{a}"] = exit_[f"helped_{a}"].isin(["a_lot", "a_little"]).astype(int)
        e[f"pn_{a}"] = paired.astype(int)
        e[f"up_{a}"] = (d >= 1).astype(int)
        e[f"down_{a}"] = (d <= -1).astype(int)
        e[f"dsum_{a}"] = d.fillna(0)
    yes, answered = ["a_lot", "a_little"], ["a_lot", "a_little", "no"]
    e["hcr"] = (exit_.helped_cope.isin(yes) | exit_.helped_recover.isin(yes)).astype(int)
    e["hcr_n"] = (exit_.helped_cope.isin(answered) | exit_.helped_recover.isin(answered)).astype(int)
    e["sat_n"] = exit_.satisfaction.isin(SATISFACTION_ANSWERS).astype(int)
    e["sat_y"] = exit_.satisfaction.isin(SATISFIED).astype(int)
    mask = exit_.rights_mask
    e["rights_n"] = mask.notna().astype(int)
    m = mask.fillna(0).astype(np.int64).to_numpy()
    asked = mask.notna().to_numpy()
    bits = [(m >> (k - 1)) & 1 for k in range(1, 13)]
    nrights = pd.Series(sum(bits), index=e.index)
    for k in range(1, 13):
        e[f"right_{k}"] = (asked & (bits[k - 1] == 1)).astype(int)
    for i, (lo, hi) in enumerate([(0, 3), (4, 6), (7, 9), (10, 12)]):
        band = mask.notna() & nrights.between(lo, hi)
        e[f"band{i}_n"] = (band & (e.sat_n == 1)).astype(int)
        e[f"band{i}_y"] = (band & (e.sat_y == 1)).astype(int)
    table = pd.Series(SWEMWBS_METRIC_CENTI)

    def score(frame: Any) -> Any:
        items = frame[[f"swemwbs_{i}" for i in range(1, 8)]]
        ok = items.apply(lambda c: c.between(1, 5)).all(axis=1)
        return items.sum(axis=1).map(table).where(ok)

    sb, sx = score(base).reindex(e.index), score(exit_)
    paired = sb.notna() & sx.notna()
    e["sw_n"] = paired.astype(int)
    e["sw_bsum"] = sb.where(paired, 0)
    e["sw_xsum"] = sx.where(paired, 0)
    e["sw_up"] = (paired & (sx - sb >= 300)).astype(int)
    e["sw_down"] = (paired & (sb - sx >= 300)).astype(int)
    pb, gb = tt_scores(base)
    px, gx = tt_scores(exit_)
    pb, gb = pb.reindex(e.index), gb.reindex(e.index)
    paired = pb.notna() & px.notna()
    case_b = paired & ((pb >= 10) | (gb >= 8))
    case_x = paired & ((px >= 10) | (gx >= 8))
    worse = paired & ((px - pb >= 6) | (gx - gb >= 4))
    better = paired & ((pb - px >= 6) | (gb - gx >= 4)) & ~worse
    recovered = case_b & ~case_x
    for name, flag in (
        ("tt_n", paired),
        ("tt_cb", case_b),
        ("tt_cx", case_x),
        ("tt_ri", better),
        ("tt_rd", worse),
        ("tt_rec", recovered),
        ("tt_rr", recovered & better),
    ):
        e[name] = flag.astype(int)
    joined = r.join(e, on="id")
    sums = [c for c in e.columns]
    joined[sums] = joined[sums].fillna(0)
    for st in ("referred", "contacted", "declined", "uncontactable", "out_of_scope", "supported", "closed"):
        joined[f"st_{st}"] = ((joined.rec == 1) & (joined.status == st)).astype(int)
    joined["pk_rec"] = joined.person_key.where(joined.rec == 1)
    joined["pk_sup"] = joined.person_key.where(joined.sup == 1)
    keys = by and [{"provider": "provider", "crime_group": "crime_type"}[b] for b in by]
    agg_cols = [*sums, "rec", "clo", *[c for c in joined.columns if c.startswith("st_")]]

    def shape(total: Any, vr: int, vs: int) -> dict[str, Any]:
        row = {k: total[k] for k in agg_cols}
        row |= {
            "received": total["rec"],
            "closed": total["clo"],
            "victims_referred": vr,
            "victims_supported": vs,
        }
        return shape_metrics(row)

    out = [
        {"by": {}, "metrics": shape(joined[agg_cols].sum(), joined.pk_rec.nunique(), joined.pk_sup.nunique())}
    ]
    if keys:
        g = joined.groupby(keys, sort=True)
        totals = g[agg_cols].sum()
        vr = g.pk_rec.nunique()
        vs = g.pk_sup.nunique()
        for key in totals.index:
            out.append(
                {"by": dict(zip(by, key, strict=True)), "metrics": shape(totals.loc[key], vr[key], vs[key])}
            )
    return out


def _run_phase(args: list[str]) -> dict[str, Any]:
    """Run this script's phase in a child process and read its JSON answer (its last line)."""
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"phase {args} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _compare(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Metric names on which two results differ (rates by counts, means to 1e-9)."""
    diffs = []
    for key, x in a.items():
        y = b.get(key)
        if isinstance(x, dict):
            same = isinstance(y, dict) and (x["numerator"], x["denominator"]) == (
                y["numerator"],
                y["denominator"],
            )
        elif isinstance(x, float) and isinstance(y, float):
            same = abs(x - y) <= 1e-9
        else:
            same = x == y
        if not same:
            diffs.append(key)
    return diffs


def _compare_groups(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """Differences between two breakdowns: missing groups, then metric names per group (first 20)."""
    index = {json.dumps(g["by"], sort_keys=True): g["metrics"] for g in b}
    diffs = []
    for g in a:
        key = json.dumps(g["by"], sort_keys=True)
        if key not in index:
            diffs.append(f"missing {key}")
            continue
        diffs += [f"{key} {name}" for name in _compare(g["metrics"], index[key])]
    if len(a) != len(b):
        diffs.append(f"{len(a)} groups against {len(b)}")
    return diffs[:20]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 1.5M referrals / 3M responses")
    parser.add_argument("--sqlite", default=str(ROOT / "bench" / "out" / "metrics.db"))
    parser.add_argument(
        "--postgres", default="postgresql://postgres@127.0.0.1:5432/vop_bench_metrics", help="'' to skip"
    )
    parser.add_argument("--reuse", action="store_true", help="skip generating and loading (same scale)")
    parser.add_argument("--phase", choices=["query", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase == "query":
        print(json.dumps(phase_query(args.url)))
        return
    if args.phase == "pandas":
        print(json.dumps(phase_pandas(args.url)))
        return

    sqlite_path = Path(args.sqlite)
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"scale": args.scale}
    if not args.reuse:
        t0 = time.perf_counter()
        data = generate(args.scale)
        result |= {"referrals": data["n_ref"], "responses": data["n_resp"]}
        result["generate_s"] = round(time.perf_counter() - t0, 2)
        print(f"generated {data['n_ref']:,} referrals, {data['n_resp']:,} responses", file=sys.stderr)
        result["load_sqlite_s"] = round(load_sqlite(sqlite_path, data), 2)
        print(f"loaded SQLite in {result['load_sqlite_s']} s", file=sys.stderr)
        if args.postgres:
            result["load_postgres_s"] = round(load_postgres(args.postgres, data), 2)
            print(f"loaded PostgreSQL in {result['load_postgres_s']} s", file=sys.stderr)
        del data

    engines = {"sqlite": f"sqlite:///{sqlite_path}"}
    if args.postgres:
        engines["postgres"] = args.postgres
    answers = {}
    for name, url in engines.items():
        answers[name] = _run_phase(["--phase", "query", "--url", url])
        print(
            f"{name}: {answers[name]['year_s']:.2f} s year, {answers[name]['by_s']:.2f} s by", file=sys.stderr
        )
    pandas = _run_phase(["--phase", "pandas", "--url", str(sqlite_path)])
    pandas_total = pandas["load_s"] + pandas["year_s"] + pandas["by_s"]
    result["pandas"] = {k: round(pandas[k], 2) for k in ("load_s", "year_s", "by_s")} | {
        "total_s": round(pandas_total, 2),
        "peak_mib": round(pandas["peak_mib"]),
    }
    result["checks"] = {}
    for name, ans in answers.items():
        sql_total = ans["year_s"] + ans["by_s"]
        result[name] = {
            "year_s": round(ans["year_s"], 2),
            "by_provider_crime_s": round(ans["by_s"], 2),
            # CPU of the engine doing the work (this process for SQLite, the backend for PostgreSQL):
            # wall time on a shared machine includes waiting for other people's processes.
            "year_cpu_s": round(ans["year_cpu_s"], 2),
            "by_provider_crime_cpu_s": round(ans["by_cpu_s"], 2),
            "groups": ans["groups"],
            "peak_mib": round(ans["peak_mib"]),
            # Ratio to pandas doing the same job from the same database (load + group), and to its
            # grouping alone (rows already in memory): goal <= 1.0.
            "ratio_to_pandas": round(sql_total / pandas_total, 3),
            "ratio_to_pandas_grouping_only": round(sql_total / (pandas["year_s"] + pandas["by_s"]), 3),
            "year_under_10s": ans["year_s"] < 10,
            "year_cpu_under_10s": ans["year_cpu_s"] < 10,
        }
        result["checks"][f"{name}_vs_pandas_differences"] = _compare(ans["whole"], pandas["whole"])
        result["checks"][f"{name}_vs_pandas_group_differences"] = _compare_groups(
            ans["split"], pandas["split"]
        )
    if len(answers) == 2:
        sq, pg = answers["sqlite"], answers["postgres"]
        result["checks"]["sqlite_vs_postgres_differences"] = _compare(sq["whole"], pg["whole"])
        result["checks"]["sqlite_vs_postgres_group_differences"] = _compare_groups(sq["split"], pg["split"])
    result["indexes"] = INDEXES
    result["load_average_1m"] = os.getloadavg()[0]
    result["cpus"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
