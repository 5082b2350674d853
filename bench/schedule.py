"""Benchmark: compute and queue 100,000 due invitations, then dispatch into a loopback SMTP server.

    python bench/schedule.py [--persons N] [--dispatch N] [--engines sqlite,postgres]
                             [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Each engine runs in its own process (Piccolo binds tables to the engine at import) on a fresh database:
N persons, each with one referral whose baseline is due today (every tenth person also has a second
provider's referral, so combined invitations are part of the load). `schedule(now)` is timed from a
cold start (candidate query, ledgers, rules, links, invitations, outbox rows, history). Then
`dispatch(now)` sends the first `--dispatch` messages into an aiosmtpd server running in its own
process on loopback. Goal: scheduling under 30 s on both engines. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 5, 4, 10, 0, tzinfo=ZoneInfo("Europe/London"))


async def load(persons: int) -> int:
    """Insert the referrals with the raw driver (fast, outside the timed part); returns the row count."""
    from surveys import db
    from surveys.crypto import keyring
    from surveys.importing import REFERRAL_DB_COLUMNS
    from surveys.tables import Organisation

    orgs = {r["code"]: r["id"] for r in await Organisation.select(Organisation.code, Organisation.id)}
    sqlite = db.is_sqlite()
    keys = keyring()
    today = NOW.date()
    stamp = dt.datetime(2026, 4, 20, 9, tzinfo=dt.UTC)
    email = keys.encrypt("someone@example.org")  # one ciphertext: encryption speed is not measured here

    def date(d: dt.date) -> object:
        return d.isoformat() if sqlite else d

    def flag(v: bool) -> object:
        return int(v) if sqlite else v

    rows = []
    for i in range(persons):
        pk = keys.person_key(f"bench-{i}")
        providers = ("VS", "ROSA") if i % 10 == 0 else ("VS",)
        for n, code in enumerate(providers):
            values = {
                "provider": orgs[code], "referral_id": f"B{i}-{n}", "person_key": pk,
                "referral_date": date(today - dt.timedelta(days=14)), "source": "police",
                "crime_type": "burglary_residential", "domestic_abuse": flag(False),
                "hate_crime": flag(False),
                "repeat_victim": flag(False), "age_band": "25-34", "sex": "female", "ethnicity": "white",
                "disability": "no", "status": "supported",
                "support_start": date(today - dt.timedelta(days=n * 3)), "support_end": None,
                "contact_email_enc": email, "contact_phone_enc": None, "preferred_channel": "email",
                "safe_to_contact": flag(True), "consent_to_survey": flag(True), "created_at": stamp,
                "updated_at": stamp,
            }  # fmt: skip
            rows.append(tuple(values[c] for c in REFERRAL_DB_COLUMNS))
    cols = ", ".join(REFERRAL_DB_COLUMNS)
    marks = ", ".join(db.placeholders(db.current_engine(), len(REFERRAL_DB_COLUMNS)))
    async with db.write_transaction() as tx:
        await db.executemany(tx, f"INSERT INTO referral ({cols}) VALUES ({marks})", rows)
    return len(rows)


async def run_engine(persons: int, dispatch_count: int) -> dict[str, object]:
    from surveys import db
    from surveys.demo import ensure_organisations
    from surveys.migrate import migrate
    from surveys.outbox import dispatch
    from surveys.scheduling import schedule
    from surveys.tables import OutboxMessage

    await migrate(quiet=True)
    await db.start()
    await ensure_organisations()
    referrals = await load(persons)

    started, cpu = time.perf_counter(), time.process_time()
    summary = await schedule(NOW)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    queued = await OutboxMessage.count().where(OutboxMessage.status == "pending")
    assert summary.invitations == persons == queued, (summary, queued)

    again_started = time.perf_counter()
    again = await schedule(NOW + dt.timedelta(minutes=15))
    again_seconds = time.perf_counter() - again_started
    assert again.invitations == 0

    sent = await dispatch(NOW, limit=dispatch_count)
    await db.stop()
    return {
        "persons": persons,
        "referrals": referrals,
        "invitations": summary.invitations,
        "seconds": round(seconds, 2),
        # CPU of this process (the rules, and SQLite's own work, which runs in-process): on a shared,
        # busy machine the wall time can be several times this.
        "cpu_seconds": round(cpu, 2),
        "invitations_per_s": round(persons / seconds),
        "rerun_seconds": round(again_seconds, 2),
        "dispatched": sent.sent,
        "dispatch_failed": sent.retried + sent.dead,
        "dispatch_seconds": sent.seconds,
        "dispatch_per_s": sent.rate,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child(engine: str, persons: int, dispatch_count: int, pg: str) -> dict[str, object]:
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
    port = free_port()
    env["VOP_SMTP_HOST"], env["VOP_SMTP_PORT"] = "127.0.0.1", str(port)
    # The SMTP server runs in its own process, so its work does not share this process's GIL.
    smtp = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--persons", str(persons),
             "--dispatch", str(dispatch_count)],
            env=env, cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode != 0:
            raise SystemExit(f"{engine} failed:\n{out.stderr[-3000:]}")
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        smtp.terminate()
        smtp.wait()
        if dbname:
            drop = f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'
            subprocess.run(["psql", pg, "-qc", drop], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--dispatch", type=int, default=10_000, help="messages to send into loopback SMTP")
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(asyncio.run(run_engine(args.persons, args.dispatch))))
        return
    results: dict[str, object] = {}
    for engine in args.engines.split(","):
        r = child(engine, args.persons, args.dispatch, args.pg)
        results[engine] = r
        print(
            f"{engine:9s} schedule {r['invitations']:,} invitations in {r['seconds']} s "
            f"({r['invitations_per_s']:,}/s, cpu {r['cpu_seconds']} s; "
            f"re-run {r['rerun_seconds']} s); "
            f"dispatch {r['dispatched']:,} emails at {r['dispatch_per_s']:,}/s"
        )
    results["goal_seconds"] = 30
    results["met"] = all(
        float(r["seconds"]) < 30 for e, r in results.items() if isinstance(r, dict)  # type: ignore[arg-type]
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
