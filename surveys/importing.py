"""All-or-nothing imports of organisations and referrals from CSV or XLSX.

Every row is checked before anything is written; one bad row rejects the file with every problem listed
as (row, column, reason), so a provider fixes the file once. Valid files are written in one transaction
through the driver's bulk path (executemany on SQLite, COPY + INSERT .. ON CONFLICT on PostgreSQL),
because a year of referrals must load in seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from surveys import db, fields
from surveys.crypto import keyring
from surveys.tables import Organisation, Referral
from surveys.tabular import FileRejected, Problem, Table, read_table

MAX_PROBLEMS_LISTED = 200


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


def _read_column(read: Callable[[str], Any], raw: list[str]) -> tuple[list[Any], list[tuple[int, str]]]:
    """Values of one column; on any bad cell, the slow path names every bad cell (index, reason)."""
    try:
        return list(map(read, raw)), []
    except fields.FieldError:
        pass
    values: list[Any] = []
    bad: list[tuple[int, str]] = []
    for index, cell in enumerate(raw):
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

    Works a column at a time: a clean column is read by one `map` over its cells, which is what lets a
    year of referrals validate in about a second.
    """
    check_header(table.header, readers, optional)
    width = len(table.header)
    problems: list[tuple[int, int, str, str]] = []  # (record index, column order, column, reason)
    for index, (_, cells) in enumerate(table.rows):
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            problems.append((index, -1, "", f"has {len(cells)} cells but the header has {width}"))
    rows = [cells + [""] * (width - len(cells)) if len(cells) < width else cells for _, cells in table.rows]
    columns: dict[str, list[Any]] = {}
    for order, name in enumerate(readers):
        if name not in table.header:
            columns[name] = [None] * len(rows)
            continue
        position = table.header.index(name)
        values, bad = _read_column(readers[name], list(map(str.strip, map(itemgetter(position), rows))))
        columns[name] = values
        problems += [(index, order, name, reason) for index, reason in bad]
    # Rules across columns only where every cell of the row could be read.
    bad_rows = {index for index, *_ in problems}
    order_of = {name: order for order, name in enumerate(readers)}
    problems += [
        (i, order_of.get(c, 0), c, reason) for i, c, reason in cross_check(columns) if i not in bad_rows
    ]
    if problems:
        problems.sort()
        listed = [Problem(table.rows[i][0], column, reason) for i, _, column, reason in problems]
        raise FileRejected(listed[:MAX_PROBLEMS_LISTED], len(listed))
    return Parsed(numbers=[number for number, _ in table.rows], columns=columns)


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
    keys = list(zip(cols["provider"], cols["referral_id"], strict=True))
    if len(set(keys)) != len(keys):
        problems += _duplicates(parsed.numbers, keys, "referral_id")
    if problems:
        problems.sort(key=lambda p: p.row)
        raise FileRejected(problems[:MAX_PROBLEMS_LISTED], len(problems))


