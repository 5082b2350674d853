"""Downloads over HTTP and the CLI: right content type, file name and audience; figures from the engine."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from access.tables import AuditEvent
from tests.conftest import referral_line, referrals_csv

VOP = str(Path(sys.executable).parent / "vop")


async def seed(client: Any, keys: dict[str, dict[str, str]]) -> None:
    lines = [
        referral_line("VS", f"V{n}", f"P{n}", support_end="2025-07-01", status="closed") for n in range(30)
    ]
    r = await client.post(
        "/api/v1/referrals/import",
        headers=keys["vs"],
        files={"data": ("a.csv", referrals_csv(*lines), "text/csv")},
    )
    assert r.status_code == 200, r.text


def cells(content: bytes) -> list[Any]:
    book = load_workbook(io.BytesIO(content))
    return [c.value for sheet in book.worksheets for row in sheet.iter_rows() for c in row]


async def test_moj_return_for_the_opcc_only(client: Any, keys: dict[str, dict[str, str]]) -> None:
    await seed(client, keys)
    r = await client.get("/api/v1/exports/moj-return", params={"period": "2025-26"}, headers=keys["opcc"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert 'filename="moj-return-2025-26.xlsx"' in r.headers["content-disposition"]
    values = cells(r.content)
    assert 30 in values  # referrals received, from the engine
    for who in ("vs", "vrg"):
        r = await client.get("/api/v1/exports/moj-return", params={"period": "2025-26"}, headers=keys[who])
        assert r.status_code == 403
    assert await AuditEvent.count().where(AuditEvent.action == "export.moj_return") == 1


async def test_provider_report_for_that_provider_or_the_opcc(
    client: Any, keys: dict[str, dict[str, str]]
) -> None:
    await seed(client, keys)
    params = {"period": "2025-26-Q4", "provider": "VS"}
    for who, status in (("vs", 200), ("opcc", 200), ("rosa", 404), ("vrg", 403)):
        r = await client.get("/api/v1/exports/provider-report", params=params, headers=keys[who])
        assert r.status_code == status, (who, r.text[:200])
    r = await client.get("/api/v1/exports/provider-report", params=params, headers=keys["vs"])
    assert 'filename="provider-report-VS-2025-26-Q4.xlsx"' in r.headers["content-disposition"]
    assert load_workbook(io.BytesIO(r.content)).sheetnames


async def test_csv_download_and_cli(client: Any, keys: dict[str, dict[str, str]], tmp_files: str) -> None:
    await seed(client, keys)
    r = await client.get(
        "/api/v1/exports/metrics.csv", params={"period": "2025-26", "by": "sex"}, headers=keys["opcc"]
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "referrals_received" in r.text
    out = Path(tmp_files) / "r.xlsx"
    done = subprocess.run(
        [VOP, "export", "moj-return", "--period", "2025-26", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert 30 in cells(out.read_bytes())
    bad = subprocess.run(
        [VOP, "export", "moj-return", "--period", "never"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
