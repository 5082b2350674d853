"""Test set-up: one fresh database per run (SQLite file, or a new PostgreSQL database when
VOP_DATABASE_URL points at a server), migrated once; every test starts with empty tables.

The environment is set before any project module is imported, because Piccolo binds tables to the
engine of piccolo_conf at import time.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

_SERVER_URL = os.environ.get("VOP_DATABASE_URL", "")
_TMP = tempfile.mkdtemp(prefix="vop-test-")
if _SERVER_URL.startswith(("postgres://", "postgresql://")):
    _TEST_DB = f"vop_test_{uuid.uuid4().hex[:10]}"
    _BASE, _, _ = _SERVER_URL.rpartition("/")
    os.environ["VOP_DATABASE_URL"] = f"{_BASE}/{_TEST_DB}"
else:
    _TEST_DB = ""
    os.environ["VOP_DATABASE_URL"] = f"sqlite:///{_TMP}/test.db"
os.environ["VOP_ENV"] = "test"
os.environ.setdefault("VOP_SECRET_KEY", "test-secret-key-0123456789abcdef-0123456789")
os.environ.setdefault("VOP_RATE_LIMIT_FAILURES", "1000")


async def _admin_execute(sql: str) -> None:
    import asyncpg

    from surveys.db import postgres_config

    config = postgres_config(f"{_BASE}/postgres")
    conn = await asyncpg.connect(**config)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def migrated() -> AsyncIterator[None]:
    """Create the run's database and apply every migration once."""
    if _TEST_DB:
        await _admin_execute(f'CREATE DATABASE "{_TEST_DB}"')
    from surveys import db as database
    from surveys.migrate import migrate

    await migrate(quiet=True)
    # The pool lives on the tests' loop; the app's lifespan (run by the test client on another loop)
    # sees it open and leaves it alone.
    await database.start()
    yield
    from surveys import db

    await db.stop()
    if _TEST_DB:
        await _admin_execute(f'DROP DATABASE IF EXISTS "{_TEST_DB}" WITH (FORCE)')


@pytest.fixture
async def db(migrated: None) -> AsyncIterator[None]:
    """An empty, migrated database on the engine VOP_DATABASE_URL names."""
    from surveys.migrate import truncate_all

    await truncate_all()
    yield


@pytest.fixture
async def client(db: None) -> AsyncIterator[object]:
    """An HTTP client calling the real app on the tests' own event loop.

    Litestar's AsyncTestClient runs the app in a portal thread with its own loop, which cannot share
    the PostgreSQL pool with the tests; httpx's ASGI transport runs it here. The app's start-up only
    opens the pool, which the `migrated` fixture already holds.
    """
    import httpx

    from app import create_app

    transport = httpx.ASGITransport(app=create_app(), client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def tmp_files() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="vop-files-", dir=_TMP)
    yield path


REFERRAL_HEADER = (
    "provider,referral_id,person_id,referral_date,source,crime_type,domestic_abuse,hate_crime,repeat_victim,"
    "age_band,sex,ethnicity,disability,status,support_start,support_end,contact_email,contact_phone,"
    "preferred_channel,safe_to_contact,consent_to_survey"
)


def referral_line(provider: str = "VS", referral_id: str = "R1", person_id: str = "P1", **over: str) -> str:
    """One CSV line of the referrals format; keyword arguments replace columns."""
    values = {
        "provider": provider,
        "referral_id": referral_id,
        "person_id": person_id,
        "referral_date": "2025-05-01",
        "source": "police",
        "crime_type": "burglary_residential",
        "domestic_abuse": "false",
        "hate_crime": "false",
        "repeat_victim": "false",
        "age_band": "25-34",
        "sex": "female",
        "ethnicity": "white",
        "disability": "no",
        "status": "supported",
        "support_start": "2025-05-10",
        "support_end": "",
        "contact_email": "someone@example.org",
        "contact_phone": "",
        "preferred_channel": "email",
        "safe_to_contact": "true",
        "consent_to_survey": "true",
    }
    values.update(over)
    return ",".join(values[c] for c in REFERRAL_HEADER.split(","))


def referrals_csv(*lines: str) -> bytes:
    return ("\n".join([REFERRAL_HEADER, *lines]) + "\n").encode()


@pytest.fixture
async def orgs(db: None) -> None:
    """The commissioner and three providers."""
    from surveys.services import add_organisation

    await add_organisation("OPCC", "Commissioner", "commissioner", None)
    await add_organisation("VS", "General service", "provider", "general")
    await add_organisation("ROSA", "Sexual violence service", "provider", "sav")
    await add_organisation("BARN", "CSE service", "provider", "cse")


@pytest.fixture
async def keys(orgs: None) -> dict[str, dict[str, str]]:
    """Authorization headers by name: vs, rosa (providers), opcc, vrg, admin."""
    from access.keys import create_key

    made = {}
    for name, org, role in (
        ("vs", "VS", "provider"),
        ("rosa", "ROSA", "provider"),
        ("opcc", "OPCC", "opcc"),
        ("vrg", "OPCC", "vrg"),
        ("admin", "OPCC", "admin"),
    ):
        key, _ = await create_key(org, role)
        made[name] = {"Authorization": f"Bearer {key}"}
    return made
