"""Real `vtax serve` processes sharing one Redis and one PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from deploy.stack import http_status
from tests.conftest import TEST_NODE_ENV
from tests.databases import Templates, pg_url
from vtax.db import migrate

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    _out: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        cmd = [
            sys.executable,
            "-m",
            "vtax",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self._out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-4000:]}")
            if http_status(self.url + "/readyz") == 200:
                return self
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not become ready:\n{self.log.read_text()[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def close(self) -> None:
        self.kill()
        if self.proc is not None:
            self.proc.wait(10)
        if self._out is not None:
            self._out.close()

    async def wait(self, timeout: float) -> int:
        """Wait for the process to exit without blocking the event loop (clients in the test
        must keep answering the server while it shuts down)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} still running after {timeout} s")
            await asyncio.sleep(0.05)
        return self.proc.returncode


@dataclass
class Cluster:
    env: dict[str, str]
    tmp: Path
    nodes: list[Node] = field(default_factory=list)

    def node(self, name: str, **extra_env: str) -> Node:
        node = Node(name, free_port(), {**self.env, **extra_env}, self.tmp / f"{name}.log")
        self.nodes.append(node)
        return node.start()

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "-m", "vtax", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin.encode(),
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    def logs(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log.read_text()[-3000:]}" for n in self.nodes)


@pytest.fixture
async def cluster(tmp_path: Path, templates: Templates) -> AsyncIterator[Cluster]:
    """Nodes over a fresh PostgreSQL database copied from the migrated template
    (tests/databases.py; `vtax migrate` itself: tests/integration/test_startup.py)."""
    db, _ = await templates.pg_copy("migrated", migrate)
    prefix = f"vtaxtest:{uuid.uuid4().hex[:8]}:"
    env = {
        **os.environ,
        "VTAX_DATABASE_URL": pg_url(db),
        "VTAX_REDIS_URL": REDIS_URL,
        "VTAX_REDIS_PREFIX": prefix,
        "VTAX_SECRET_KEY": secrets.token_urlsafe(32),
        "VTAX_DATA_DIR": str(tmp_path),
        "VTAX_VALIDATE_OUTGOING": "true",
        "VTAX_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "VTAX_WRAPUP_S": "0",
        "VTAX_RESUME_GRACE_S": "20",
        "VTAX_NODE_TIMEOUT_S": "3",
        "VTAX_DRAIN_TIMEOUT_S": "2",
        "VTAX_RECORDER_AUTOSTART": "false",
        **TEST_NODE_ENV,
    }
    cluster = Cluster(env, tmp_path)
    try:
        yield cluster
    finally:
        print(cluster.logs())  # pytest shows it only when the test failed
        for node in cluster.nodes:
            node.close()
        redis = Redis.from_url(REDIS_URL)
        async for key in redis.scan_iter(match=prefix + "*"):
            await redis.delete(key)
        await redis.aclose()
        templates.release(db)
