"""All-or-nothing imports of organisations and referrals from CSV or XLSX.

Every row is checked before anything is written; one bad row rejects the file with every problem listed
as (row, column, reason), so a provider fixes the file once. Valid files are written in one transaction
through the driver's bulk path (executemany on SQLite, COPY + INSERT .. ON CONFLICT on PostgreSQL),
because a year of referrals must load in seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from surveys import db, fields
from surveys.crypto import keyring
from surveys.tables import Organisation, Referral
from surveys.tabular import FileRejected, Problem, Table, read_table

MAX_PROBLEMS_LISTED = 200


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused over a synchronous bulk step of an import.

    An import allocates lists and tuples by the hundred thousand (rows, records), none of them in a
    reference cycle; the collector, triggered every 700 allocations, would traverse the ones kept again
    and again: measured, over a second per 100,000 referrals, as much as all the parsing. Reference
    counting still frees memory meanwhile. Never held across an await, so that nothing else in the
    process runs with the collector paused; a nested pause leaves the collector to the outer one.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True, slots=True)
class ImportResult:
    rows: int
    created: int
    updated: int

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "created": self.created, "updated": self.updated}


@dataclass(slots=True)
class Parsed:
    """Typed values of a valid file, column by column (absent optional columns are all None)."""

    numbers: list[int]  # the spreadsheet row number of each record
    columns: dict[str, list[Any]]

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        names = list(self.columns)
        return [
            (number, dict(zip(names, values, strict=True)))
            for number, values in zip(self.numbers, zip(*self.columns.values(), strict=True), strict=True)
        ]


def check_header(header: list[str], readers: dict[str, Any], optional: frozenset[str]) -> None:
    problems: list[Problem] = []
    seen: set[str] = set()
    for column in header:
        if column not in readers:
            problems.append(Problem(1, column, f"unknown column (expected: {', '.join(readers)})"))
        elif column in seen:
            problems.append(Problem(1, column, "column appears twice"))
        seen.add(column)
    for column in readers:
        if column not in seen and column not in optional:
            problems.append(Problem(1, column, "required column is missing"))
    if problems:
        raise FileRejected(problems)


def _read_column(read: Callable[[str], Any], cells: list[str]) -> tuple[list[Any], list[tuple[int, str]]]:
    """Values of one column; on any bad cell, the slow path names every bad cell (index, reason).

    A reader with a whole-column path (fields: `column`) reads a clean column in one C-level pass;
    any other reader is mapped over the cells, which stops at the first bad one.
    """
    whole_column = getattr(read, "column", None)
    if whole_column is not None:
        values = whole_column(cells)
        if values is not None:
            return values, []
    else:
        try:
            return list(map(read, cells)), []
        except fields.FieldError:
            pass
    values = []
    bad: list[tuple[int, str]] = []
    for index, cell in enumerate(cells):
        try:
            values.append(read(cell))
        except fields.FieldError as exc:
            values.append(None)
            bad.append((index, str(exc)))
    return values, bad


def validate_columns(
    table: Table,
    readers: dict[str, Callable[[str], Any]],
    optional: frozenset[str],
    cross_check: Callable[[dict[str, list[Any]]], list[tuple[int, str, str]]],
) -> Parsed:
    """Typed values of every row, or FileRejected listing every problem (header problems first).

    Works a column at a time, by blocks of rows (see Table.blocks): a clean column is read in one pass
    (see _read_column), which is what lets a year of referrals validate in a fraction of a second.
    """
    check_header(table.header, readers, optional)
    width = len(table.header)
    # (record index, column order, column, reason)
    problems = [(i, -1, "", f"has {count} cells but the header has {width}") for i, count in table.overlong]
    present = [
        (order, name, table.header.index(name)) for order, name in enumerate(readers) if name in table.header
    ]
    columns: dict[str, list[Any]] = {
        name: [] if name in table.header else [None] * table.size for name in readers
    }
    for start, block in table.blocks():
        for order, name, position in present:
            values, bad = _read_column(readers[name], block[position])
            columns[name] += values
            problems += [(start + index, order, name, reason) for index, reason in bad]
    # Rules across columns only where every cell of the row could be read.
    bad_rows = {index for index, *_ in problems}
    order_of = {name: order for order, name in enumerate(readers)}
    problems += [
        (i, order_of.get(c, 0), c, reason) for i, c, reason in cross_check(columns) if i not in bad_rows
    ]
    if problems:
        problems.sort()
        listed = [Problem(table.numbers[i], column, reason) for i, _, column, reason in problems]
        raise FileRejected(listed[:MAX_PROBLEMS_LISTED], len(listed))
    return Parsed(numbers=table.numbers, columns=columns)


def row_checks(
    check: Callable[[dict[str, Any]], list[tuple[str, str]]], *names: str
) -> Callable[[dict[str, list[Any]]], list[tuple[int, str, str]]]:
    """A row rule (fields.check_*) applied to every record, reading only the columns it needs."""

    def run(columns: dict[str, list[Any]]) -> list[tuple[int, str, str]]:
        found = []
        for index, values in enumerate(zip(*(columns[n] for n in names), strict=True)):
            for column, reason in check(dict(zip(names, values, strict=True))):
                found.append((index, column, reason))
        return found

    return run


def _duplicates(numbers: list[int], keys: list[Any], column: str) -> list[Problem]:
    first_row: dict[Any, int] = {}
    problems: list[Problem] = []
    for number, key in zip(numbers, keys, strict=True):
        if key in first_row:
            problems.append(Problem(number, column, f"duplicates row {first_row[key]} of this file"))
        else:
            first_row[key] = number
    return problems


async def import_organisations(data: bytes, filename: str = "") -> ImportResult:
    """Create or update organisations from a file in the organisations format."""
    parsed = validate_columns(
        read_table(data, filename),
        fields.ORGANISATION_READERS,
        fields.ORGANISATION_OPTIONAL,
        row_checks(fields.check_organisation, "kind", "service"),
    )
    dupes = _duplicates(parsed.numbers, parsed.columns["code"], "code")
    rows = parsed.rows()
    if dupes:
        raise FileRejected(dupes)
    existing = {r["code"] for r in await Organisation.select(Organisation.code).run()}
    created = updated = 0
    async with db.write_transaction():
        for _, values in rows:
            service = values.get("service")
            if values["code"] in existing:
                updated += 1
                await (
                    Organisation.update(
                        {
                            Organisation.name: values["name"],
                            Organisation.kind: values["kind"],
                            Organisation.service: service,
                        }
                    )
                    .where(Organisation.code == values["code"])
                    .run()
                )
            else:
                created += 1
                await Organisation.insert(
                    Organisation(
                        code=values["code"], name=values["name"], kind=values["kind"], service=service
                    )
                ).run()
    return ImportResult(rows=len(rows), created=created, updated=updated)


# Column order of the bulk write; the keyed hash and ciphertexts replace person_id and contact details.
REFERRAL_DB_COLUMNS = (
    "provider",
    "referral_id",
    "person_key",
    "referral_date",
    "source",
    "crime_type",
    "domestic_abuse",
    "hate_crime",
    "repeat_victim",
    "age_band",
    "sex",
    "ethnicity",
    "disability",
    "status",
    "support_start",
    "support_end",
    "contact_email_enc",
    "contact_phone_enc",
    "preferred_channel",
    "safe_to_contact",
    "consent_to_survey",
    "created_at",
    "updated_at",
)
_NOT_UPDATED = {"provider", "referral_id", "created_at"}


async def provider_ids() -> dict[str, tuple[int, str]]:
    """Organisation code -> (id, kind)."""
    rows = await Organisation.select(Organisation.id, Organisation.code, Organisation.kind).run()
    return {r["code"]: (r["id"], r["kind"]) for r in rows}


def check_referral_providers(
    parsed: Parsed, orgs: dict[str, tuple[int, str]], only_provider: str | None
) -> None:
    """FileRejected for providers that are unknown or not the caller's, and ids repeated in the file."""
    cols = parsed.columns
    problems: list[Problem] = []
    allowed = {code for code, (_, kind) in orgs.items() if kind == "provider"}
    if only_provider is not None:
        allowed &= {only_provider}
    # Fast path: a clean file is checked with set operations; rows are walked only to name the bad ones.
    if not set(cols["provider"]) <= allowed:
        for number, code in zip(parsed.numbers, cols["provider"], strict=True):
            if only_provider is not None and code != only_provider:
                reason = f"you may import only {only_provider}'s referrals"
                problems.append(Problem(number, "provider", reason))
            elif code not in orgs:
                problems.append(Problem(number, "provider", f"{code!r} is not a known organisation"))
            elif orgs[code][1] != "provider":
                problems.append(Problem(number, "provider", f"{code!r} is a commissioner, not a provider"))
    if len(set(zip(cols["provider"], cols["referral_id"], strict=True))) != len(parsed.numbers):
        keys = list(zip(cols["provider"], cols["referral_id"], strict=True))
        problems += _duplicates(parsed.numbers, keys, "referral_id")
    if problems:
        problems.sort(key=lambda p: p.row)
        raise FileRejected(problems[:MAX_PROBLEMS_LISTED], len(problems))


