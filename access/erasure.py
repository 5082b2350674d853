"""Erasure, subject access and retention: everything held about a person, found the same way.

A person is found by the keyed hash of their identifier. Their records are the rows carrying that
`person_key`, and every row that points at one of those (a response of their referral, a link item, an
invitation of their link, an outbox message of that invitation ...) — found by walking the foreign keys
of every registered table, so a table added later is covered without changing this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import secrets
from typing import Any

from piccolo.table import Table, sort_table_classes

from surveys import db
from surveys.crypto import keyring
from surveys.tables import Referral

ENCRYPTED_COLUMNS = {"contact_email_enc": "contact_email", "contact_phone_enc": "contact_phone"}
HIDDEN_COLUMNS = {"token_hash", "submission_key", "token_enc", "recipient_enc", "idempotency_key"}


def registered_tables() -> list[type[Table]]:
    """Every table of the apps, parents before children."""
    from piccolo.conf.apps import Finder

    return sort_table_classes(Finder().get_table_classes())


async def _select_ids(table: type[Table], column: str, values: list[Any]) -> list[int]:
    found: list[int] = []
    for start in range(0, len(values), 500):
        rows = await table.select(table._meta.primary_key).where(
            getattr(table, column).is_in(values[start : start + 500])
        ).run()  # fmt: skip
        found += [r[table._meta.primary_key._meta.name] for r in rows]
    return found


async def person_rows(person_key: str) -> dict[str, list[int]]:
    """Primary keys of every row about a person, by table name."""
    held: dict[str, list[int]] = {}
    for table in registered_tables():
        ids: set[int] = set()
        column_names = {c._meta.name for c in table._meta.columns}
        if "person_key" in column_names:
            ids.update(await _select_ids(table, "person_key", [person_key]))
        for fk in table._meta.foreign_key_columns:
            parent = fk._foreign_key_meta.resolved_references._meta.tablename
            if held.get(parent):
                ids.update(await _select_ids(table, fk._meta.name, held[parent]))
        if ids:
            held[table._meta.tablename] = sorted(ids)
    return held


async def erase_person(person_id: str) -> dict[str, int]:
    """Delete every row about a person, children first, in one transaction; returns counts by table."""
    person_key = keyring().person_key(person_id)
    held = await person_rows(person_key)
    by_name = {t._meta.tablename: t for t in registered_tables()}
    counts: dict[str, int] = {}
    async with db.write_transaction():
        for name in reversed(list(by_name)):
            ids = held.get(name)
            if not ids:
                continue
            table = by_name[name]
            for start in range(0, len(ids), 500):
                await table.delete().where(table._meta.primary_key.is_in(ids[start : start + 500])).run()
            counts[name] = len(ids)
    return counts


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


async def subject_access(person_id: str) -> dict[str, Any]:
    """Everything held about a person, as JSON-ready data (contact details decrypted for them)."""
    person_key = keyring().person_key(person_id)
    held = await person_rows(person_key)
    keys = keyring()
    out: dict[str, Any] = {"generated_at": dt.datetime.now(dt.UTC).isoformat(), "tables": {}}
    for table in registered_tables():
        ids = held.get(table._meta.tablename)
        if not ids:
            continue
        rows = await table.select().where(table._meta.primary_key.is_in(ids)).run()
        cleaned = []
        for row in rows:
            item: dict[str, Any] = {}
            for column, value in row.items():
                if column in ENCRYPTED_COLUMNS:
                    item[ENCRYPTED_COLUMNS[column]] = keys.decrypt(value)
                elif column in HIDDEN_COLUMNS or column == "person_key":
                    continue
                elif column == "extra_answers" and value:
                    item[column] = json.loads(value)
                else:
                    item[column] = _plain(value)
            cleaned.append(item)
        out["tables"][table._meta.tablename] = cleaned
    return out


async def erase_spent_contact_details(now: dt.date, after_days: int | None = None) -> int:
    """Delete contact details once a person's last wave has closed.

    A referral's last wave is the follow-up `follow_up` days after support ends, open for an invitation
    lifetime and a late window: 90 + 28 + 45 = 163 days by default, more when a provider or service
    sets a later follow-up (`after_days` defaults to what the contact rules configured say).
    Referrals that never became support (declined, uncontactable, out of scope, or still referred) keep
    details at most as long after their referral date. A person's details go only when none of their
    referrals still needs them.
    """
    if after_days is None:
        from surveys.scheduling import configured_policy

        after_days = configured_policy().contact_retention_days
    cutoff = now - dt.timedelta(days=after_days)
    still_needed = Referral.select(Referral.person_key).where(
        (Referral.support_end.is_null() & Referral.support_start.is_not_null())
        | (Referral.support_end > cutoff)
        | (Referral.support_start.is_null() & (Referral.referral_date > cutoff))
    )  # fmt: skip
    needed = {r["person_key"] for r in await still_needed.run()}
    candidates = await Referral.select(Referral.id, Referral.person_key).where(
        Referral.contact_email_enc.is_not_null() | Referral.contact_phone_enc.is_not_null()
    ).run()  # fmt: skip
    spent = [r["id"] for r in candidates if r["person_key"] not in needed]
    async with db.write_transaction():
        for start in range(0, len(spent), 500):
            await Referral.update(
                {Referral.contact_email_enc: None, Referral.contact_phone_enc: None}
            ).where(Referral.id.is_in(spent[start : start + 500])).run()  # fmt: skip
    return len(spent)


async def pseudonymise_old_answers(now: dt.date, years: int) -> int:
    """After `years`, cut the link between old episodes and the person: a fresh random key per person
    (so old figures still count them once) and free text removed. Returns the referrals changed."""
    from surveys.tables import Response

    cutoff = now.replace(year=now.year - years)
    old = await Referral.select(Referral.id, Referral.person_key).where(
        (Referral.referral_date < cutoff) & Referral.person_key.not_like("pseudo:%")
    ).run()  # fmt: skip
    fresh: dict[str, str] = {}
    async with db.write_transaction():
        for row in old:
            new_key = fresh.setdefault(row["person_key"], "pseudo:" + secrets.token_hex(28))
            await (
                Referral.update(
                    {
                        Referral.person_key: new_key,
                        Referral.contact_email_enc: None,
                        Referral.contact_phone_enc: None,
                    }
                )
                .where(Referral.id == row["id"])
                .run()
            )
            await (
                Response.update(
                    {Response.barriers_text: None, Response.gaps_text: None, Response.comments_text: None}
                )
                .where(Response.referral == row["id"])
                .run()
            )
    return len(old)


async def run_background(stop: asyncio.Event, every_seconds: float = 6 * 3600.0) -> None:
    """While the server runs: delete contact details whose purpose has ended, a few times a day."""
    import logging

    log = logging.getLogger("vop.retention")
    while not stop.is_set():
        try:
            erased = await erase_spent_contact_details(dt.date.today())
            if erased:
                from access import audit

                await audit.record("retention.run", actor="background", detail={"contacts_erased": erased})
                log.info("contact details erased", extra={"referrals": erased})
        except Exception:  # retried on the next turn; the loop must outlive a failed run
            log.exception("retention run failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
