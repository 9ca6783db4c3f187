"""A node migrates its database at start-up when told to (the default on SQLite): on an empty
database of each engine it comes up ready, with every table in place. (The `server` fixture
starts its nodes on a database migrated beforehand, copied from a template.)"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from sqlalchemy import text

from signaling.app import create_app
from signaling.context import CONTEXT
from tests.conftest import test_settings
from vtax.db import make_engine


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
    engine = make_engine(empty_database_url)
    try:
        async with engine.connect() as conn:
            version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()
    from alembic.script import ScriptDirectory

    from vtax.db import alembic_config

    assert (
        version
        == ScriptDirectory.from_config(alembic_config(empty_database_url)).get_current_head()
    )