def _iso_dates(values: list[dt.date | None]) -> list[str | None]:
    """Dates as ISO text, as Piccolo keeps them on SQLite; a column holds few distinct dates."""
    text: dict[dt.date | None, str | None] = {d: d.isoformat() for d in set(values) if d is not None}
    text[None] = None
    return list(map(text.__getitem__, values))


@dataclass(frozen=True, slots=True)
class RecordChunks:
    """Rows for the bulk write (REFERRAL_DB_COLUMNS order, ready for the engine's driver), a chunk at a
    time, so that hashing and encrypting one chunk overlaps the database writing the previous one.

    Made anew each time it is gone through, so that PostgreSQL can write them a second way without
    holding every chunk meanwhile (see _write_postgres).
    """

    parsed: Parsed
    orgs: dict[str, tuple[int, str]]
    for_sqlite: bool
    size: int = 10_000

    def __iter__(self) -> Iterator[list[tuple[Any, ...]]]:
        keys = keyring()
        now = dt.datetime.now(dt.UTC)
        stamp = now.isoformat() if self.for_sqlite else now
        cols = self.parsed.columns
        org_id = {code: ident for code, (ident, _) in self.orgs.items()}
        # Columns written as read (flags too: sqlite3 binds a bool as the integer 0 or 1), or converted by
        # one lookup per cell; the keyed hash and the ciphertexts are made chunk by chunk below.
        ready: dict[str, list[Any]] = {name: cols[name] for name in REFERRAL_DB_COLUMNS if name in cols}
        ready["provider"] = list(map(org_id.__getitem__, cols["provider"]))
        if self.for_sqlite:
            for name in ("referral_date", "support_start", "support_end"):
                ready[name] = _iso_dates(cols[name])
        total, size = len(self.parsed.numbers), self.size
        for start in range(0, total, size):
            stop = min(start + size, total)
            with collector_paused():  # not across the yield: the writer awaits the database meanwhile
                chunk = {name: values[start:stop] for name, values in ready.items()}
                chunk["person_key"] = keys.person_keys(cols["person_id"][start:stop])
                chunk["contact_email_enc"] = keys.encrypt_all(cols["contact_email"][start:stop])
                chunk["contact_phone_enc"] = keys.encrypt_all(cols["contact_phone"][start:stop])
                chunk["created_at"] = chunk["updated_at"] = [stamp] * (stop - start)
                rows = list(zip(*(chunk[name] for name in REFERRAL_DB_COLUMNS), strict=True))
            yield rows


