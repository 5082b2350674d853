"""The database engine, built from VOP_DATABASE_URL, and the one way of opening a write transaction.

SQLite: WAL journal, a busy timeout, and writes in IMMEDIATE transactions (deferred read-then-write
transactions fail with "database is locked" under concurrency, see design/stack-notes.md).
PostgreSQL: an asyncpg pool opened on start-up and closed on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 30.0
POOL_SIZE = 10  # PostgreSQL connections per process in Piccolo's pool
# And for the write paths (`_WriteConnections`), opened as needed. With submits sharing statements
# (64 concurrent submits, 4 alternating rounds each): 2,339 req/s, p99 41 ms with 12; 2,278 req/s,
# p99 44 ms with 24 (one round 58 ms); 1,940 req/s, p99 53 ms with 6.
WRITE_CONNECTIONS = 12
# asyncpg keeps prepared statements up to this size; its default (15 KB) would parse and plan again, on
# every use, a write shared by 16 submits of a longer instrument (about 13 KB with the core one; see
# `_COMPLETIONS` in surveys/pages/flow.py).
STATEMENT_CACHE_BYTES = 128 * 1024


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


class SafePostgresTransaction(PostgresTransaction):
    """Piccolo's PostgreSQL transaction keeps its pooled connection for ever when BEGIN fails, or when
    the rollback fails, as it does for a task cancelled mid-statement (a background job at shutdown):
    the pool's close then waited for it, and `vop serve` hung on stopping. This always gives it back
    (asyncpg's pool resets, or closes, a connection left mid-transaction or mid-statement)."""

    async def __aenter__(self) -> PostgresTransaction:
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()
        try:
            self.transaction = self.connection.transaction()
            await self.begin()
        except BaseException:
            await self._give_back()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception is not None:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            await self._give_back()
            self.engine.current_transaction.reset(self.context)
        return exception is None

    async def _give_back(self) -> None:
        if self.engine.pool:
            await self.engine.pool.release(self.connection)
        else:
            await self.connection.close()


class VopPostgresEngine(PostgresEngine):
    """PostgreSQL engine with a transaction that never keeps its connection."""

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        return SafePostgresTransaction(engine=self, allow_nested=allow_nested)


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
        return VopPostgresEngine(config=postgres_config(url))
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


async def _keep_session(_: Any) -> None:
    """The pool's reset of a released connection: nothing to do, so no round trip.

    asyncpg's default reset sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`
    on every release, a round trip as costly as a statement. vop never changes session state (no SET
    outside a transaction, no LISTEN, cursors or advisory locks; its temporary tables drop on commit),
    and asyncpg still rolls back a transaction left open before calling this.
    """


async def start(engine: Engine | None = None) -> bool:
    """Open what the engine needs for serving: the pool on PostgreSQL, WAL on SQLite.

    Returns True when this call opened the pool, so that only its opener closes it (a test or a CLI
    command may already hold one on its own event loop).
    """
    engine = engine or current_engine()
    if isinstance(engine, PostgresEngine):
        if engine.pool is None:
            await engine.start_connection_pool(min_size=1, max_size=POOL_SIZE, reset=_keep_session)
            return True
        return False
    await engine.prep_database()
    return False


async def stop(engine: Engine | None = None) -> None:
    engine = engine or current_engine()
    if isinstance(engine, PostgresEngine):
        with contextlib.suppress(RuntimeError):  # no running loop: nothing of this loop to close
            connections = _WRITE_CONNECTIONS.pop(asyncio.get_running_loop(), None)
            if connections is not None:
                await connections.close()
        if engine.pool is not None:
            await engine.close_connection_pool()


def placeholders(engine: Engine, count: int, start_at: int = 1) -> list[str]:
    """Driver placeholders: `?` on SQLite, `$n` on PostgreSQL (for raw executemany in hot paths)."""
    if engine.engine_type == "sqlite":
        return ["?"] * count
    return [f"${i}" for i in range(start_at, start_at + count)]


async def executemany(tx: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one statement for many rows on the transaction's own driver connection (fast path)."""
    await tx.connection.executemany(sql, rows)


# --- raw statements in one write transaction (the hot paths) -----------------------------------------


class Statements:
    """Raw SQL with `?` placeholders on one write transaction's connection, on either engine."""

    sqlite: bool

    async def fetchrow(self, text: str, *args: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    async def fetch(self, text: str, *args: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def execute(self, text: str, *args: Any) -> None:
        raise NotImplementedError


class _SQLiteStatements(Statements):
    """Statements on a plain sqlite3 connection. The methods are coroutines that never suspend, so a
    whole transaction body runs to its end in one step (see `run_write`)."""

    sqlite = True

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # Timestamps need no conversion here: Piccolo registers sqlite3 adapters (its Timestamptz text, in
    # UTC) for the whole module, so these rows read the same as the ones Piccolo writes.

    async def fetchrow(self, text: str, *args: Any) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self.conn.execute(text, args).fetchone()
        return row

    async def fetch(self, text: str, *args: Any) -> list[dict[str, Any]]:
        return list(self.conn.execute(text, args).fetchall())

    async def execute(self, text: str, *args: Any) -> None:
        self.conn.execute(text, args)


class UniqueViolation(Exception):
    """A PostgreSQL statement broke a unique constraint: another writer got there first."""


class _PostgresStatements(Statements):
    """Statements on an asyncpg connection; `?` placeholders become `$1..$n`."""

    sqlite = False

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @staticmethod
    @lru_cache(maxsize=512)
    def _sql(text: str) -> str:
        parts = text.split("?")
        return "".join(p + (f"${n}" if n < len(parts) else "") for n, p in enumerate(parts, start=1))

    async def fetchrow(self, text: str, *args: Any) -> dict[str, Any] | None:
        try:
            row = await self.conn.fetchrow(self._sql(text), *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(type(exc).__name__) from exc
        return dict(row) if row is not None else None

    async def fetch(self, text: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.conn.fetch(self._sql(text), *args)]

    async def execute(self, text: str, *args: Any) -> None:
        try:
            await self.conn.execute(self._sql(text), *args)
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(type(exc).__name__) from exc


def _run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that must not suspend (its only awaits are `_SQLiteStatements`)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a write body waited on something other than its statements")


class _LongLivedConnection:
    """A sqlite3 connection kept open, reopened when the database file was replaced (tests, `vop demo`)."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self.conn: sqlite3.Connection | None = None
        self.file_id: tuple[int, int] | None = None

    def get(self) -> sqlite3.Connection:
        stat = os.stat(self.kwargs["database"])
        file_id = (stat.st_dev, stat.st_ino)
        if self.conn is None or file_id != self.file_id:
            if self.conn is not None:
                self.conn.close()
            conn = sqlite3.connect(**self.kwargs)
            conn.row_factory = dict_factory
            conn.execute("PRAGMA foreign_keys = 1")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints are `_SQLiteWriter`'s to run
            self.conn, self.file_id = conn, file_id
        return self.conn


Outcome = tuple[bool, Any]  # (True, the body's result) or (False, the exception it raised)


def _deliver(outcomes: list[tuple[asyncio.Future[Any], Outcome]]) -> None:
    """On the caller's event loop: hand each body's result or exception to its waiting request."""
    for future, (ok, value) in outcomes:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


Body = Callable[[Statements], Coroutine[Any, Any, Any]]
Queued = tuple[Body, asyncio.Future[Any]]


class _LoopQueue:
    """Bodies of one event loop waiting for its next batch, and the loop's own connection."""

    def __init__(self, connection: _LongLivedConnection) -> None:
        self.connection = connection
        self.pending: list[Queued] = []
        self.scheduled = False


class _SQLiteWriter:
    """Write transactions of raw statements, run in batches (group commit): on the event loop itself
    while SQLite's write lock is free, else on a writer thread that waits for it.

    Why batches: Piccolo's SQLite engine opens a connection (and a thread) per transaction, and every
    statement is a round trip through the event loop; under 64 concurrent submits throughput fell to a
    twentieth of a bare insert. Here the bodies queued during one turn of the event loop run in the next
    batch: one IMMEDIATE transaction on a long-lived connection, each body inside its own savepoint (a
    body that raises is rolled back to it, alone), one COMMIT for all, then every waiting request is
    answered. Isolation is as if the bodies ran one after another. If the transaction itself fails
    (the commit, or an error after which SQLite abandons it), every body of the batch gets the error:
    none of them was stored.

    Why on the event loop: a batch is SQLite work of tens of microseconds a body that never waits on
    the disk (WAL with synchronous=NORMAL: a commit writes to the page cache; the fsync is the
    checkpoint thread's), while handing it to a thread and back costs two wake-ups and the GIL going
    back and forth. On a 2-core VM of this project a ping-pong between two threads took 94 µs, and
    the server's CPU per submit under 64 clients fell from 0.90-1.05 ms (batches on a writer thread,
    4 runs) to 0.62-0.87 ms (on the loop, 9 runs; that machine's speed varied by half within minutes).
    The loop never waits for the lock: its connection's busy timeout is 0, so when another connection
    holds the write lock (a Piccolo transaction, another process) BEGIN fails at once and the batch
    goes to the writer thread, which waits with the usual busy timeout; while that thread has work,
    new bodies queue behind it and keep their order.
    """

    MAX_BATCH = 256  # bounds how long one transaction holds SQLite's write lock
    CHECKPOINT_EVERY = 1000  # bodies committed between two checkpoints

    def __init__(self, connection_kwargs: dict[str, Any]) -> None:
        # No declared-type converters: they are Python calls per value, and the bodies read raw values
        # (timestamps as ISO text) like the PostgreSQL driver's.
        self.kwargs = {
            **connection_kwargs, "isolation_level": None, "check_same_thread": False, "detect_types": 0,
        }  # fmt: skip
        # No writer checkpoints: copying the log back into the database (and its fsync) took tens of
        # milliseconds inside a commit. A thread of its own does it beside the writers.
        self.connection = _LongLivedConnection(self.kwargs)  # the writer thread's
        self.checkpoints = _LongLivedConnection(self.kwargs)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vop-sqlite-writer")
        self.checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vop-sqlite-checkpoint")
        self.since_checkpoint = 0
        self.copying: Future[None] | None = None
        self.lock = threading.Lock()
        self.pending: list[Queued] = []  # the writer thread's queue
        self.draining = False  # the writer thread has work: new bodies go behind it
        self.loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, body: Callable[[Statements], Coroutine[Any, Any, T]]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self.lock:
            if self.draining:
                self.pending.append((body, future))
            else:
                here = self.loops.get(loop)
                if here is None:
                    here = self.loops[loop] = _LoopQueue(_LongLivedConnection({**self.kwargs, "timeout": 0}))
                here.pending.append((body, future))
                if not here.scheduled:
                    here.scheduled = True
                    loop.call_soon(self._drain_here, here)
        return await future

    def _drain_here(self, here: _LoopQueue) -> None:
        """On the event loop, after the turn that queued these bodies: run them, unless the lock is held."""
        with self.lock:
            queued, here.pending, here.scheduled = here.pending, [], False
            if self.draining:
                self.pending.extend(queued)  # behind the bodies the writer thread already has
                return
        for start in range(0, len(queued), self.MAX_BATCH):
            batch = queued[start : start + self.MAX_BATCH]
            outcomes = self._run_batch(here.connection, [body for body, _ in batch], wait=False)
            if outcomes is None:
                self._to_thread(queued[start:])
                return
            _deliver([(future, outcome) for (_, future), outcome in zip(batch, outcomes, strict=True)])
            self._copy_log_back(here.connection, len(batch))

    def _to_thread(self, queued: list[Queued]) -> None:
        with self.lock:
            self.pending.extend(queued)
            start, self.draining = not self.draining, True
        if start:
            self.executor.submit(self._drain)

    def _drain(self) -> None:
        """On the writer thread: run batches until nothing is waiting."""
        while True:
            with self.lock:
                batch, self.pending = self.pending[: self.MAX_BATCH], self.pending[self.MAX_BATCH :]
                if not batch:
                    self.draining = False
                    return
            outcomes = self._run_batch(self.connection, [body for body, _ in batch], wait=True)
            assert outcomes is not None
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                by_loop.setdefault(future.get_loop(), []).append((future, outcome))
            for loop, delivered in by_loop.items():
                # RuntimeError: that event loop has closed, so nobody is waiting any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_deliver, delivered)
            self._copy_log_back(self.connection, len(batch))

    def _copy_log_back(self, connection: _LongLivedConnection, written: int) -> None:
        """Checkpoint every CHECKPOINT_EVERY writes, mostly on the checkpoint thread.

        That thread copies the log back while writes go on, so it never catches up with the last
        frames, and a log is only started again from its beginning once all of it is copied: alone,
        it let the log grow by every write (50 MB in 8,000 submits). So when it is done, the writer
        that just committed copies the few frames written meanwhile, between two transactions, and the
        next transaction starts the log again.
        """
        with self.lock:
            finish = self.copying is not None and self.copying.done()
            if finish:
                self.copying = None
        if finish:
            with contextlib.suppress(sqlite3.Error):
                connection.get().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        with self.lock:
            self.since_checkpoint += written
            if self.since_checkpoint >= self.CHECKPOINT_EVERY and self.copying is None:
                self.since_checkpoint = 0
                self.copying = self.checkpointer.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        # PASSIVE: copies what it can without waiting for (or blocking) the writer or readers.
        self.checkpoints.get().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _run_batch(
        self, connection: _LongLivedConnection, bodies: list[Body], wait: bool
    ) -> list[Outcome] | None:
        """The bodies' outcomes; None when `wait` is false and another connection holds the lock."""
        try:
            conn = connection.get()
        except Exception as exc:
            return [(False, exc)] * len(bodies)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not wait and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                return None
            return [(False, exc)] * len(bodies)
        outcomes: list[Outcome] = []
        try:
            statements = _SQLiteStatements(conn)
            for body in bodies:
                conn.execute("SAVEPOINT body")
                try:
                    outcomes.append((True, _run_to_end(body(statements))))
                except Exception as exc:
                    if not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back: nothing of the batch stays
                    conn.execute("ROLLBACK TO body")
                    outcomes.append((False, exc))
                conn.execute("RELEASE body")
            conn.execute("COMMIT")
        except Exception as exc:
            # The batch's own error is what the callers need to see, not one from the rollback.
            with contextlib.suppress(Exception):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return [(False, exc)] * len(bodies)
        return outcomes


_WRITERS: dict[str, _SQLiteWriter] = {}
_WRITERS_LOCK = threading.Lock()


def _sqlite_writer(engine: SQLiteEngine) -> _SQLiteWriter:
    path = os.path.abspath(engine.path)
    with _WRITERS_LOCK:
        writer = _WRITERS.get(path)
        if writer is None:
            writer = _WRITERS[path] = _SQLiteWriter(engine.connection_kwargs)
        return writer


async def run_write(body: Callable[[Statements], Coroutine[Any, Any, T]]) -> T:
    """Run `body` as one write transaction of raw statements and return what it returns.

    On SQLite the body runs in one step, batched with others, on the event loop or on the writer
    thread (see `_SQLiteWriter`), and must await nothing but its `Statements` (it raises RuntimeError
    otherwise, and its writes are rolled back); on PostgreSQL it runs in a transaction on one of the write
    connections (`_WriteConnections`).
    """
    engine = current_engine()
    if isinstance(engine, SQLiteEngine):
        return await _sqlite_writer(engine).run(body)
    assert isinstance(engine, PostgresEngine)
    # Straight on the driver (BEGIN and COMMIT as plain statements): Piccolo's and asyncpg's
    # transaction objects were a tenth of a submit's time. Never inside another transaction: the
    # callers are request handlers.
    connections = _write_connections(engine)
    conn = await connections.take()
    try:
        await conn.execute("BEGIN")
        result = await body(_PostgresStatements(conn))
        await conn.execute("COMMIT")
    except BaseException:
        connections.discard(conn)  # closing it rolls back whatever it was in the middle of
        raise
    connections.give_back(conn)
    return result


async def run_unlocked(body: Callable[[Statements], Coroutine[Any, Any, T]]) -> T:
    """PostgreSQL only: run `body` outside a transaction, each statement committing on its own.

    For a read followed by a single compare-and-set statement: two round trips where a locked
    transaction takes four. The body must make any write of more than one statement safe itself (one
    statement, guarded by what it read).
    """
    engine = current_engine()
    assert isinstance(engine, PostgresEngine), "PostgreSQL only"
    connections = _write_connections(engine)
    conn = await connections.take()
    try:
        result = await body(_PostgresStatements(conn))
    except BaseException:
        connections.discard(conn)
        raise
    connections.give_back(conn)
    return result


class _WriteConnections:
    """PostgreSQL connections of `run_write` and `run_unlocked`, handed out first come, first served.

    Not the engine's pool: asyncpg's acquire and release (a shielded task and a reset each time) took
    22 µs against about 1 µs here. WRITE_CONNECTIONS of them, opened on first use, one set per event
    loop, closed by `stop()`. Turns are taken on a semaphore, which keeps its waiters in order (an
    asyncio queue or asyncpg's pool let a newcomer take a connection meant for a woken waiter, who then
    went to the back: under 64 concurrent submits some waited ten times the median). A connection whose
    user failed or was cancelled is closed, never handed on (it may be in a transaction or
    mid-statement), and replaced on next use.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.turns = asyncio.Semaphore(WRITE_CONNECTIONS)
        self.free: list[Any] = [None] * WRITE_CONNECTIONS  # None: a connection not opened yet
        self.open: set[Any] = set()

    async def take(self) -> Any:
        await self.turns.acquire()
        conn = self.free.pop()
        if conn is not None and not conn.is_closed():
            return conn
        self.open.discard(conn)
        try:
            conn = await asyncpg.connect(**self.config, max_cacheable_statement_size=STATEMENT_CACHE_BYTES)
        except BaseException:
            self._back(None)
            raise
        self.open.add(conn)
        return conn

    def give_back(self, conn: Any) -> None:
        self._back(conn)

    def discard(self, conn: Any) -> None:
        self.open.discard(conn)
        conn.terminate()
        self._back(None)

    def _back(self, conn: Any) -> None:
        self.free.append(conn)
        self.turns.release()

    async def close(self) -> None:
        for conn in list(self.open):
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)
        self.open.clear()


_WRITE_CONNECTIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _WriteConnections] = (
    weakref.WeakKeyDictionary()
)


def _write_connections(engine: PostgresEngine) -> _WriteConnections:
    loop = asyncio.get_running_loop()
    connections = _WRITE_CONNECTIONS.get(loop)
    if connections is None or connections.config != engine.config:
        connections = _WRITE_CONNECTIONS[loop] = _WriteConnections(dict(engine.config))
    return connections
