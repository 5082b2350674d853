"""`surveys.db.run_write`: one write transaction of raw statements, on SQLite in one step on a long-lived
connection (inline when the write lock is free, else queued on the writer thread), on PostgreSQL on a
pooled connection."""

from __future__ import annotations

import asyncio

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
        # Another writer (Piccolo's own connection) holds SQLite's write lock: the body cannot run
        # inline, so it waits on the writer thread, without blocking this event loop.
        await Organisation.update({Organisation.name: "Renamed first"}).where(Organisation.code == "ROSA")
        queued = asyncio.create_task(db.run_write(body))
        await asyncio.sleep(0.2)
        assert not queued.done()
    # Once the other writer commits, the queued body runs, and sees what it committed.
    assert await asyncio.wait_for(queued, timeout=30) == "Renamed first"
    assert await name_of("VS") == "After the other writer"