def referral_record_chunks(
    parsed: Parsed, orgs: dict[str, tuple[int, str]], *, for_sqlite: bool, size: int = 10_000
) -> RecordChunks:
    """The rows of a valid referrals file for the bulk write, chunk by chunk (see RecordChunks)."""
    return RecordChunks(parsed, orgs, for_sqlite, size)


def referral_records(
    parsed: Parsed, orgs: dict[str, tuple[int, str]], only_provider: str | None, *, for_sqlite: bool
) -> list[tuple[Any, ...]]:
    """All rows for the bulk write at once (checked first)."""
    check_referral_providers(parsed, orgs, only_provider)
    with collector_paused():
        return [row for chunk in referral_record_chunks(parsed, orgs, for_sqlite=for_sqlite) for row in chunk]


class _Rows:
    """The rows of a sequence of chunks, for one COPY; counts them, and keeps the chunks if asked to."""

    def __init__(self, chunks: Iterable[list[tuple[Any, ...]]], keep: bool = False) -> None:
        self.chunks = chunks
        self.count = 0
        self.kept: list[list[tuple[Any, ...]]] | None = [] if keep else None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for chunk in self.chunks:
            self.count += len(chunk)
            if self.kept is not None:
                self.kept.append(chunk)
            yield from chunk


_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in REFERRAL_DB_COLUMNS if c not in _NOT_UPDATED)
_UPSERT = f"ON CONFLICT (provider, referral_id) DO UPDATE SET {_UPDATES}"


async def _any_stored(conn: Any, providers: list[int], referral_ids: list[str]) -> bool:
    """Whether any of these (provider, referral_id) is stored (PostgreSQL)."""
    # Providers first: a provider's first import then costs one index probe, not one per row.
    some = "SELECT EXISTS (SELECT 1 FROM referral WHERE provider = ANY($1::integer[]))"
    if not await conn.fetchval(some, sorted(set(providers))):
        return False
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM unnest($1::integer[], $2::text[]) AS k (provider, referral_id) "
            "JOIN referral r ON r.provider = k.provider AND r.referral_id = k.referral_id)",
            providers,
            referral_ids,
        )
    )


