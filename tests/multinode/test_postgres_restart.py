"""PostgreSQL restarted under a live node (a cluster of the test's own, `initdb` + `pg_ctl`;
the machine's server is shared by every test run): steps in flight fail with a clear error
and succeed on retry, no step is lost or applied twice."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Client
from tests.multinode.conftest import free_port
from tests.multinode.test_redis_restart import (
    ready,
    review_detail,
    taxpayer_token_of,
    until,
)
from tests.multinode.test_two_nodes import JOIN, session_across, session_row, tokens

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
pytestmark = [
    pytest.mark.multinode,
    pytest.mark.skipif(
        PG_BIN is None or shutil.which("runuser") is None, reason="no PostgreSQL server binaries"
    ),
]


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of the test's own on a free port (run as the `postgres` user,
    which initdb requires when the tests run as root)."""

    dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str) -> None:
        assert PG_BIN is not None
        cmd = [str(PG_BIN / tool), *args]
        if subprocess.run(["id", "-u"], capture_output=True).stdout.strip() == b"0":
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()[-2000:]

    def init(self) -> OwnPostgres:
        self.dir.mkdir(parents=True)
        shutil.chown(self.dir, "postgres")
        self._pg("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")
        return self.start()

    def start(self) -> OwnPostgres:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg(
            "pg_ctl",
            "-D",
            str(self.dir / "data"),
            "-o",
            opts,
            "-l",
            str(self.dir / "pg.log"),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")


@pytest.fixture
def own_pg() -> Iterator[OwnPostgres]:
    # Not under pytest's tmp_path: its folders are private to root, and the server runs as
    # `postgres`.
    top = Path(tempfile.mkdtemp(prefix="vtax-pg-"))
    shutil.chown(top, "postgres")
    pg = OwnPostgres(top / "pg", free_port()).init()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(top, ignore_errors=True)


async def test_postgres_restarted_steps_fail_clearly_and_succeed_on_retry(cluster, own_pg):
    cluster.env["VTAX_DATABASE_URL"] = own_pg.url
    cluster.cli("migrate")
    a = cluster.node("a")
    agent_token, taxpayer_token, boss = await tokens(cluster, a)
    agent, taxpayer, a_start, _ = await session_across(a, a, agent_token, taxpayer_token)
    sid = a_start["session_id"]
    late = await Client(a.url, await taxpayer_token_of(cluster, a, 4)).connect()
    try:
        assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
        await agent.wait_for("session:end", timeout=10)
        summary = {
            "session_id": sid,
            "asked": "a restart",
            "handled": "explained",
            "result": "resolved",
            "items": ["invoices.red_letter_invoice"],
        }

        await asyncio.to_thread(own_pg.stop)
        await until(lambda: asyncio.to_thread(lambda: ready(a.url) == 503), 10, "not ready")
        for client, event, payload in (
            (agent, "session:summary", summary),
            (taxpayer, "session:rate", {"session_id": sid, "score": 4}),
            (late, "queue:join", {**JOIN, "question": "during the restart"}),
        ):
            t0 = time.monotonic()
            ack = await client.call(event, payload, timeout=30)
            assert not ack["ok"] and ack["error"]["code"] == "unavailable", (event, ack)
            print(f"{event} refused in {time.monotonic() - t0:.2f} s: {ack['error']['message']}")

        await asyncio.to_thread(own_pg.start)
        await until(lambda: asyncio.to_thread(lambda: ready(a.url) == 200), 20, "ready again")
        # Each step succeeds on its first retry (no pooled connection of before the restart
        # is handed out dead), and once.
        assert await agent.call("session:summary", summary) == {"ok": True, "version": 1}
        rated = await taxpayer.call("session:rate", {"session_id": sid, "score": 4})
        assert rated["ok"], rated
        twice = await taxpayer.call("session:rate", {"session_id": sid, "score": 5})
        assert not twice["ok"], twice
        joined = await late.call("queue:join", {**JOIN, "question": "after the restart"})
        assert joined["ok"], joined

        row = await session_row(a, boss, sid)
        assert row["rating"]["score"] == 4, row
        kinds = [e["kind"] for e in (await review_detail(a, boss, sid))["audit"]]
        assert kinds.count("rated") == 1 and kinds.count("summary_saved") == 1, kinds
        assert "Traceback" not in a.log.read_text(), a.log.read_text()[-3000:]
    finally:
        for c in (agent, taxpayer, late):
            await c.close()