def referral_record_chunks(
    parsed: Parsed, orgs: dict[str, tuple[int, str]], *, for_sqlite: bool, size: int = 10_000
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows for the bulk write (REFERRAL_DB_COLUMNS order, ready for the engine's driver), a chunk at a
    time, so that hashing and encrypting one chunk overlaps the database writing the previous one."""
    keys = keyring()
    now = dt.datetime.now(dt.UTC)
    stamp = now.isoformat() if for_sqlite else now
    org_id = {code: ident for code, (ident, _) in orgs.items()}
    total = len(parsed.numbers)
    for start in range(0, total, size):
        cols = {name: values[start : start + size] for name, values in parsed.columns.items()}
        n = len(cols["provider"])

        def dates(name: str, cols: dict[str, list[Any]] = cols) -> list[Any]:
            # SQLite keeps dates as ISO text (as Piccolo does); asyncpg wants date objects.
            return (
                [d.isoformat() if d is not None else None for d in cols[name]] if for_sqlite else cols[name]
            )

        def flags(name: str, cols: dict[str, list[Any]] = cols) -> list[Any]:
            return [int(v) for v in cols[name]] if for_sqlite else cols[name]

        yield list(
            zip(
                [org_id[c] for c in cols["provider"]],
                cols["referral_id"],
                [keys.person_key(p) for p in cols["person_id"]],
                dates("referral_date"),
                cols["source"],
                cols["crime_type"],
                flags("domestic_abuse"),
                flags("hate_crime"),
                flags("repeat_victim"),
                cols["age_band"],
                cols["sex"],
                cols["ethnicity"],
                cols["disability"],
                cols["status"],
                dates("support_start"),
                dates("support_end"),
                [keys.encrypt(e) for e in cols["contact_email"]],
                [keys.encrypt(p) for p in cols["contact_phone"]],
                cols["preferred_channel"],
                flags("safe_to_contact"),
                flags("consent_to_survey"),
                [stamp] * n,
                [stamp] * n,
                strict=True,
            )
        )


def referral_records(
    parsed: Parsed, orgs: dict[str, tuple[int, str]], only_provider: str | None, *, for_sqlite: bool
) -> list[tuple[Any, ...]]:
    """All rows for the bulk write at once (checked first)."""
    check_referral_providers(parsed, orgs, only_provider)
    return [row for chunk in referral_record_chunks(parsed, orgs, for_sqlite=for_sqlite) for row in chunk]


async def upsert_referrals(chunks: Iterable[list[tuple[Any, ...]]]) -> tuple[int, int]:
    """Insert or update referrals by (provider, referral_id) in one transaction; (created, updated).

    While the driver writes one chunk (in its own thread on SQLite, on the server on PostgreSQL), the
    next chunk is prepared: the writes and the hashing overlap.
    """
    engine = db.current_engine()
    cols = ", ".join(REFERRAL_DB_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in REFERRAL_DB_COLUMNS if c not in _NOT_UPDATED)
    upsert = f"ON CONFLICT (provider, referral_id) DO UPDATE SET {updates}"
    written = 0
    async with db.write_transaction() as tx:
        conn = tx.connection
        if db.is_sqlite(engine):
            count_before = (await (await conn.execute("SELECT COUNT(*) AS n FROM referral")).fetchone())["n"]
            marks = ", ".join(db.placeholders(engine, len(REFERRAL_DB_COLUMNS)))
            sql = f"INSERT INTO referral ({cols}) VALUES ({marks}) {upsert}"
            writing: asyncio.Future[Any] | None = None
            for chunk in chunks:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(conn.executemany(sql, chunk))
                written += len(chunk)
            if writing is not None:
                await writing
            count_after = (await (await conn.execute("SELECT COUNT(*) AS n FROM referral")).fetchone())["n"]
        else:
            count_before = await conn.fetchval("SELECT COUNT(*) FROM referral")
            # COPY into a scratch table, then one set-based upsert: near COPY speed, with ON CONFLICT.
            await conn.execute(
                "CREATE TEMP TABLE referral_incoming (LIKE referral INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            for chunk in chunks:
                await conn.copy_records_to_table(
                    "referral_incoming", records=chunk, columns=list(REFERRAL_DB_COLUMNS)
                )
                written += len(chunk)
            await conn.execute(f"INSERT INTO referral ({cols}) SELECT {cols} FROM referral_incoming {upsert}")
            count_after = await conn.fetchval("SELECT COUNT(*) FROM referral")
    created = count_after - count_before
    return created, written - created


async def import_referrals(data: bytes, filename: str = "", only_provider: str | None = None) -> ImportResult:
    """Create or update referrals from a file in the referrals format (all or nothing)."""
    table = read_table(data, filename)
    parsed = validate_columns(
        table,
        fields.REFERRAL_READERS,
        fields.REFERRAL_OPTIONAL,
        row_checks(fields.check_referral, "support_start", "support_end"),
    )
    orgs = await provider_ids()
    check_referral_providers(parsed, orgs, only_provider)
    created, updated = await upsert_referrals(referral_record_chunks(parsed, orgs, for_sqlite=db.is_sqlite()))
    return ImportResult(rows=len(parsed.numbers), created=created, updated=updated)


__all__ = ["FileRejected", "ImportResult", "Problem", "Referral", "import_organisations", "import_referrals"]
