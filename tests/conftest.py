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
    from surveys.migrate import migrate

    await migrate(quiet=True)
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
    """An HTTP client on the real app (lifespan included)."""
    from litestar.testing import AsyncTestClient

    from app import create_app

    async with AsyncTestClient(app=create_app()) as c:
        yield c


@pytest.fixture
def tmp_files() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="vop-files-", dir=_TMP)
    yield path
