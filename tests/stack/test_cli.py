"""`python deploy/stack.py up|status|down`: the topology comes up in the background, every
program health-checked, and goes down cleanly: no process left, the database dropped."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from deploy.stack import ROOT, _pid_alive, http_ok
from tests.conftest import PG_ADMIN_DSN
from tests.stack.conftest import MISSING

pytestmark = pytest.mark.stack


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "stack.py"), *args],
        capture_output=True,
        timeout=120,
        env={**os.environ, "VTAX_STACK_PG_ADMIN": PG_ADMIN_DSN},
        check=False,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    return done.stdout.decode()


async def database_exists(name: str) -> bool:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


@pytest.mark.skipif(bool(MISSING), reason=f"missing {MISSING}")
async def test_up_status_down(tmp_path: Path) -> None:
    where = tmp_path / "stack"
    try:
        out = await asyncio.to_thread(run, "up", "--dir", str(where), "--nodes", "1")
        state = json.loads((where / "stack.json").read_text())
        assert state["url"] in out
        assert set(state["pids"]) == {"redis", "coturn", "node1", "nginx", "recorder", "prometheus"}
        assert await asyncio.to_thread(http_ok, state["url"] + "/readyz")
        assert await database_exists(state["database"])
        status = await asyncio.to_thread(run, "status", "--dir", str(where))
        assert status.count(" up") == 6 and "DOWN" not in status, status  # with prometheus
        logs = {p.name for p in (where / "logs").iterdir()}
        assert {"redis.log", "coturn.log", "node1.log", "nginx-error.log", "recorder.log"} <= logs
        # Redis keeps its AOF in the stack's own folder, not the machine's.
        assert any((where / "redis").rglob("*.aof"))
    finally:
        if (where / "stack.json").exists():
            await asyncio.to_thread(run, "down", "--dir", str(where))
    assert not (where / "stack.json").exists()
    assert not any(_pid_alive(pid) for pid in state["pids"].values()), state["pids"]
    assert not await database_exists(state["database"])


@pytest.mark.skipif(bool(MISSING), reason=f"missing {MISSING}")
def test_a_stack_that_cannot_come_up_leaves_nothing_running(tmp_path: Path) -> None:
    from deploy.stack import Stack, free_port

    closed = free_port()  # nothing listens there: PostgreSQL is unreachable
    broken = Stack(tmp_path / "broken", pg_admin_dsn=f"postgresql://postgres@127.0.0.1:{closed}/x")
    with pytest.raises(OSError):
        broken.up()
    assert set(broken.procs) == {"redis", "coturn"}  # started before PostgreSQL was asked
    assert not any(p.alive() for p in broken.procs.values())
    assert not (tmp_path / "broken" / "stack.json").exists()
