"""All-or-nothing imports of organisations and referrals from CSV or XLSX.

Every row is checked before anything is written; one bad row rejects the file with every problem listed
as (row, column, reason), so a provider fixes the file once. Valid files are written in one transaction
through the driver's bulk path (executemany on SQLite, COPY + INSERT .. ON CONFLICT on PostgreSQL),
because a year of referrals must load in seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


def validate_rows(
    table: Table,
    readers: dict[str, Callable[[str], Any]],
    optional: frozenset[str],
    cross_check: Callable[[dict[str, Any]], list[tuple[str, str]]],
) -> list[tuple[int, dict[str, Any]]]:
    """Typed values of every row, or FileRejected listing every problem (header problems first)."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for column in table.header:
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

    columns = [(index, name, readers[name]) for index, name in enumerate(table.header)]
    width = len(table.header)
    parsed: list[tuple[int, dict[str, Any]]] = []
    total = 0
    for number, cells in table.rows:
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            total += 1
            problems.append(Problem(number, "", f"has {len(cells)} cells but the header has {width}"))
            continue
        values: dict[str, Any] = {}
        row_ok = True
        for index, name, read in columns:
            raw = cells[index].strip() if index < len(cells) else ""
            try:
                values[name] = read(raw)
            except fields.FieldError as exc:
                row_ok = False
                total += 1
                if len(problems) < MAX_PROBLEMS_LISTED:
                    problems.append(Problem(number, name, str(exc)))
        if row_ok:
            for column, reason in cross_check(values):
                row_ok = False
                total += 1
                if len(problems) < MAX_PROBLEMS_LISTED:
                    problems.append(Problem(number, column, reason))
        if row_ok:
            parsed.append((number, values))
    if problems:
        raise FileRejected(problems, total)
    return parsed


def _duplicates(
    rows: Iterable[tuple[int, dict[str, Any]]], key: Callable[[dict[str, Any]], Any], column: str
) -> list[Problem]:
    first_row: dict[Any, int] = {}
    problems: list[Problem] = []
    for number, values in rows:
        k = key(values)
        if k in first_row:
            problems.append(Problem(number, column, f"duplicates row {first_row[k]} of this file"))
        else:
            first_row[k] = number
    return problems


async def import_organisations(data: bytes, filename: str = "") -> ImportResult:
    """Create or update organisations from a file in the organisations format."""
    rows = validate_rows(
        read_table(data, filename),
        fields.ORGANISATION_READERS,
        fields.ORGANISATION_OPTIONAL,
        fields.check_organisation,
    )
    dupes = _duplicates(rows, lambda v: v["code"], "code")
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
    "provider", "referral_id", "person_key", "referral_date", "source", "crime_type", "domestic_abuse",
    "hate_crime", "repeat_victim", "age_band", "sex", "ethnicity", "disability", "status", "support_start",
    "support_end", "contact_email_enc", "contact_phone_enc", "preferred_channel", "safe_to_contact",
    "consent_to_survey", "created_at", "updated_at",
)  # fmt: skip
_NOT_UPDATED = {"provider", "referral_id", "created_at"}


async def provider_ids() -> dict[str, tuple[int, str]]:
    """Organisation code -> (id, kind)."""
    rows = await Organisation.select(Organisation.id, Organisation.code, Organisation.kind).run()
    return {r["code"]: (r["id"], r["kind"]) for r in rows}


