"""The `vop` command as a user runs it: a real process on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from surveys.tables import Organisation, Referral
from tests.conftest import referral_line, referrals_csv

VOP = str(Path(sys.executable).parent / "vop")


def vop(
    *args: str, cwd: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VOP, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_version() -> None:
    done = vop("--version")
    assert done.returncode == 0 and done.stdout.startswith("vop ")


async def test_orgs_keys_and_import(orgs: None, tmp_files: str) -> None:
    done = vop("orgs", "add", "HATE", "Hate crime service", "--service", "hate")
    assert done.returncode == 0, done.stderr
    assert await Organisation.count().where(Organisation.code == "HATE") == 1
    again = vop("orgs", "add", "HATE", "Again", "--service", "hate")
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr

    key = vop("keys", "create", "--org", "HATE", "--role", "provider")
    assert key.returncode == 0 and key.stdout.strip().startswith("vop_")
    bad_role = vop("keys", "create", "--org", "OPCC", "--role", "provider")
    assert bad_role.returncode == 1 and "commissioner" in bad_role.stderr

    good = Path(tmp_files) / "good.csv"
    good.write_bytes(referrals_csv(referral_line("VS", "C1"), referral_line("ROSA", "C2")))
    done = vop("import", "referrals", str(good))
    assert done.returncode == 0, done.stderr
    assert "2 created" in done.stdout

    bad = Path(tmp_files) / "bad.csv"
    bad.write_bytes(referrals_csv(referral_line("VS", "C3", sex="robot"), referral_line("VS", "C4")))
    done = vop("import", "referrals", str(bad))
    assert done.returncode == 1
    assert "2" in done.stderr and "sex" in done.stderr and "'robot' is not one of" in done.stderr
    assert "Traceback" not in done.stderr
    assert await Referral.count() == 2  # nothing of the rejected file

    scoped = vop("import", "referrals", str(good), "--provider", "ROSA")
    assert scoped.returncode == 1 and "may import only ROSA" in scoped.stderr

    missing = vop("import", "referrals", str(Path(tmp_files) / "nope.csv"))
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_production_refuses_to_start_without_a_secret(tmp_files: str) -> None:
    done = vop(
        "migrate",
        cwd=tmp_files,
        env={
            "VOP_ENV": "production",
            "VOP_SECRET_KEY": "",
            "VOP_DATABASE_URL": f"sqlite:///{tmp_files}/p.db",
        },
    )
    assert done.returncode != 0
    assert "VOP_SECRET_KEY is not set" in done.stderr and "Traceback" not in done.stderr


def test_development_generates_and_keeps_a_secret(tmp_files: str) -> None:
    env = {"VOP_ENV": "development", "VOP_SECRET_KEY": "", "VOP_DATABASE_URL": f"sqlite:///{tmp_files}/d.db"}
    first = vop("migrate", cwd=tmp_files, env=env)
    assert first.returncode == 0, first.stderr
    assert "development secret" in first.stderr
    secret = (Path(tmp_files) / ".vop-secret").read_text()
    assert len(secret) >= 32
    vop("migrate", cwd=tmp_files, env=env)
    assert (Path(tmp_files) / ".vop-secret").read_text() == secret


async def test_serve_demo_answers_with_its_printed_key(db: None, tmp_files: str) -> None:
    import re
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tmp_files) / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [VOP, "serve", "--demo", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "300"},
        )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
            key = re.search(r"vop_[A-Za-z0-9_-]{40,}", log.read_text())
            assert key, log.read_text()
            r = await http.get(
                "/api/v1/referrals",
                params={"page_size": 2},
                headers={"Authorization": f"Bearer {key.group(0)}"},
            )
            assert r.status_code == 200 and r.json()["total"] > 20_000
            assert (await http.get("/schema/openapi.json")).json()["openapi"].startswith("3.1")
            docs = (await http.get("/schema/swagger")).text
            assert "https://" not in docs  # no CDN: the page's assets come from the app itself
            assert (await http.get("/schema/assets/swagger-ui-bundle.js")).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
