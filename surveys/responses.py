"""Responses: the one mapping from answers to stored columns, and the all-or-nothing responses import.

Answers arrive three ways (the web survey, a practitioner on the phone, a file of historical paper or
phone answers) and land in the same `response` table through `answer_columns`. Special-category data:
nothing here logs a value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from surveys import db, fields
from surveys.importing import ImportResult, Parsed, row_checks, validate_columns
from surveys.tables import Referral
from surveys.tabular import FileRejected, Problem, read_table

AREAS = ("cope", "safety", "health", "informed", "cjs", "recover")
HELPED = tuple(f"helped_{a}" for a in AREAS)
SWEMWBS = tuple(f"swemwbs_{i}" for i in range(1, 8))
TEXTS = ("barriers_text", "gaps_text", "comments_text")
WAVES = ("baseline", "exit", "follow_up")
MODES = ("web", "phone", "paper")
HELPED_ANSWERS = ("a_lot", "a_little", "no", "na")
SATISFACTION = (
    "completely_satisfied",
    "very_satisfied",
    "fairly_satisfied",
    "neither",
    "fairly_dissatisfied",
    "very_dissatisfied",
    "completely_dissatisfied",
)
ANSWER_COLUMNS = (*AREAS, *HELPED, "satisfaction", "rights_mask", *SWEMWBS, *TEXTS)
MAX_TEXT = 5000


def rights_mask(rights: Any) -> int | None:
    """Bits 0..11 for rights 1..12; 0 for `none`; None when not asked. Accepts a list or '1;3;12'."""
    if rights is None or rights == "" or rights == []:
        return None
    items = rights.split(";") if isinstance(rights, str) else list(rights)
    items = [str(i).strip() for i in items if str(i).strip()]
    if items == ["none"]:
        return 0
    mask = 0
    for item in items:
        if not item.isdigit() or not 1 <= int(item) <= 12:
            raise fields.FieldError(f"{item!r} is not a right number 1..12 (or 'none' alone)")
        mask |= 1 << (int(item) - 1)
    return mask


def rights_list(mask: int | None) -> list[int] | str | None:
    if mask is None:
        return None
    if mask == 0:
        return "none"
    return [r for r in range(1, 13) if mask & (1 << (r - 1))]


def answer_columns(answers: Mapping[str, Any]) -> dict[str, Any]:
    """Response columns from answers keyed by question id (web and phone answers, already validated).

    States `na` and blanks become NULL (missing); helped answers keep `na`. Items of other scales
    (ONS4, PHQ-9, GAD-7) and routing answers such as `cjs_involved` go to `extra_answers` as JSON.
    """
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in answers.items():
        if key in AREAS or key in SWEMWBS:
            out[key] = value if isinstance(value, int) and not isinstance(value, bool) else None
        elif key in HELPED or key == "satisfaction":
            out[key] = value or None
        elif key == "rights_received":
            out["rights_mask"] = rights_mask(value)
        elif key in TEXTS:
            out[key] = (str(value).strip()[:MAX_TEXT] or None) if value else None
        else:
            extra[key] = value
    out["extra_answers"] = json.dumps(extra, sort_keys=True) if extra else None
    return out


# --- the responses import ---------------------------------------------------------------------------


def _state(raw: str) -> int | None:
    if raw in ("", "na"):
        return None
    if raw in ("1", "2", "3", "4", "5"):
        return int(raw)
    raise fields.FieldError(f"{raw!r} must be 1 to 5, na or empty")


def _swemwbs(raw: str) -> int | None:
    if raw == "":
        return None
    if raw in ("1", "2", "3", "4", "5"):
        return int(raw)
    raise fields.FieldError(f"{raw!r} must be 1 to 5 or empty")


def _optional_enum(allowed: tuple[str, ...]) -> Any:
    read = fields.read_enum(allowed)
    return lambda raw: read(raw) if raw else None


def _completed_at(raw: str) -> dt.datetime | None:
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise fields.FieldError(f"{raw!r} is not an ISO 8601 date and time") from None
    if value.tzinfo is None:
        # Times without an offset are read as UK local time, as providers' systems write them.
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo("Europe/London"))
    if value > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5):
        raise fields.FieldError(f"{raw!r} is in the future")
    return value.astimezone(dt.UTC)


def _free_text(raw: str) -> str | None:
    if len(raw) > MAX_TEXT:
        raise fields.FieldError(f"is longer than {MAX_TEXT} characters")
    return raw or None


RESPONSE_READERS: dict[str, Any] = {
    "provider": fields.read_org_code,
    "referral_id": fields.read_text(100),
    "wave": fields.read_enum(WAVES),
    "completed_at": _completed_at,
    "mode": fields.read_enum(MODES),
    **{a: _state for a in AREAS},
    **{h: _optional_enum(HELPED_ANSWERS) for h in HELPED},
    "satisfaction": _optional_enum(SATISFACTION),
    "rights_received": rights_mask,
    **{s: _swemwbs for s in SWEMWBS},
    **{t: _free_text for t in TEXTS},
}
RESPONSE_OPTIONAL = frozenset(
    set(RESPONSE_READERS) - {"provider", "referral_id", "wave", "completed_at", "mode"}
)


def _check_response(values: dict[str, Any]) -> list[tuple[str, str]]:
    if values["wave"] != "exit":
        asked = [h for h in (*HELPED, "satisfaction", "rights_received") if values.get(h) is not None]
        if asked:
            return [(asked[0], f"is asked only at exit, not at {values['wave']}")]
    return []


def submission_key(values: Mapping[str, Any]) -> str:
    """A content hash, so importing the same file twice stores each response once."""
    canonical = json.dumps({k: str(v) for k, v in sorted(values.items())}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


STORED_COLUMNS = (
    "referral",
    "wave",
    "completed_at",
    "mode",
    "instrument_version",
    "submission_key",
    *AREAS,
    *HELPED,
    "satisfaction",
    "rights_mask",
    *SWEMWBS,
    *TEXTS,
    "created_at",
    "updated_at",
)


async def import_responses(data: bytes, filename: str = "", only_provider: str | None = None) -> ImportResult:
    """Store historical responses from a file in the responses format (all or nothing).

    Keeps untidy but valid records (a response before support ended, or all blank); rejects what breaks
    the format: unknown referral, wave or value outside the lists, malformed or future completed_at.
    """
    table = read_table(data, filename)
    parsed: Parsed = validate_columns(
        table,
        RESPONSE_READERS,
        RESPONSE_OPTIONAL,
        row_checks(_check_response, "wave", *HELPED, "satisfaction", "rights_received"),
    )
    cols = parsed.columns
    referral_ids = await _referral_ids(set(zip(cols["provider"], cols["referral_id"], strict=True)))
    problems = []
    for number, provider, ref in zip(parsed.numbers, cols["provider"], cols["referral_id"], strict=True):
        if only_provider is not None and provider != only_provider:
            problems.append(Problem(number, "provider", f"you may import only {only_provider}'s responses"))
        elif (provider, ref) not in referral_ids:
            problems.append(Problem(number, "referral_id", f"no referral {ref!r} of provider {provider!r}"))
    if problems:
        raise FileRejected(problems[:200], len(problems))
    now = dt.datetime.now(dt.UTC)
    sqlite = db.is_sqlite()
    records = []
    for _, row in parsed.rows():
        key = submission_key(row)
        completed = row["completed_at"]
        record = {
            **{c: row.get(c) for c in (*AREAS, *HELPED, "satisfaction", *SWEMWBS, *TEXTS)},
            "referral": referral_ids[(row["provider"], row["referral_id"])],
            "wave": row["wave"],
            "completed_at": completed,
            "mode": row["mode"],
            "instrument_version": "import",
            "submission_key": key,
            "rights_mask": row["rights_received"],
            "created_at": now,
            "updated_at": now,
        }
        values = [record[c] for c in STORED_COLUMNS]
        if sqlite:
            values = [v.isoformat() if isinstance(v, dt.datetime) else v for v in values]
        records.append(tuple(values))
    created = await insert_responses(records)
    return ImportResult(rows=len(records), created=created, updated=0)


async def _referral_ids(wanted: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(provider code, referral_id) -> referral primary key, for the pairs that exist."""
    found: dict[tuple[str, str], int] = {}
    by_provider: dict[str, list[str]] = {}
    for provider, ref in wanted:
        by_provider.setdefault(provider, []).append(ref)
    for provider, refs in by_provider.items():
        for start in range(0, len(refs), 5000):
            rows = (
                await Referral.select(Referral.id, Referral.referral_id)
                .where(
                    (Referral.provider.code == provider)
                    & Referral.referral_id.is_in(refs[start : start + 5000])
                )
                .run()
            )
            found.update({(provider, r["referral_id"]): r["id"] for r in rows})
    return found


async def insert_responses(records: list[tuple[Any, ...]]) -> int:
    """Insert responses (STORED_COLUMNS order) in one transaction, skipping submission keys already stored."""
    engine = db.current_engine()
    cols = ", ".join(STORED_COLUMNS)
    marks = ", ".join(db.placeholders(engine, len(STORED_COLUMNS)))
    sql = f"INSERT INTO response ({cols}) VALUES ({marks}) ON CONFLICT (submission_key) DO NOTHING"
    async with db.write_transaction() as tx:
        conn = tx.connection
        if db.is_sqlite(engine):
            before = (await (await conn.execute("SELECT COUNT(*) AS n FROM response")).fetchone())["n"]
            await conn.executemany(sql, records)
            after = (await (await conn.execute("SELECT COUNT(*) AS n FROM response")).fetchone())["n"]
        else:
            before = await conn.fetchval("SELECT COUNT(*) FROM response")
            await conn.executemany(sql, records)
            after = await conn.fetchval("SELECT COUNT(*) FROM response")
    return int(after - before)
