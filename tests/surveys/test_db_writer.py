"""`surveys.db.run_write`: one write transaction of raw statements, on SQLite in one step on the event
loop, or on the writer thread while another connection holds the lock (bodies queued together share a
commit, each in its own savepoint), on PostgreSQL on a pooled connection."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from typing import Any

import pytest

from surveys import db
from surveys.tables import Organisation


async def name_of(code: str) -> str:
    row = await Organisation.select(Organisation.name).where(Organisation.code == code).first()
    assert row is not None
    return str(row["name"])


async def test_a_body_commits_and_returns_its_value(orgs: None) -> None:
    async def body(t: db.Statements) -> list[str]:
        await t.execute("UPDATE organisation SET name = ? WHERE code = ?", "Renamed", "VS")
        rows = await t.fetch("SELECT code FROM organisation WHERE name = ? ORDER BY code", "Renamed")
        one = await t.fetchrow("SELECT name FROM organisation WHERE code = ?", "ROSA")
        assert one is not None and one["name"] == "Sexual violence service"
        assert await t.fetchrow("SELECT name FROM organisation WHERE code = ?", "NOPE") is None
        return [r["code"] for r in rows]

    assert await db.run_write(body) == ["VS"]
    assert await name_of("VS") == "Renamed"


async def test_a_failing_body_leaves_nothing(orgs: None) -> None:
    async def body(t: db.Statements) -> None:
        await t.execute("UPDATE organisation SET name = ? WHERE code = ?", "Half done", "VS")
        raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        await db.run_write(body)
    assert await name_of("VS") == "General service"
    # The connection is usable afterwards (the transaction was rolled back, not left open).
    await db.run_write(lambda t: t.execute("UPDATE organisation SET name = ? WHERE code = ?", "Next", "VS"))
    assert await name_of("VS") == "Next"


async def test_on_sqlite_a_body_may_wait_on_nothing_but_its_statements(orgs: None) -> None:
    if not db.is_sqlite():
        pytest.skip("PostgreSQL bodies run on the event loop and may await anything")

    async def body(t: db.Statements) -> None:
        await t.execute("UPDATE organisation SET name = ? WHERE code = ?", "Never", "VS")
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="waited on something other than its statements"):
        await db.run_write(body)
    assert await name_of("VS") == "General service"


async def test_on_sqlite_a_held_write_lock_queues_the_body_instead_of_failing(orgs: None) -> None:
    if not db.is_sqlite():
        pytest.skip("SQLite's single writer only")

    async def body(t: db.Statements) -> str:
        await t.execute("UPDATE organisation SET name = ? WHERE code = ?", "After the other writer", "VS")
        row = await t.fetchrow("SELECT name FROM organisation WHERE code = ?", "ROSA")
        assert row is not None
        return str(row["name"])

    async with db.write_transaction():
        # Another writer (Piccolo's own connection) holds SQLite's write lock: the body waits on the
        # writer thread, without blocking this event loop (which that writer needs to commit).
        await Organisation.update({Organisation.name: "Renamed first"}).where(Organisation.code == "ROSA")
        queued = asyncio.create_task(db.run_write(body))
        started = time.monotonic()
        await asyncio.sleep(0.2)
        assert time.monotonic() - started < 5, "the event loop waited for SQLite's lock"
        assert not queued.done()
    # Once the other writer commits, the queued body runs, and sees what it committed.
    assert await asyncio.wait_for(queued, timeout=30) == "Renamed first"
    assert await name_of("VS") == "After the other writer"


async def test_on_sqlite_a_body_runs_on_the_event_loop_while_the_lock_is_free(orgs: None) -> None:
    """No hand-over to a thread and back when nothing else is writing (the usual case)."""
    if not db.is_sqlite():
        pytest.skip("PostgreSQL bodies always run on the event loop")

    async def body(t: db.Statements) -> int:
        await t.execute("UPDATE organisation SET name = ? WHERE code = ?", "On the loop", "VS")
        return threading.get_ident()

    assert await db.run_write(body) == threading.get_ident()
    assert await name_of("VS") == "On the loop"


async def test_concurrent_bodies_each_commit_or_fail_alone(orgs: None) -> None:
    """Many bodies at once (on SQLite, batched into one commit): each sees the ones before it, and one
    that fails leaves nothing while the others keep their writes."""

    def append(mark: str, fail: bool = False) -> Any:
        async def body(t: db.Statements) -> int:
            await t.execute("UPDATE organisation SET name = name || ? WHERE code = ?", mark, "VS")
            if fail:
                raise ValueError(mark)
            row = await t.fetchrow("SELECT name FROM organisation WHERE code = ?", "VS")
            assert row is not None
            return len(str(row["name"]))

        return body

    marks = [chr(ord("a") + n % 26) for n in range(40)]
    results = await asyncio.gather(
        *[db.run_write(append(m, fail=n == 17)) for n, m in enumerate(marks)], return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], ValueError) and str(failed[0]) == marks[17]
    name = await name_of("VS")
    # Every mark but the failed one, once each (in the order the bodies got the lock).
    assert name.startswith("General service")
    assert sorted(name.removeprefix("General service")) == sorted(m for n, m in enumerate(marks) if n != 17)
    # No lost update: every successful body saw a name one mark longer than the one before it.
    lengths = sorted(r for r in results if isinstance(r, int))
    assert lengths == list(range(len("General service") + 1, len(name) + 1))


async def test_on_postgres_a_cancelled_body_leaves_nothing_and_the_next_one_runs(orgs: None) -> None:
    if db.is_sqlite():
        pytest.skip("SQLite bodies never wait, so there is nothing to cancel mid-way")

    async def slow(t: db.Statements) -> None:
        await t.execute("UPDATE organisation SET name = ? WHERE code = ?", "Cancelled", "VS")
        await t.execute("SELECT pg_sleep(5)")

    task = asyncio.create_task(db.run_write(slow))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Every write connection in turn: none is left mid-statement or inside the cancelled transaction.
    for n in range(db.WRITE_CONNECTIONS + 2):
        await db.run_write(
            lambda t, n=n: t.execute("UPDATE organisation SET name = ? WHERE code = ?", f"N{n}", "ROSA")
        )
    assert await name_of("VS") == "General service"
    assert await name_of("ROSA") == f"N{db.WRITE_CONNECTIONS + 1}"


async def test_on_sqlite_the_write_ahead_log_starts_again_instead_of_growing(
    orgs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a steady stream of writes the checkpoint thread never copies the last frames back (writes
    go on while it works), and a log starts again only once all of it is copied: without the writer
    finishing the job, every write made the log file longer."""
    if not db.is_sqlite():
        pytest.skip("SQLite's write-ahead log")
    engine = db.current_engine()
    writer = db._sqlite_writer(engine)  # type: ignore[arg-type]
    monkeypatch.setattr(writer, "CHECKPOINT_EVERY", 50)
    await db.run_write(lambda t: t.execute("CREATE TABLE wal_probe (id INTEGER PRIMARY KEY, body TEXT)"))
    # An empty log file to start from: its size afterwards is the longest the log grew here. A checkpoint
    # of earlier tests' writes may still be running on the checkpoint thread: TRUNCATE is then busy.
    with sqlite3.connect(engine.path, timeout=30) as conn:  # type: ignore[attr-defined]
        for _ in range(100):
            if conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:
                break
            await asyncio.sleep(0.1)
    assert os.path.getsize(f"{engine.path}-wal") == 0  # type: ignore[attr-defined]

    async def stream(n: int) -> None:
        for k in range(400):
            await db.run_write(
                lambda t, k=k: t.execute("INSERT INTO wal_probe (body) VALUES (?)", f"{n}:{k}" * 20)
            )

    await asyncio.gather(*[stream(n) for n in range(5)])  # 2,000 writes, 5 at a time
    rows = await db.run_write(lambda t: t.fetchrow("SELECT count(*) AS n FROM wal_probe"))
    assert rows is not None and rows["n"] == 2000
    page = 4096 + 24  # a frame: a page and its header
    frames = os.path.getsize(f"{engine.path}-wal") // page  # type: ignore[attr-defined]
    assert frames < 400, frames  # a log that never started again held a frame or more per write


async def test_a_transaction_cancelled_mid_statement_gives_its_connection_back(orgs: None) -> None:
    """Piccolo's PostgreSQL transaction kept its connection when a task was cancelled mid-statement (a
    background job at shutdown), and closing the pool then waited for ever."""
    engine = db.current_engine()
    if db.is_sqlite():
        pytest.skip("PostgreSQL's pool")

    async def job() -> None:
        while True:
            async with db.write_transaction():
                await Organisation.select().run()
                await Organisation.count().run()

    for pause in [0.02 * n for n in range(1, 16)]:
        task = asyncio.create_task(job())
        await asyncio.sleep(pause)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    pool = engine.pool  # type: ignore[attr-defined]
    assert pool.get_idle_size() == pool.get_size()
