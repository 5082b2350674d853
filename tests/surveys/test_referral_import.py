"""Referral and organisation imports through the API: all or nothing, every bad row reported."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import Workbook

from surveys.tables import Organisation, Referral
from tests.conftest import REFERRAL_HEADER, referral_line, referrals_csv


async def upload(client: Any, headers: dict[str, str], data: bytes, name: str = "referrals.csv") -> Any:
    return await client.post(
        "/api/v1/referrals/import", files={"data": (name, data, "text/csv")}, headers=headers
    )


async def test_import_creates_then_updates(client: Any, keys: dict[str, dict[str, str]]) -> None:
    data = referrals_csv(referral_line(referral_id="A1"), referral_line(referral_id="A2", person_id="P2"))
    r = await upload(client, keys["vs"], data)
    assert r.status_code == 200, r.text
    assert r.json() == {"rows": 2, "created": 2, "updated": 0}
    changed = referrals_csv(referral_line(referral_id="A1", status="closed", support_end="2025-08-01"))
    r = await upload(client, keys["vs"], changed)
    assert r.json() == {"rows": 1, "created": 0, "updated": 1}
    row = (
        await Referral.select(Referral.status, Referral.support_end)
        .where(Referral.referral_id == "A1")
        .first()
    )
    assert row["status"] == "closed" and str(row["support_end"]) == "2025-08-01"
    assert await Referral.count() == 2


def xlsx(rows: list[list[Any]], sheets: int = 1) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for n in range(1, sheets):
        book.create_sheet(f"Other{n}")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_xlsx_import(client: Any, keys: dict[str, dict[str, str]]) -> None:
    header = REFERRAL_HEADER.split(",")
    values = referral_line(referral_id="X1").split(",")
    r = await upload(client, keys["vs"], xlsx([header, values]), "referrals.xlsx")
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1


def _bad(**over: str) -> bytes:
    return referrals_csv(referral_line(referral_id="OK1"), referral_line(referral_id="BAD", **over))


BAD_FILES: list[tuple[str, bytes, str, int, str, str]] = [
    (
        "unknown column",
        (REFERRAL_HEADER + ",shoe_size\n" + referral_line() + ",9\n").encode(),
        "x.csv",
        1,
        "shoe_size",
        "unknown column",
    ),
    (
        "missing column",
        (REFERRAL_HEADER.replace(",status", "") + "\n").encode() + b"x",
        "x.csv",
        1,
        "status",
        "required column is missing",
    ),
    ("bad enum", _bad(source="pigeon"), "x.csv", 3, "source", "'pigeon' is not one of"),
    ("bad date", _bad(referral_date="01/05/2025"), "x.csv", 3, "referral_date", "not a date"),
    (
        "end before start",
        _bad(support_start="2025-06-01", support_end="2025-05-01"),
        "x.csv",
        3,
        "support_end",
        "before support_start",
    ),
    (
        "duplicate id",
        referrals_csv(referral_line(referral_id="D"), referral_line(referral_id="D")),
        "x.csv",
        3,
        "referral_id",
        "duplicates row 2",
    ),
    ("unknown provider", _bad(provider="NOPE"), "x.csv", 3, "provider", "may import only VS"),
    ("empty file", b"", "x.csv", 0, "", "empty"),
    ("header only", (REFERRAL_HEADER + "\n").encode(), "x.csv", 0, "", "no rows"),
    (
        "not utf-8",
        referrals_csv(referral_line(referral_id="Caf\u00e9")).decode().encode("latin-1"),
        "x.csv",
        0,
        "",
        "not UTF-8",
    ),
    (
        "several sheets",
        xlsx([REFERRAL_HEADER.split(","), referral_line().split(",")], sheets=2),
        "x.xlsx",
        0,
        "",
        "2 sheets",
    ),
    (
        "formula",
        xlsx([REFERRAL_HEADER.split(","), ["=1+1", *referral_line().split(",")[1:]]]),
        "x.xlsx",
        2,
        "provider",
        "formula",
    ),
    ("bad email", _bad(contact_email="not-an-email"), "x.csv", 3, "contact_email", "not an email"),
]


@pytest.mark.parametrize(
    ("name", "data", "filename", "row", "column", "reason"), BAD_FILES, ids=[b[0] for b in BAD_FILES]
)
async def test_bad_files_are_rejected_whole(
    client: Any,
    keys: dict[str, dict[str, str]],
    name: str,
    data: bytes,
    filename: str,
    row: int,
    column: str,
    reason: str,
) -> None:
    await upload(client, keys["vs"], referrals_csv(referral_line(referral_id="KEEP")))
    r = await upload(client, keys["vs"], data, filename)
    assert r.status_code == 422, r.text
    problems = r.json()["problems"]
    assert any(p["row"] == row and p["column"] == column and reason in p["reason"] for p in problems), (
        problems
    )
    # Nothing of the rejected file was stored, and what was there before is intact.
    ids = {r["referral_id"] for r in await Referral.select(Referral.referral_id).run()}
    assert ids == {"KEEP"}


async def test_every_bad_row_is_listed(client: Any, keys: dict[str, dict[str, str]]) -> None:
    data = referrals_csv(
        referral_line(referral_id="B1", sex="x"),
        referral_line(referral_id="B2"),
        referral_line(referral_id="B3", status="lost", hate_crime="maybe"),
    )
    body = (await upload(client, keys["vs"], data)).json()
    assert body["total"] == 3
    assert {(p["row"], p["column"]) for p in body["problems"]} == {
        (2, "sex"),
        (4, "status"),
        (4, "hate_crime"),
    }


async def test_unknown_provider_for_opcc(client: Any, keys: dict[str, dict[str, str]]) -> None:
    body = (await upload(client, keys["opcc"], _bad(provider="NOPE"))).json()
    assert body["problems"] == [
        {"row": 3, "column": "provider", "reason": "'NOPE' is not a known organisation"}
    ]


async def test_large_file_imports(client: Any, keys: dict[str, dict[str, str]]) -> None:
    lines = [referral_line(referral_id=f"L{n:06d}", person_id=f"P{n}") for n in range(68_000)]
    data = referrals_csv(*lines)
    assert len(data) > 10 * 1024 * 1024
    r = await upload(client, keys["vs"], data)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 68_000


async def test_organisations_import(client: Any, keys: dict[str, dict[str, str]]) -> None:
    csv = b"code,name,kind,service\nREF,Refuge,provider,da\nVS,General service renamed,provider,general\n"
    r = await client.post(
        "/api/v1/organisations/import", files={"data": ("o.csv", csv, "text/csv")}, headers=keys["admin"]
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"rows": 2, "created": 1, "updated": 1}
    bad = b"code,name,kind,service\nX Y,Bad code,provider,general\nOK,Commissioner,commissioner,sav\n"
    r = await client.post(
        "/api/v1/organisations/import", files={"data": ("o.csv", bad, "text/csv")}, headers=keys["admin"]
    )
    assert r.status_code == 422
    assert {(p["row"], p["column"]) for p in r.json()["problems"]} == {(2, "code"), (3, "service")}
    assert await Organisation.count().where(Organisation.code == "OK") == 0
    r = await client.post(
        "/api/v1/organisations/import", files={"data": ("o.csv", csv, "text/csv")}, headers=keys["vs"]
    )
    assert r.status_code == 403
