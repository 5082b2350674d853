"""The fast paths of the file imports give exactly what the plain rules give: the same table from the
str-method CSV reader as from the csv module, the same values from a reader's whole-column path as from
reading cell by cell, and the same referral rows in the database whichever way PostgreSQL writes them."""

from __future__ import annotations

from typing import Any

import pytest

from surveys import db, fields, importing, tabular
from surveys.crypto import keyring
from surveys.tables import Referral
from tests.conftest import REFERRAL_HEADER, referral_line, referrals_csv

CSV_TEXTS = {
    "plain": "a,b,c\n1,2,3\n4,5,6\n",
    "no final line end": "a,b,c\n1,2,3\n4,5,6",
    "crlf": "a,b,c\r\n1,2,3\r\n4,5,6\r\n",
    "blank rows keep their number": "a,b,c\n\n1,2,3\n,,\n , ,\n4,5,6\n\n",
    "padded cells": "a , b,c\n 1,2 ,3\n4,\t5\t,6 \n",
    "crlf, padded at the line ends": "a,b,c\r\n1,2,3 \r\n 4,5,6\r\n",
    "crlf, blank rows": "a,b,c\r\n\r\n1,2,3\r\n,,\r\n4,5,6\r\n",
    "tab inside a cell": "a,b\nx\ty,2\n",
    "blank row of fewer commas": "a,b,c,d\n1,2,3,4\n,\n5,6,7,8\n",
    "padded last cell without line end": "a,b,c\n1,2,3 ",
    "padded first cell": " a,b,c\n1,2,3\n",
    "non-ascii spaces": "a,b,c\n1,\u00a02\u2003,3\n",
    "non-ascii text": "a,b,c\nCaf\u00e9,na\u00efve,3\n",
    "empty cells": "a,b,c\n,,3\n1,,\n",
    "quoted": 'a,b,c\n"1,5",2,3\n"x ""y""",5,6\n',
    "quoted line end": 'a,b,c\n"1\n2",2,3\n4,5,6\n',
    "lone cr": "a,b,c\r1,2,3\r4,5,6\r",
    "mixed line ends": "a,b,c\r\n1,2,3\r4,5,6\n",
    "short row": "a,b,c\n1,2\n4,5,6\n",
    "long row, blank extra": "a,b,c\n1,2,3,,\n4,5,6\n",
    "long row": "a,b,c\n1,2,3,x\n4,5,6\n",
    "header only": "a,b,c\n",
    "blank header": "\na,b,c\n1,2,3\n",
}
PLAIN = {"plain", "no final line end", "crlf", "blank rows keep their number", "padded cells",
         "crlf, padded at the line ends", "crlf, blank rows", "tab inside a cell",
         "padded last cell without line end", "padded first cell", "non-ascii spaces", "non-ascii text",
         "empty cells", "header only"}  # fmt: skip


def _shown(table: tabular.Table) -> tuple[Any, ...]:
    """What an importer reads of a table, whichever way it holds its rows."""
    return table.header, table.numbers, table.columns, table.overlong


@pytest.mark.parametrize("name", list(CSV_TEXTS))
def test_plain_csv_reader_gives_the_csv_modules_table(name: str) -> None:
    text = CSV_TEXTS[name]
    plain = tabular._read_plain_csv(text)
    assert (plain is not None) == (name in PLAIN)
    if plain is not None:
        assert _shown(plain) == _shown(tabular._read_quoted_csv(text))
    if name not in ("blank header", "header only"):  # refused as a whole
        assert _shown(tabular.read_table(text.encode())) == _shown(tabular._read_quoted_csv(text))


@pytest.mark.parametrize("quoted", [False, True])
def test_blocks_of_rows_cover_the_table(quoted: bool) -> None:
    lines = [f"{n},x{n} , {n % 3}" for n in range(10)]
    text = "a,b,c\n" + "\n".join(lines) + "\n"
    table = tabular._read_quoted_csv(text) if quoted else tabular._read_plain_csv(text)
    assert table is not None
    assert (table.rows if quoted else table.lines) and not (table.lines if quoted else table.rows)
    blocks = list(table.blocks(size=4))
    assert [start for start, _ in blocks] == [0, 4, 8]
    assert blocks[2][1] == [["8", "9"], ["x8", "x9"], ["2", "0"]]
    assert table.columns[1] == [f"x{n}" for n in range(10)]


def test_table_columns_numbers_and_overlong_rows() -> None:
    table = tabular.read_table(CSV_TEXTS["blank rows keep their number"].encode())
    assert table.columns == [["1", "4"], ["2", "5"], ["3", "6"]] and table.numbers == [3, 6]
    table = tabular.read_table(CSV_TEXTS["long row"].encode())
    assert table.overlong == [(0, 4)] and table.columns == [["1", "4"], ["2", "5"], ["3", "6"]]
    table = tabular.read_table(CSV_TEXTS["short row"].encode())
    assert table.overlong == [] and table.columns == [["1", "4"], ["2", "5"], ["", "6"]]


