"""Fixtures of the identity tests: a migrated database on each engine (SQLite file, a fresh
PostgreSQL database), the registry over it, and a unique Redis key prefix per test."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import PG_ADMIN_DSN
from vtax.db import make_engine, migrate, session_factory
from vtax.identity.registry import Registry

REDIS_URL = "redis://127.0.0.1:6379/0"
_SQLITE_TEMPLATE: dict[str, Path] = {}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def migrated_url(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database migrated to the head, on each engine (SQLite: a copy of one migrated file)."""
    if request.param == "sqlite":
        if "path" not in _SQLITE_TEMPLATE:
            path = tmp_path_factory.mktemp("identity-template") / "template.db"
            await migrate(f"sqlite+aiosqlite:///{path}")
            _SQLITE_TEMPLATE["path"] = path
        shutil.copy(_SQLITE_TEMPLATE["path"], tmp_path / "vtax.db")
        yield f"sqlite+aiosqlite:///{tmp_path / 'vtax.db'}"
        return
    name = f"vtax_identity_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        await migrate(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class Db:
    engine: AsyncEngine
    sessions: Any
    registry: Registry


@pytest.fixture
async def db(migrated_url: str) -> AsyncIterator[Db]:
    engine = make_engine(migrated_url)
    try:
        sessions = session_factory(engine)
        yield Db(engine, sessions, Registry(sessions))
    finally:
        await engine.dispose()


@pytest.fixture
def redis_prefix() -> str:
    return f"vtax-test-identity:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Any]:
    """The identity state on each backend (Redis: the real server, this test's prefix)."""
    from vtax.identity.redis_state import RedisIdentityState
    from vtax.identity.state import MemoryIdentityState
    from vtax.redis_client import connect

    if request.param == "memory":
        yield MemoryIdentityState()
        return
    redis = connect(REDIS_URL, max_connections=8)
    try:
        yield RedisIdentityState(redis, redis_prefix)
    finally:
        leftover = [k async for k in redis.scan_iter(match=redis_prefix + "*", count=500)]
        if leftover:
            await redis.delete(*leftover)
        await redis.aclose()


@pytest.fixture
async def sqlite_db(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Db]:
    """The registry on a migrated SQLite copy only (the use-case tests; the registry's own
    tests run on both engines)."""
    if "path" not in _SQLITE_TEMPLATE:
        path = tmp_path_factory.mktemp("identity-template") / "template.db"
        await migrate(f"sqlite+aiosqlite:///{path}")
        _SQLITE_TEMPLATE["path"] = path
    shutil.copy(_SQLITE_TEMPLATE["path"], tmp_path / "vtax.db")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'vtax.db'}")
    try:
        sessions = session_factory(engine)
        yield Db(engine, sessions, Registry(sessions))
    finally:
        await engine.dispose()
