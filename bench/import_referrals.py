"""Benchmark: 100,000 referral rows through the real import path, on SQLite and PostgreSQL, against the
raw driver (executemany on SQLite, COPY on PostgreSQL) writing the same rows in the same run.

    python bench/import_referrals.py [--rows N] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Each engine runs in its own process (Piccolo binds tables to the engine at import). Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_csv(rows: int) -> bytes:
    """A referrals file of `rows` demo rows (deterministic)."""
    from surveys.demo import DemoPlan, generate_referrals
    from surveys.fields import REFERRAL_READERS

    plan = DemoPlan(scale=rows / 22_450 + 0.01)
    data = generate_referrals(plan)[:rows]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REFERRAL_READERS)
    for r in data:
        writer.writerow(
            [
                ("true" if v else "false") if isinstance(v, bool) else ("" if v is None else str(v))
                for v in (r[c] for c in REFERRAL_READERS)
            ]
        )
    return out.getvalue().encode()


async def run_engine(rows: int) -> dict[str, float]:
    from surveys import db
    from surveys.demo import ensure_organisations
    from surveys.fields import REFERRAL_OPTIONAL, REFERRAL_READERS, check_referral_columns
    from surveys.importing import (
        REFERRAL_DB_COLUMNS,
        import_referrals,
        provider_ids,
        referral_records,
        validate_columns,
    )
    from surveys.migrate import migrate
    from surveys.tabular import read_table

    await migrate(quiet=True)
    await db.start()
    await ensure_organisations()
    data = make_csv(rows)

    started = time.perf_counter()
    result = await import_referrals(data, "bench.csv")
    seconds = time.perf_counter() - started
    assert result.created == rows, result

    # The raw driver writing the same rows (already parsed, hashed and encrypted) into the same, emptied
    # table with the same indexes: what the import would cost with no checks and no upsert.
    parsed = validate_columns(read_table(data), REFERRAL_READERS, REFERRAL_OPTIONAL, check_referral_columns)
    records = referral_records(parsed, await provider_ids(), None, for_sqlite=db.is_sqlite())
    engine = db.current_engine()
    cols = ", ".join(REFERRAL_DB_COLUMNS)
    if db.is_sqlite(engine):
        import sqlite3

        values = records
        conn = sqlite3.connect(engine.path)
        conn.execute("DELETE FROM referral")
        conn.commit()
        marks = ", ".join("?" * len(REFERRAL_DB_COLUMNS))
        raw_started = time.perf_counter()
        with conn:
            conn.executemany(f"INSERT INTO referral ({cols}) VALUES ({marks})", values)
        raw_seconds = time.perf_counter() - raw_started
        conn.close()
        raw_name = "executemany"
    else:
        async with db.write_transaction() as tx:
            await tx.connection.execute("TRUNCATE referral CASCADE")
        async with db.write_transaction() as tx:
            raw_started = time.perf_counter()
            await tx.connection.copy_records_to_table(
                "referral", records=records, columns=list(REFERRAL_DB_COLUMNS)
            )
            raw_seconds = time.perf_counter() - raw_started
        raw_name = "copy"

    # The same file once more, now that the raw driver has stored its rows: every row an update (the
    # upsert's way). For information; the goal is on the first import.
    started = time.perf_counter()
    result = await import_referrals(data, "bench.csv")
    reimport_seconds = time.perf_counter() - started
    assert result.updated == rows, result
    await db.stop()
    return {
        "rows": rows,
        "import_rows_per_s": rows / seconds,
        "import_seconds": seconds,
        "reimport_rows_per_s": rows / reimport_seconds,
        f"raw_{raw_name}_rows_per_s": rows / raw_seconds,
        "ratio_to_raw": (rows / seconds) / (rows / raw_seconds),
    }


def child(engine: str, rows: int, pg: str) -> dict[str, float]:
    env = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="vop-bench-")
    dbname = ""
    if engine == "sqlite":
        env["VOP_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
    else:
        dbname = f"vop_bench_{uuid.uuid4().hex[:8]}"
        subprocess.run(["psql", pg, "-qc", f'CREATE DATABASE "{dbname}"'], check=True)
        env["VOP_DATABASE_URL"] = pg.rsplit("/", 1)[0] + f"/{dbname}"
    env.setdefault("VOP_SECRET_KEY", "bench-secret-0123456789abcdef0123456789abcdef")
    env["VOP_ENV"] = "test"
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--rows", str(rows)],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if dbname:
            drop = f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'
            subprocess.run(["psql", pg, "-qc", drop], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(asyncio.run(run_engine(args.rows))))
        return
    results = {}
    for engine in ("sqlite", "postgres"):
        results[engine] = child(engine, args.rows, args.pg)
        r = results[engine]
        raw = next(v for k, v in r.items() if k.startswith("raw_"))
        line = f"{engine:9s} import {r['import_rows_per_s']:>9,.0f} rows/s  raw {raw:>9,.0f} rows/s  "
        line += f"ratio {r['ratio_to_raw']:.2f}  re-import {r['reimport_rows_per_s']:>9,.0f} rows/s"
        print(line)
    results["goal"] = {"rows_per_s": 20_000, "ratio_to_raw": 0.4}
    results["met"] = all(
        results[e]["import_rows_per_s"] >= 20_000 and results[e]["ratio_to_raw"] >= 0.4
        for e in ("sqlite", "postgres")
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