def test_row_with_text_beyond_the_header_is_a_problem() -> None:
    data = (
        REFERRAL_HEADER + "\n" + referral_line(referral_id="A") + "\n" + referral_line() + ",extra\n"
    ).encode()
    with pytest.raises(tabular.FileRejected) as caught:
        importing.validate_columns(
            tabular.read_table(data),
            fields.REFERRAL_READERS,
            fields.REFERRAL_OPTIONAL,
            fields.check_referral_columns,
        )
    assert [p.as_dict() for p in caught.value.problems] == [
        {"row": 3, "column": "", "reason": "has 22 cells but the header has 21"}
    ]


# Per reader: cells it accepts, and cells it refuses (each then named by the cell reader's message).
READER_CASES: list[tuple[str, Any, list[str], list[str]]] = [
    ("enum", fields.read_enum(fields.SOURCES), ["police", "self", "other"], ["", "Police", "pigeon"]),
    ("bool", fields.read_bool, ["true", "false"], ["", "True", "yes", "1"]),
    (
        "date",
        fields.read_date,
        ["2025-05-01", "2024-02-29", "2025-05-01"],
        ["", "2025-02-29", "01/05/2025", "2025-5-1", "20250501", "2025-W01-1", "2025-001", "\u0662025-05-01"],
    ),
    ("optional date", fields.read_optional_date, ["", "2025-05-01", ""], ["2025-13-01", "x"]),
    ("text", fields.read_text(5), ["a", "abcde", "a b"], ["", "abcdef"]),
    ("org code", fields.read_org_code, ["VS", "ROSA", "A-1"], ["", "X Y", "A" * 21, "VS!"]),
    ("email", fields.read_email, ["", "a@b.co", "x.y+z@example.org"],
     ["a@b", "a b@c.d", "@b.c", "a@" + "b" * 260 + ".c"]),
    ("phone", fields.read_phone, ["", "07700 900123", "+44 (0)7700-900123"],
     ["0770", "phone: 0770090012", "+" + "1" * 21]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "read", "good", "bad"), READER_CASES, ids=[c[0] for c in READER_CASES])
def test_whole_column_reads_as_cell_by_cell(name: str, read: Any, good: list[str], bad: list[str]) -> None:
    assert read.column(list(good)) == [read(cell) for cell in good]
    for cell in bad:
        with pytest.raises(fields.FieldError):
            read(cell)
        assert read.column([*good, cell, *good]) is None, cell


def test_bad_cells_are_each_named_by_the_cell_readers_message() -> None:
    values, bad = importing._read_column(fields.read_date, ["2025-05-01", "2025-W01-1", "", "2025-05-02"])
    assert values == [fields.read_date("2025-05-01"), None, None, fields.read_date("2025-05-02")]
    assert bad == [
        (1, "'2025-W01-1' is not a date in the form YYYY-MM-DD"),
        (2, "is required (a date YYYY-MM-DD)"),
    ]


def test_referral_rules_over_columns_and_one_row() -> None:
    d = fields.read_date
    starts = [None, None, d("2025-05-01"), d("2025-05-01"), d("2025-05-01")]
    ends = [None, d("2025-05-01"), None, d("2025-04-30"), d("2025-05-01")]
    columns = {"support_start": starts, "support_end": ends}
    assert fields.check_referral_columns(columns) == [
        (1, "support_end", "is set but support_start is empty"),
        (3, "support_end", "2025-04-30 is before support_start 2025-05-01"),
    ]
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        expected = [(c, r) for i, c, r in fields.check_referral_columns(columns) if i == index]
        assert fields.check_referral({"support_start": start, "support_end": end}) == expected


def test_bulk_hashing_and_encryption_match_one_by_one() -> None:
    keys = keyring()
    ids = ["P1", " P2 ", "Caf\u00e9-3", "P1"]
    assert keys.person_keys(ids) == [keys.person_key(p) for p in ids]
    contacts = ["a@example.org", None, "", "07700 900123", "a@example.org"]
    sealed = keys.encrypt_all(contacts)
    assert [keys.decrypt(s) for s in sealed] == ["a@example.org", None, None, "07700 900123", "a@example.org"]
    assert sealed[0] != sealed[4]  # a fresh nonce for every value


async def _stored() -> dict[str, dict[str, Any]]:
    rows = await Referral.select(Referral.referral_id, Referral.status, Referral.person_key).run()
    return {r["referral_id"]: r for r in rows}


async def test_reimport_creates_new_rows_and_updates_stored_ones(orgs: None) -> None:
    """New referrals of a provider with stored ones: on PostgreSQL, COPYed straight in when none of the
    file's rows is stored, upserted when some are."""
    first = referrals_csv(referral_line(referral_id="A1"), referral_line(referral_id="A2"))
    assert (await importing.import_referrals(first)).as_dict() == {"rows": 2, "created": 2, "updated": 0}
    again = referrals_csv(
        referral_line(referral_id="A2", status="closed", support_end="2025-08-01"),
        referral_line(referral_id="A3", person_id="P3"),
    )
    assert (await importing.import_referrals(again)).as_dict() == {"rows": 2, "created": 1, "updated": 1}
    only_new = referrals_csv(referral_line(referral_id="A4"))
    assert (await importing.import_referrals(only_new)).as_dict() == {"rows": 1, "created": 1, "updated": 0}
    stored = await _stored()
    statuses = {k: v["status"] for k, v in stored.items()}
    assert statuses == {"A1": "supported", "A2": "closed", "A3": "supported", "A4": "supported"}
    assert stored["A3"]["person_key"] == keyring().person_key("P3")