async def upsert_referrals(
    chunks: Iterable[list[tuple[Any, ...]]], keys: tuple[list[int], list[str]] | None = None
) -> tuple[int, int]:
    """Insert or update referrals by (provider, referral_id) in one transaction; (created, updated).

    While the driver writes one chunk (in its own thread on SQLite, on the server on PostgreSQL), the
    next chunk is prepared: the writes and the hashing overlap. `keys`, the rows' provider ids and
    referral ids when the caller has them, let PostgreSQL COPY rows none of which is stored yet straight
    into the table, as fast as the raw driver.
    """
    async with db.write_transaction() as tx:
        if db.is_sqlite():
            return await _write_sqlite(tx.connection, chunks)
        return await _write_postgres(tx.connection, chunks, keys)


async def _write_sqlite(conn: Any, chunks: Iterable[list[tuple[Any, ...]]]) -> tuple[int, int]:
    count = "SELECT COUNT(*) AS n FROM referral"
    before = (await (await conn.execute(count)).fetchone())["n"]
    marks = ", ".join("?" * len(REFERRAL_DB_COLUMNS))
    sql = f"INSERT INTO referral ({', '.join(REFERRAL_DB_COLUMNS)}) VALUES ({marks}) {_UPSERT}"
    written = 0
    writing: asyncio.Future[Any] | None = None
    for chunk in chunks:  # made while the previous chunk is being written
        if writing is not None:
            await writing
        writing = asyncio.ensure_future(conn.executemany(sql, chunk))
        written += len(chunk)
    if writing is not None:
        await writing
    created = (await (await conn.execute(count)).fetchone())["n"] - before
    return created, written - created


async def _write_postgres(
    conn: Any, chunks: Iterable[list[tuple[Any, ...]]], keys: tuple[list[int], list[str]] | None
) -> tuple[int, int]:
    # One COPY fed chunk by chunk: asyncpg sends every 512 KiB as it goes, so the server stores one part
    # while the next is hashed and encrypted here.
    columns = list(REFERRAL_DB_COLUMNS)
    if keys is not None and not await _any_stored(conn, *keys):
        # None of the rows is stored yet (a provider's first import, or only new referrals): straight in.
        # Should another writer store one of them meanwhile, the savepoint undoes the COPY and the rows
        # take the upsert's way after all.
        pending = iter(chunks)
        again = pending is not chunks  # a list, or RecordChunks: can be gone through a second time
        rows = _Rows(pending, keep=not again)
        try:
            async with conn.transaction():
                await conn.copy_records_to_table("referral", records=rows, columns=columns)
            return rows.count, 0
        except asyncpg.UniqueViolationError:
            if rows.kept is not None:  # a one-shot iterator: what it gave, then the rest
                chunks = itertools.chain(rows.kept, pending)
    # COPY into a scratch table, then one set-based upsert: near COPY speed, with ON CONFLICT.
    await conn.execute(
        "CREATE TEMP TABLE referral_incoming (LIKE referral INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    rows = _Rows(chunks)
    await conn.copy_records_to_table("referral_incoming", records=rows, columns=columns)
    stored = await conn.fetchval(
        "SELECT COUNT(*) FROM referral_incoming i "
        "JOIN referral r ON r.provider = i.provider AND r.referral_id = i.referral_id"
    )
    cols = ", ".join(REFERRAL_DB_COLUMNS)
    await conn.execute(f"INSERT INTO referral ({cols}) SELECT {cols} FROM referral_incoming {_UPSERT}")
    return rows.count - stored, stored


async def import_referrals(data: bytes, filename: str = "", only_provider: str | None = None) -> ImportResult:
    """Create or update referrals from a file in the referrals format (all or nothing)."""
    with collector_paused():
        parsed = validate_columns(
            read_table(data, filename),
            fields.REFERRAL_READERS,
            fields.REFERRAL_OPTIONAL,
            fields.check_referral_columns,
        )
    orgs = await provider_ids()
    with collector_paused():
        check_referral_providers(parsed, orgs, only_provider)
    org_id = {code: ident for code, (ident, _) in orgs.items()}
    keys = (list(map(org_id.__getitem__, parsed.columns["provider"])), parsed.columns["referral_id"])
    chunks = referral_record_chunks(parsed, orgs, for_sqlite=db.is_sqlite())
    created, updated = await upsert_referrals(chunks, keys)
    return ImportResult(rows=len(parsed.numbers), created=created, updated=updated)


__all__ = ["FileRejected", "ImportResult", "Problem", "Referral", "import_organisations", "import_referrals"]