def referral_records(
    rows: list[tuple[int, dict[str, Any]]], orgs: dict[str, tuple[int, str]], only_provider: str | None
) -> list[tuple[Any, ...]]:
    """Rows for the bulk write, or FileRejected for providers that are unknown or not the caller's."""
    problems: list[Problem] = []
    for number, values in rows:
        code = values["provider"]
        if only_provider is not None and code != only_provider:
            problems.append(Problem(number, "provider", f"you may import only {only_provider}'s referrals"))
        elif code not in orgs:
            problems.append(Problem(number, "provider", f"{code!r} is not a known organisation"))
        elif orgs[code][1] != "provider":
            problems.append(Problem(number, "provider", f"{code!r} is a commissioner, not a provider"))
    problems += _duplicates(rows, lambda v: (v["provider"], v["referral_id"]), "referral_id")
    if problems:
        raise FileRejected(problems[:MAX_PROBLEMS_LISTED], len(problems))
    keys = keyring()
    now = dt.datetime.now(dt.UTC)
    records = []
    for _, v in rows:
        records.append((
            orgs[v["provider"]][0], v["referral_id"], keys.person_key(v["person_id"]), v["referral_date"],
            v["source"], v["crime_type"], v["domestic_abuse"], v["hate_crime"], v["repeat_victim"],
            v["age_band"], v["sex"], v["ethnicity"], v["disability"], v["status"], v.get("support_start"),
            v.get("support_end"), keys.encrypt(v.get("contact_email")), keys.encrypt(v.get("contact_phone")),
            v["preferred_channel"], v["safe_to_contact"], v["consent_to_survey"], now, now,
        ))  # fmt: skip
    return records


async def upsert_referrals(records: list[tuple[Any, ...]]) -> tuple[int, int]:
    """Insert or update referrals by (provider, referral_id) in one transaction; (created, updated)."""
    engine = db.current_engine()
    cols = ", ".join(REFERRAL_DB_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in REFERRAL_DB_COLUMNS if c not in _NOT_UPDATED)
    upsert = f"ON CONFLICT (provider, referral_id) DO UPDATE SET {updates}"
    async with db.write_transaction() as tx:
        conn = tx.connection
        if db.is_sqlite(engine):
            count_before = (await (await conn.execute("SELECT COUNT(*) AS n FROM referral")).fetchone())["n"]
            marks = ", ".join(db.placeholders(engine, len(REFERRAL_DB_COLUMNS)))
            await conn.executemany(
                f"INSERT INTO referral ({cols}) VALUES ({marks}) {upsert}",
                [_sqlite_values(r) for r in records],
            )
            count_after = (await (await conn.execute("SELECT COUNT(*) AS n FROM referral")).fetchone())["n"]
        else:
            count_before = await conn.fetchval("SELECT COUNT(*) FROM referral")
            # COPY into a scratch table, then one set-based upsert: near COPY speed, with ON CONFLICT.
            await conn.execute(
                "CREATE TEMP TABLE referral_incoming (LIKE referral INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            await conn.copy_records_to_table(
                "referral_incoming", records=records, columns=list(REFERRAL_DB_COLUMNS)
            )
            await conn.execute(f"INSERT INTO referral ({cols}) SELECT {cols} FROM referral_incoming {upsert}")
            count_after = await conn.fetchval("SELECT COUNT(*) FROM referral")
    created = count_after - count_before
    return created, len(records) - created


def _sqlite_values(record: tuple[Any, ...]) -> tuple[Any, ...]:
    # Piccolo stores dates as ISO text and timestamps as ISO text with offset on SQLite; match it.
    return tuple(
        v.isoformat() if isinstance(v, dt.date | dt.datetime) else (int(v) if isinstance(v, bool) else v)
        for v in record
    )


async def import_referrals(data: bytes, filename: str = "", only_provider: str | None = None) -> ImportResult:
    """Create or update referrals from a file in the referrals format (all or nothing)."""
    table = read_table(data, filename)
    rows = validate_rows(table, fields.REFERRAL_READERS, fields.REFERRAL_OPTIONAL, fields.check_referral)
    records = referral_records(rows, await provider_ids(), only_provider)
    created, updated = await upsert_referrals(records)
    return ImportResult(rows=len(records), created=created, updated=updated)


__all__ = ["FileRejected", "ImportResult", "Problem", "Referral", "import_organisations", "import_referrals"]
