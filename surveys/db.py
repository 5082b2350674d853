"""The database engine, built from VOP_DATABASE_URL, and the one way of opening a write transaction.

SQLite: WAL journal, a busy timeout, and writes in IMMEDIATE transactions (deferred read-then-write
transactions fail with "database is locked" under concurrency, see design/stack-notes.md).
PostgreSQL: an asyncpg pool opened on start-up and closed on shutdown.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType

BUSY_TIMEOUT_SECONDS = 30.0


class SafeSQLiteTransaction(SQLiteTransaction):
    """Piccolo's SQLite transaction leaks its connection (and a thread) when BEGIN fails; this closes it."""

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()
        try:
            await self.begin()
        except BaseException:
            await self.connection.close()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self


class VopSQLiteEngine(SQLiteEngine):
    """SQLite engine with a busy timeout and a leak-free transaction."""

    def transaction(
        self,
        transaction_type: TransactionType = TransactionType.deferred,
        allow_nested: bool = True,
    ) -> SQLiteTransaction:
        return SafeSQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )

    async def get_connection(self) -> Any:
        connection = await super().get_connection()
        # WAL makes NORMAL durable against application crashes; a larger page cache keeps index
        # updates of a bulk import in memory.
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.execute("PRAGMA cache_size=-65536")
        return connection

    async def prep_database(self) -> None:
        # WAL is a property of the file: set once, every later connection uses it.
        with sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")


def postgres_config(url: str) -> dict[str, Any]:
    """asyncpg connection arguments from a postgresql:// URL."""
    parts = urlsplit(url)
    config: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "database": (parts.path or "/postgres").lstrip("/") or "postgres",
    }
    if parts.password:
        config["password"] = parts.password
    return config


def build_engine(url: str) -> Engine:
    """The Piccolo engine for a `sqlite:///file` or `postgresql://` URL."""
    if url.startswith(("postgres://", "postgresql://")):
        return PostgresEngine(config=postgres_config(url))
    path = url.removeprefix("sqlite:///")
    return VopSQLiteEngine(path=path, timeout=BUSY_TIMEOUT_SECONDS)


def current_engine() -> Engine:
    """The engine the tables are bound to (piccolo_conf.DB)."""
    from surveys.tables import Organisation

    engine = Organisation._meta.db
    assert engine is not None
    return engine


def is_sqlite(engine: Engine | None = None) -> bool:
    return (engine or current_engine()).engine_type == "sqlite"


_SQLITE_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _writer_lock() -> asyncio.Lock:
    # One lock per event loop, because an asyncio lock belongs to its loop.
    loop = asyncio.get_running_loop()
    lock = _SQLITE_WRITERS.get(loop)
    if lock is None:
        lock = _SQLITE_WRITERS[loop] = asyncio.Lock()
    return lock


@asynccontextmanager
async def write_transaction() -> AsyncIterator[Any]:
    """A write transaction on the current engine (IMMEDIATE on SQLite); yields the Piccolo transaction.

    SQLite has one writer at a time. Writers of this process queue on an asyncio lock first: waiting
    in SQLite's busy handler (sleep and retry) gave multi-second tails under 64 concurrent submits,
    while the lock is first come, first served and wakes the next writer the moment one commits.
    A nested call joins the outer transaction (and must not take the lock twice).
    """
    engine = current_engine()
    if isinstance(engine, SQLiteEngine):
        if engine.current_transaction.get() is not None:
            async with engine.transaction(transaction_type=TransactionType.immediate) as tx:
                yield tx
            return
        async with _writer_lock(), engine.transaction(transaction_type=TransactionType.immediate) as tx:
            yield tx
    else:
        async with engine.transaction() as tx:
            yield tx


async def start(engine: Engine | None = None) -> bool:
    """Open what the engine needs for serving: the pool on PostgreSQL, WAL on SQLite.

    Returns True when this call opened the pool, so that only its opener closes it (a test or a CLI
    command may already hold one on its own event loop).
    """
    engine = engine or current_engine()
    if isinstance(engine, PostgresEngine):
        if engine.pool is None:
            await engine.start_connection_pool(min_size=1, max_size=10)
            return True
        return False
    await engine.prep_database()
    return False


async def stop(engine: Engine | None = None) -> None:
    engine = engine or current_engine()
    if isinstance(engine, PostgresEngine) and engine.pool is not None:
        await engine.close_connection_pool()


def placeholders(engine: Engine, count: int, start_at: int = 1) -> list[str]:
    """Driver placeholders: `?` on SQLite, `$n` on PostgreSQL (for raw executemany in hot paths)."""
    if engine.engine_type == "sqlite":
        return ["?"] * count
    return [f"${i}" for i in range(start_at, start_at + count)]


async def executemany(tx: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one statement for many rows on the transaction's own driver connection (fast path)."""
    await tx.connection.executemany(sql, rows)
