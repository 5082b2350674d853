"""The responses import: untidy but valid records kept, format breaks rejected whole, no duplicates."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from surveys.responses import answer_columns, rights_list, rights_mask
from surveys.tables import Response
from tests.conftest import referral_line, referrals_csv

HEADER = (
    "provider,referral_id,wave,completed_at,mode,cope,safety,health,informed,cjs,recover,helped_cope,"
    "helped_recover,satisfaction,rights_received,swemwbs_1,swemwbs_2,swemwbs_3,swemwbs_4,swemwbs_5,"
    "swemwbs_6,swemwbs_7,barriers_text"
)


def line(**over: str) -> str:
    values = dict.fromkeys(HEADER.split(","), "")
    values.update(
        provider="VS",
        referral_id="R1",
        wave="exit",
        completed_at="2025-09-01T10:00:00+01:00",
        mode="paper",
        cope="4",
        safety="na",
        helped_cope="a_lot",
        helped_recover="na",
        satisfaction="very_satisfied",
        rights_received="1;4;12",
        barriers_text="The bus, mostly",
    )
    values.update(over)
    return ",".join(f'"{values[c]}"' for c in HEADER.split(","))


def csv(*lines: str) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


async def upload(client: Any, headers: dict[str, str], data: bytes) -> Any:
    return await client.post(
        "/api/v1/responses/import", files={"data": ("r.csv", data, "text/csv")}, headers=headers
    )


@pytest.fixture
async def referral(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await client.post(
        "/api/v1/referrals/import",
        headers=keys["vs"],
        files={"data": ("a.csv", referrals_csv(referral_line("VS", "R1")), "text/csv")},
    )


async def test_import_stores_columns_and_skips_repeats(
    client: Any, keys: dict[str, dict[str, str]], referral: None
) -> None:
    data = csv(
        line(),
        line(
            wave="baseline",
            helped_cope="",
            helped_recover="",
            satisfaction="",
            rights_received="",
            completed_at="",
        ),
    )
    r = await upload(client, keys["vs"], data)
    assert r.status_code == 200, r.text
    assert r.json() == {"rows": 2, "created": 2, "updated": 0}
    again = await upload(client, keys["vs"], data)
    assert again.json()["created"] == 0
    rows = await Response.select().order_by(Response.wave).run()
    assert [r["wave"] for r in rows] == ["baseline", "exit"]
    exit_row = rows[1]
    assert exit_row["cope"] == 4 and exit_row["safety"] is None and exit_row["helped_recover"] == "na"
    assert exit_row["rights_mask"] == (1 | 8 | 2048)
    assert exit_row["completed_at"] == dt.datetime(2025, 9, 1, 9, 0, tzinfo=dt.UTC)
    assert rows[0]["completed_at"] is None  # a partial response is kept as partial


@pytest.mark.parametrize(
    ("over", "column", "reason"),
    [
        ({"referral_id": "NOPE"}, "referral_id", "no referral 'NOPE'"),
        ({"wave": "midway"}, "wave", "is not one of"),
        ({"cope": "7"}, "cope", "must be 1 to 5"),
        ({"helped_cope": "loads"}, "helped_cope", "is not one of"),
        ({"completed_at": "2099-01-01T00:00:00Z"}, "completed_at", "in the future"),
        ({"completed_at": "yesterday"}, "completed_at", "not an ISO 8601"),
        ({"rights_received": "1;13"}, "rights_received", "not a right number"),
        ({"wave": "baseline"}, "helped_cope", "asked only at exit"),
    ],
)
async def test_bad_rows_reject_the_file(
    client: Any,
    keys: dict[str, dict[str, str]],
    referral: None,
    over: dict[str, str],
    column: str,
    reason: str,
) -> None:
    r = await upload(client, keys["vs"], csv(line(barriers_text="first"), line(**over)))
    assert r.status_code == 422, r.text
    assert any(
        p["row"] == 3 and p["column"] == column and reason in p["reason"] for p in r.json()["problems"]
    )
    assert await Response.count() == 0


async def test_untidy_records_are_kept(client: Any, keys: dict[str, dict[str, str]], referral: None) -> None:
    blank = line(
        cope="",
        safety="",
        helped_cope="",
        helped_recover="",
        satisfaction="",
        rights_received="",
        barriers_text="",
    )
    long_after = line(completed_at="2026-11-01T10:00:00Z", barriers_text="late")
    r = await upload(client, keys["vs"], csv(blank, long_after))
    assert r.status_code == 200, r.text
    assert await Response.count() == 2


async def test_provider_cannot_import_for_another(
    client: Any, keys: dict[str, dict[str, str]], referral: None
) -> None:
    r = await upload(client, keys["rosa"], csv(line()))
    assert r.status_code == 422 and "only ROSA" in r.text


def test_answer_mapping() -> None:
    cols = answer_columns(
        {
            "cope": 3,
            "safety": "na",
            "helped_cope": "no",
            "rights_received": ["none"],
            "barriers_text": "  ",
            "cjs_involved": "yes",
            "phq9_1": 2,
        }
    )
    assert cols["cope"] == 3 and cols["safety"] is None and cols["helped_cope"] == "no"
    assert cols["rights_mask"] == 0 and cols["barriers_text"] is None
    assert json.loads(cols["extra_answers"]) == {"cjs_involved": "yes", "phq9_1": 2}
    assert rights_list(rights_mask([12, 1])) == [1, 12] and rights_mask("") is None
