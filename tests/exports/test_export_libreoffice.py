"""LibreOffice round trip: every workbook converts to PDF without error, and charts survive a
conversion back to xlsx. Needs ``soffice`` (Debian: libreoffice-calc-nogui); skipped without it."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from exports.moj_return import build_moj_return
from exports.provider_report import build_provider_report
from exports.synthetic import synthetic_result

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        SOFFICE is None,
        reason="LibreOffice (soffice) is not installed: apt-get install libreoffice-calc-nogui",
    ),
]


def _convert(files: list[Path], target: str, outdir: Path, profile: Path) -> None:
    # A private profile: parallel soffice runs (other tests, other users) share nothing and cannot
    # hand the job to an already running instance.
    cmd = [
        str(SOFFICE),
        f"-env:UserInstallation={profile.as_uri()}",
        "--headless",
        "--norestore",
        "--convert-to",
        target,
        "--outdir",
        str(outdir),
        *map(str, files),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    for f in files:
        out = outdir / (f.stem + "." + target.split(":")[0])
        assert out.exists() and out.stat().st_size > 0, (f, done.stdout, done.stderr)


def _charts(data: bytes) -> list[str]:
    with zipfile.ZipFile(BytesIO(data)) as z:
        return [n for n in z.namelist() if n.startswith("xl/charts/chart") and n.endswith(".xml")]


def _engine(period: str, by: list[str]) -> dict[str, Any]:
    result = synthetic_result(period, by, seed=7)
    if by:
        # A tiny group, so the PDF carries [c] cells and their notes too.
        result["groups"][-1]["metrics"] = synthetic_result(period, [], seed=8, referrals=15)["groups"][0][
            "metrics"
        ]
    return result


def _provider_engine(period: str, provider: str | None) -> dict[str, Any]:
    keys = ["age_band", "sex", "ethnicity", "disability"]
    return synthetic_result(period, keys, seed=provider or "all", referrals=900 if provider else 22_470)


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One LibreOffice profile for the module: the first start in a fresh profile is the slow one."""
    return tmp_path_factory.mktemp("lo-profile")


@pytest.fixture(scope="module")
def workbooks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lo")
    files = {
        "moj-return": build_moj_return(_engine, "2025-26", area="Warwickshire", contact="x@example.org"),
        "provider-report": build_provider_report(_provider_engine, "ROSA", "2025-26-Q3"),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = root / f"{name}.xlsx"
        paths[name].write_bytes(data)
    return paths


def test_every_workbook_converts_to_pdf(workbooks: dict[str, Path], profile: Path, tmp_path: Path) -> None:
    out = tmp_path / "pdf"
    _convert(list(workbooks.values()), "pdf", out, profile)
    for name in workbooks:
        pdf = (out / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF")
        assert b"/Type /Page" in pdf or b"/Type/Page" in pdf
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(out / "moj-return.pdf"), "-"], capture_output=True, text=True, check=True
        ).stdout
        # The chart title is drawn with the chart, so finding it means the chart was rendered.
        assert "Helped and improved, by outcome area" in text
        assert "Referrals and victims, by service" in text


def test_charts_survive_an_xlsx_round_trip(workbooks: dict[str, Path], profile: Path, tmp_path: Path) -> None:
    out = tmp_path / "xlsx"
    _convert(list(workbooks.values()), "xlsx:Calc MS Excel 2007 XML", out, profile)
    for name, original in workbooks.items():
        before = original.read_bytes()
        after = (out / original.name).read_bytes()
        assert len(_charts(after)) == len(_charts(before)) > 0, name
        wb_before: Any = load_workbook(BytesIO(before))
        wb_after: Any = load_workbook(BytesIO(after))
        assert wb_after.sheetnames == wb_before.sheetnames
        first = wb_before.sheetnames[1]
        assert [c.value for c in wb_after[first]["B"]][:12] == [c.value for c in wb_before[first]["B"]][:12]