async def test_large_file_with_bad_rows_far_apart_stores_nothing(orgs: None) -> None:
    """Rows are read by blocks: problems in different blocks keep their spreadsheet row numbers."""
    lines = [referral_line(referral_id=f"L{n:05d}", person_id=f"P{n}") for n in range(25_000)]
    lines[3_000] = referral_line(referral_id="EARLY", referral_date="2025-02-30")
    lines[10_000] = ""  # a blank row: skipped, and counted
    lines.append(referral_line(referral_id="LAST", sex="x"))
    with pytest.raises(tabular.FileRejected) as caught:
        await importing.import_referrals(referrals_csv(*lines))
    assert [p.as_dict() for p in caught.value.problems] == [
        {
            "row": 3_002,
            "column": "referral_date",
            "reason": "'2025-02-30' is not a date in the form YYYY-MM-DD",
        },
        {"row": 25_002, "column": "sex", "reason": "'x' is not one of: female, male, unknown"},
    ]
    assert await Referral.count() == 0


async def test_crlf_file_with_blank_rows_reports_spreadsheet_row_numbers(orgs: None) -> None:
    text = "\r\n".join(
        [
            REFERRAL_HEADER,
            referral_line(referral_id="C1"),
            "",
            ",,,",
            referral_line(referral_id="C2", status="lost"),
        ]
    )
    with pytest.raises(tabular.FileRejected) as caught:
        await importing.import_referrals(text.encode())
    assert [(p.row, p.column) for p in caught.value.problems] == [(5, "status")]


@pytest.mark.parametrize("one_shot", [False, True])
async def test_rows_stored_meanwhile_take_the_upsert_way(
    orgs: None, monkeypatch: pytest.MonkeyPatch, one_shot: bool
) -> None:
    """PostgreSQL COPYs rows none of which is stored straight in; when another writer stores one of
    them after that check, the COPY is undone and the rows are upserted instead (made again, or kept
    from a one-shot iterator)."""
    await importing.import_referrals(referrals_csv(referral_line(referral_id="M2")))
    copied_into: list[str] = []
    if not db.is_sqlite():
        import asyncpg

        copy = asyncpg.connection.Connection.copy_records_to_table

        async def spy(self: Any, table_name: str, **kwargs: Any) -> Any:
            copied_into.append(table_name)
            return await copy(self, table_name, **kwargs)

        monkeypatch.setattr(asyncpg.connection.Connection, "copy_records_to_table", spy)
    table = tabular.read_table(
        referrals_csv(
            referral_line(referral_id="M1"),
            referral_line(referral_id="M2", status="closed", support_end="2025-09-01"),
        )
    )
    parsed = importing.validate_columns(
        table, fields.REFERRAL_READERS, fields.REFERRAL_OPTIONAL, fields.check_referral_columns
    )
    orgs_ = await importing.provider_ids()
    chunks = importing.referral_record_chunks(parsed, orgs_, for_sqlite=db.is_sqlite(), size=1)
    # Keys that are not stored stand in for "nothing stored yet" at the time of the check.
    unseen = ([orgs_["VS"][0]] * 2, ["NEW1", "NEW2"])
    assert await importing.upsert_referrals(iter(chunks) if one_shot else chunks, unseen) == (1, 1)
    assert {k: v["status"] for k, v in (await _stored()).items()} == {"M1": "supported", "M2": "closed"}
    assert copied_into == ([] if db.is_sqlite() else ["referral", "referral_incoming"])


def test_plain_csv_reader_agrees_on_random_texts() -> None:
    import random

    rng = random.Random(20261127)
    pieces = ["a", "b1", " ", "\t", "\u00e9", "\u00a0", '"', "\r"]
    weights = [40, 40, 10, 3, 3, 3, 1, 1]
    taken = 0
    for _ in range(3000):
        width = rng.randint(1, 4)
        rows = []
        for _ in range(rng.randint(1, 5)):
            cells = rng.choice([width, width, width, 0, 1, width + 1])  # now and then blank or ragged
            rows.append(
                ",".join("".join(rng.choices(pieces, weights, k=rng.randint(0, 3))) for _ in range(cells))
            )
        ends = rng.choice([["\n"], ["\r\n"], ["\n", "\r\n"], ["\r"]])
        text = "".join(row + rng.choice(ends) for row in rows)[: rng.choice([None, -1])]
        plain = tabular._read_plain_csv(text)
        if plain is not None:
            taken += 1
            assert _shown(plain) == _shown(tabular._read_quoted_csv(text)), repr(text)
    assert taken > 400  # the comparison did run, on hundreds of texts
