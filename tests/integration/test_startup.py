"""A node migrates its database at start-up when told to (the default on SQLite): on an empty
database of each engine it comes up ready, with every table in place. (The `server` fixture
starts its nodes on a database migrated beforehand, copied from a template.) And `vtax
migrate` does the same from the console."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from alembic.script import ScriptDirectory
from sqlalchemy import text

from signaling.app import create_app
from signaling.context import CONTEXT
from tests.conftest import test_settings
from vtax.db import alembic_config, make_engine

ROOT = Path(__file__).resolve().parents[2]


async def revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()


def head(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


async def test_a_node_migrates_an_empty_database_at_start_up(empty_database_url, tmp_path):
    settings = test_settings(empty_database_url, tmp_path)
    app = create_app(settings, migrate_on_start=True)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/readyz") as r:
                assert r.status == 200, await r.text()
            await app[CONTEXT].accounts.add_user("agent1", "agent", "pw-123456")
            async with http.post(
                f"{url}/api/auth/login", json={"username": "agent1", "password": "pw-123456"}
            ) as r:
                assert r.status == 200, await r.text()
    finally:
        await runner.cleanup()
    assert await revision(empty_database_url) == head(empty_database_url)


async def test_vtax_migrate_brings_an_empty_database_to_the_head(empty_database_url, tmp_path):
    """The console command the deployments run before the nodes (and tests/multinode ran
    per test, before its databases were copied from a template)."""
    env = {
        **os.environ,
        "VTAX_DATABASE_URL": empty_database_url,
        "VTAX_DATA_DIR": str(tmp_path),
        "VTAX_SECRET_KEY": "t" * 40,
    }
    env.pop("VTAX_REDIS_URL", None)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "vtax", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert await revision(empty_database_url) == head(empty_database_url)
