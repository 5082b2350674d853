"""Benchmark: 64 concurrent clients submitting complete surveys through the JSON API, against a bare
Litestar endpoint doing the same response insert with the raw driver, on SQLite and PostgreSQL.

    python bench/submit.py [--requests N] [--clients 64] [--rounds 3] [--engines sqlite,postgres]
                           [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Each engine runs in its own process (Piccolo binds tables to the engine at import). For each one a
fresh database is migrated and filled with one link per request and round (one exit referral each).
Then, in alternating rounds (the machine is shared and drifts; both sides meet the same drift), the
real app is started with uvicorn (one worker) and every client posts a complete survey to
`/api/v1/surveys/{token}/submit`, each link once; and the bare app (this module's `bare_app`, also
under uvicorn) answers `POST /bare` by inserting an equivalent response row with aiosqlite or
asyncpg directly. The load generator (a minimal HTTP/1.1 client, `Connection`, on uvloop) runs in another
process on the same 2 cores, so both figures include its cost; the ratio compares like with like.
Throughput is each side's median round; latency percentiles are over every request of every round;
each round's throughput is printed too. The app runs without its background jobs (see `main`).

Goals: throughput ratio (app / bare) >= 0.5 and app p99 < 50 ms. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ANSWERS: dict[str, Any] = {
    "cope": 3, "safety": 4, "health": 2, "informed": 5, "cjs_involved": "yes", "cjs": 3, "recover": 4,
    "helped_cope": "a_lot", "helped_safety": "a_little", "helped_health": "no", "helped_informed": "na",
    "helped_cjs": "a_lot", "helped_recover": "a_little", "satisfaction": "very_satisfied",
    "rights_received": [1, 4], "barriers_text": "The bus", "gaps_text": None, "comments_text": None,
}  # fmt: skip
BARE_COLUMNS = (
    "referral", "wave", "completed_at", "mode", "instrument_version", "submission_key", "cope", "safety",
    "health", "informed", "cjs", "recover", "helped_cope", "helped_safety", "helped_health",
    "helped_informed", "helped_cjs", "helped_recover", "satisfaction", "rights_mask", "barriers_text",
    "extra_answers", "created_at", "updated_at",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the bare endpoint ---------------------------------------------------------------------------------


def bare_app() -> Any:
    """A Litestar app with one endpoint that inserts a complete response row with the raw driver."""
    import hashlib

    from litestar import Litestar, post

    url = os.environ["VOP_DATABASE_URL"]
    sqlite = not url.startswith(("postgres://", "postgresql://"))
    state: dict[str, Any] = {}
    names = ", ".join(BARE_COLUMNS)

    async def startup() -> None:
        if sqlite:
            import aiosqlite

            conn = await aiosqlite.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            state["conn"] = conn
        else:
            import asyncpg

            from surveys.db import postgres_config

            state["pool"] = await asyncpg.create_pool(**postgres_config(url), min_size=1, max_size=10)

    async def shutdown() -> None:
        if "conn" in state:
            await state["conn"].close()
        if "pool" in state:
            await state["pool"].close()

    @post("/bare/{referral:int}", status_code=200)
    async def insert(referral: int, data: dict[str, Any]) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        answers = data["answers"]
        key = hashlib.sha256(f"bare:{referral}".encode()).hexdigest()
        row = [
            referral, "exit", now, "web", "core-1", key, *(answers[c] for c in BARE_COLUMNS[6:18]),
            answers["satisfaction"], 9, answers["barriers_text"], json.dumps({"cjs_involved": "yes"}),
            now, now,
        ]  # fmt: skip
        if sqlite:
            row = [v.isoformat() if isinstance(v, dt.datetime) else v for v in row]
            marks = ", ".join("?" for _ in row)
            cursor = await state["conn"].execute(
                f"INSERT INTO response ({names}) VALUES ({marks}) ON CONFLICT (submission_key) DO NOTHING",
                row,
            )
            await cursor.close()
        else:
            marks = ", ".join(f"${n}" for n in range(1, len(row) + 1))
            await state["pool"].execute(
                f"INSERT INTO response ({names}) VALUES ({marks}) ON CONFLICT (submission_key) DO NOTHING",
                *row,
            )
        return {"state": "completed"}

    return Litestar([insert], on_startup=[startup], on_shutdown=[shutdown], openapi_config=None)


# --- driving the load --------------------------------------------------------------------------------


def start_server(target: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    out = open(log, "ab")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{target} did not start; see {log}")
        try:
            httpx.post(f"{base}/", timeout=1)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{target} did not answer in time")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


class Connection:
    """A minimal HTTP/1.1 keep-alive client connection.

    httpx spends more CPU per request than the bare endpoint does on the same two cores, so with it
    both sides measured mostly the client; this sends a prepared request and reads one response.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        # The whole head in one read (a call per header line cost the client more for the app's
        # dozen safety headers than for the bare endpoint's three).
        response = await self.reader.readuntil(b"\r\n\r\n")
        at = response.lower().find(b"\r\ncontent-length:")
        length = int(response[at + 17 : response.index(b"\r\n", at + 2)]) if at >= 0 else 0
        await self.reader.readexactly(length)
        return int(response.split(b" ", 2)[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def drive(base: str, paths: list[str], clients: int, warmup: int) -> dict[str, float]:
    """POST every path once from `clients` keep-alive connections; latency and throughput after warm-up."""
    host, port = base.removeprefix("http://").split(":")
    body = json.dumps({"answers": ANSWERS}).encode()
    latencies: list[float] = []
    failures = 0
    conns = [Connection(host, int(port)) for _ in range(clients)]

    async def worker(conn: Connection, queue: list[str], record: bool) -> None:
        nonlocal failures
        while queue:
            path = queue.pop()
            started = time.perf_counter()
            status = await conn.post(path, body)
            if record:
                latencies.append(time.perf_counter() - started)
                failures += status != 200

    # Warm-up: the first requests open the connections and fill caches; they are not counted.
    warm, rest = paths[:warmup], paths[warmup:][::-1]
    await asyncio.gather(*[worker(c, warm, False) for c in conns])
    started = time.perf_counter()
    await asyncio.gather(*[worker(c, rest, True) for c in conns])
    elapsed = time.perf_counter() - started
    for c in conns:
        await c.close()
    return {"latencies": latencies, "failures": failures, "elapsed": elapsed}


def load(base: str, paths: list[str], clients: int) -> dict[str, Any]:
    """One round of `drive` on uvloop: the client shares the two cores with the server, so the less it
    spends per request, the more of them the server gets (on both sides)."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(drive(base, paths, clients, 200))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one side: the median round's throughput, and latency percentiles over every request."""
    latencies = sorted(x for run in runs for x in run["latencies"])

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    rates = [len(run["latencies"]) / run["elapsed"] for run in runs]
    return {
        "requests": len(latencies),
        "failures": sum(run["failures"] for run in runs),
        "throughput_rps": round(statistics.median(rates), 1),
        "rounds_rps": [round(r, 1) for r in rates],
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


# --- one engine, in its own process ------------------------------------------------------------------


async def prepare(requests: int) -> list[str]:
    """Migrate, add a provider and one exit referral + link per request; returns the tokens."""
    from surveys import db
    from surveys.links import create_link
    from surveys.migrate import migrate
    from surveys.services import add_organisation
    from surveys.tables import Organisation, Referral

    await migrate(quiet=True)
    await db.start()
    await add_organisation("VS", "General service", "provider", "general")
    found = await Organisation.select(Organisation.id).where(Organisation.code == "VS").first()
    assert found is not None
    org = found["id"]
    today = dt.date(2025, 5, 1)
    rows = [
        Referral(
            provider=org,
            referral_id=f"B{n}",
            person_key=f"{n:064d}",
            referral_date=today,
            source="police",
            crime_type="other",
            status="closed",
            support_start=today,
            support_end=today,
        )
        for n in range(requests * 2)
    ]
    for start in range(0, len(rows), 500):
        await Referral.insert(*rows[start : start + 500])
    ids = [r["id"] for r in await Referral.select(Referral.id).order_by(Referral.id)]
    tokens = []
    for n in range(requests):
        token, _ = await create_link(f"{n:064d}", [(ids[n], "exit")])
        tokens.append(token)
    await db.stop()
    return tokens


def run_engine(requests: int, clients: int, rounds: int) -> dict[str, Any]:
    """Rounds of the app then the bare endpoint, alternating, so that both meet the same drift of a
    shared machine; each round submits `requests` fresh links (and inserts as many bare rows)."""
    tokens = asyncio.run(prepare(requests * rounds))
    # The bare rows use the referrals after the links', so neither side sees the other's rows.
    bare_ids = asyncio.run(_referral_ids_from(requests * rounds))
    env = dict(os.environ)
    log = Path(tempfile.gettempdir()) / f"vop-bench-submit-{os.getpid()}.log"
    app_runs, bare_runs = [], []
    for n in range(rounds):
        part = slice(n * requests, (n + 1) * requests)
        proc, base = start_server("app:create_app", env, log)
        try:
            paths = [f"/api/v1/surveys/{t}/submit" for t in tokens[part]]
            app_runs.append(load(base, paths, clients))
        finally:
            stop_server(proc)
        proc, base = start_server("bench.submit:bare_app", env, log)
        try:
            bare_runs.append(load(base, [f"/bare/{r}" for r in bare_ids[part]], clients))
        finally:
            stop_server(proc)
    return {"app": summarise(app_runs), "bare": summarise(bare_runs)}


async def _referral_ids_from(offset: int) -> list[int]:
    from surveys import db
    from surveys.tables import Referral

    await db.start()
    rows = await Referral.select(Referral.id).order_by(Referral.id).limit(10**9).offset(offset)
    await db.stop()
    return [r["id"] for r in rows]


def child(engine: str, requests: int, clients: int, rounds: int) -> None:
    print(json.dumps(run_engine(requests, clients, rounds)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of app and bare")
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests, args.clients, args.rounds)
        return
    summary: dict[str, Any] = {
        "benchmark": "submit", "clients": args.clients, "requests": args.requests, "rounds": args.rounds,
    }  # fmt: skip
    for engine in args.engines.split(","):
        # The app serves as a web process alone (VOP_BACKGROUND_JOBS=false, with `vop text run`,
        # `vop schedule` and `vop dispatch` from cron, as the README describes): otherwise the text
        # analysis of one round's answers runs during the next. Those jobs have their own benchmarks.
        env = {**os.environ, "VOP_ENV": "test", "VOP_RATE_LIMIT_FAILURES": "100000"}
        env["VOP_BACKGROUND_JOBS"] = "false"
        env.setdefault("VOP_SECRET_KEY", "bench-secret-key-0123456789abcdef-0123456789")
        tmp = tempfile.mkdtemp(prefix="vop-bench-submit-")
        dbname = ""
        if engine == "sqlite":
            env["VOP_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
        else:
            dbname = f"vop_bench_{uuid.uuid4().hex[:10]}"
            base = args.pg.rsplit("/", 1)[0]
            env["VOP_DATABASE_URL"] = f"{base}/{dbname}"
            _admin(args.pg, f'CREATE DATABASE "{dbname}"')
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--child", engine, "--requests", str(args.requests),
                 "--clients", str(args.clients), "--rounds", str(args.rounds)],
                env=env, cwd=ROOT, capture_output=True, text=True,
            )  # fmt: skip
            if out.returncode != 0:
                sys.stderr.write(out.stderr[-4000:])
                raise SystemExit(f"the {engine} run failed")
        finally:
            if dbname:
                _admin(args.pg, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        result = json.loads(out.stdout.strip().splitlines()[-1])
        app, bare = result["app"], result["bare"]
        ratio = round(app["throughput_rps"] / bare["throughput_rps"], 3)
        print(
            f"{engine:8s} app  {app['throughput_rps']:8.1f} req/s  p50 {app['p50_ms']:7.1f} ms  "
            f"p99 {app['p99_ms']:7.1f} ms  failures {app['failures']}  rounds {app['rounds_rps']}"
        )
        print(
            f"{engine:8s} bare {bare['throughput_rps']:8.1f} req/s  p50 {bare['p50_ms']:7.1f} ms  "
            f"p99 {bare['p99_ms']:7.1f} ms  failures {bare['failures']}  rounds {bare['rounds_rps']}"
        )
        summary[engine] = {
            "app_rps": app["throughput_rps"], "bare_rps": bare["throughput_rps"], "ratio": ratio,
            "ratio_goal_met": ratio >= 0.5, "app_p99_ms": app["p99_ms"], "app_p50_ms": app["p50_ms"],
            "p99_goal_met": app["p99_ms"] < 50, "bare_p99_ms": bare["p99_ms"],
            "app_failures": app["failures"], "bare_failures": bare["failures"],
            "app_rounds_rps": app["rounds_rps"], "bare_rounds_rps": bare["rounds_rps"],
        }  # fmt: skip
    print(json.dumps(summary))


def _admin(url: str, sql: str) -> None:
    async def go() -> None:
        import asyncpg

        from surveys.db import postgres_config

        conn = await asyncpg.connect(**postgres_config(url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


if __name__ == "__main__":
    main()
