"""In-call chat latency: a message from the sender's emit to the receiver's `chat:message`.

Real `vtax serve` processes and real python-socketio clients (the library the tests use):
an agent and a taxpayer are paired through the queue (queue:join, offer:accept), then the two
take turns sending `chat:send` (with its ack), one message in flight at a time. For each
message: emit -> the other side's `chat:message` event (the delivery latency), and emit -> the
sender's ack (stored with its seq). Both clients are in this process, so one monotonic clock
times both ends. The same round with `rtc:signal` (relayed, stored nowhere) is the yardstick:
the difference is what storing the message costs.

Set-ups, each in its own run, interleaved and repeated (medians of the runs' p50/p99):
  one-sqlite  one node, the embedded default (SQLite file, in-process fan-out)
  one-pg      one node over PostgreSQL (the database the scaled-out nodes share)
  two-redis   two nodes over PostgreSQL and Redis: the agent on node A, the taxpayer on node
              B, so every push crosses Redis pub/sub (python-socketio's AsyncRedisManager)

The servers are pinned to core 0 and this client to core 1 (two cores on the machine).

    python benchmarks/chat.py [--messages 300] [--repeats 3] [--setups one-sqlite,one-pg,two-redis]
        [--out benchmarks/results/chat-DATE.json]
"""

# The orchestrator starts servers with blocking calls on purpose, between runs.
# ruff: noqa: ASYNC210, ASYNC220

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.signin import SIGN_IN_CODES_ENV, person_for, registry_csv, sign_in_people  # noqa: E402

PY = sys.executable
SERVER_CORE, CLIENT_CORE = "0", 1
PG_ADMIN = os.environ.get("VTAX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_SERVER = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
REDIS_URL = os.environ.get("VTAX_BENCH_REDIS", "redis://127.0.0.1:6379/0")
USCC = "91350100M000100Y43"
JOIN = {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "chat bench"}
TEXT = "请问红字发票怎么开 How do I issue a red-letter invoice? " * 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Cluster:
    """`vtax serve` nodes over one database (and Redis for more than one)."""

    def __init__(self, setup: str, tmp: Path) -> None:
        self.setup, self.tmp = setup, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.db_name: str | None = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VTAX_")}
        self.env.update(
            VTAX_DATA_DIR=str(tmp),
            VTAX_SECRET_KEY=secrets.token_urlsafe(32),
            VTAX_RECORDINGS_DIR=str(tmp / "recordings"),
            VTAX_DOCUMENTS_DIR=str(tmp / "documents"),
            VTAX_CHAT_RATE="1000",
            VTAX_CHAT_BURST="10000",
            VTAX_JOIN_RATE="1000",
            VTAX_JOIN_BURST="1000",
            VTAX_WRAPUP_S="0",
            VTAX_OFFER_TIMEOUT_S="60",
            VTAX_RECORDING_MODE="off",
            VTAX_RECORDER_AUTOSTART="false",
            VTAX_DRAIN_TIMEOUT_S="0",
            VTAX_ASSISTANT_SEED="false",
            VTAX_LOGIN_ADDRESS_RATE="1000",
            VTAX_LOGIN_ADDRESS_BURST="1000",
            VTAX_PASSWORD_HASH_TIME_COST="1",
            VTAX_PASSWORD_HASH_MEMORY_KIB="8",
            VTAX_PASSWORD_HASH_PARALLELISM="1",
        )
        self.env.update(SIGN_IN_CODES_ENV)  # every run signs the taxpayer in by SMS code

    async def start(self) -> None:
        if self.setup == "one-sqlite":
            self.env["VTAX_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.tmp / 'vtax.db'}"
        else:
            self.db_name = "vtax_chat_bench_" + uuid.uuid4().hex[:8]
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f'CREATE DATABASE "{self.db_name}"')
            finally:
                await admin.close()
            self.env["VTAX_DATABASE_URL"] = f"{PG_SERVER}/{self.db_name}"
        if self.setup == "two-redis":
            self.env["VTAX_REDIS_URL"] = REDIS_URL
            self.env["VTAX_REDIS_PREFIX"] = f"vtaxchatbench:{uuid.uuid4().hex[:8]}:"
        self.cli("migrate")
        self.cli("user", "add", "agent1", "--role", "agent", "--skill", "invoices=5",
                 "--language", "zh-CN", stdin="agent-password\n")  # fmt: skip
        registry = self.tmp / "registry.csv"  # the taxpayer, as the tax system's export has it
        registry.write_text(registry_csv([person_for(USCC)]), encoding="utf-8")
        self.cli("registry", "import", str(registry))
        for n in range(2 if self.setup == "two-redis" else 1):
            port = free_port()
            log = (self.tmp / f"node{n}.log").open("wb")
            proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CORE, PY, "-m", "vtax", "serve",
                 "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            self.procs.append(proc)
            self.urls.append(f"http://127.0.0.1:{port}")
        for url in self.urls:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} not ready: {self.tmp}")
                await asyncio.sleep(0.1)

    def cli(self, *args: str, stdin: str = "") -> None:
        done = subprocess.run(
            [PY, "-m", "vtax", *args], cwd=ROOT, env=self.env, input=stdin.encode(),
            capture_output=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"vtax {' '.join(args)}: {done.stderr.decode()[-2000:]}")

    async def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.db_name:
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            finally:
                await admin.close()
        if self.setup == "two-redis":
            from redis.asyncio import Redis

            redis = Redis.from_url(REDIS_URL)
            async for key in redis.scan_iter(match=self.env["VTAX_REDIS_PREFIX"] + "*"):
                await redis.delete(key)
            await redis.aclose()


class Side:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[Any]] = {}
        self.arrived: dict[int, float] = {}
        self.got = asyncio.Event()
        for name in ("offer:new", "session:start"):
            self.events[name] = asyncio.Queue()
            self.sio.on(name, self._put(name))
        self.sio.on("chat:message", self._chat)
        self.sio.on("rtc:signal", self._signal)
        self.signals: dict[int, float] = {}
        self.got_signal = asyncio.Event()

    def _put(self, name: str) -> Any:
        async def handler(data: Any) -> None:
            await self.events[name].put(data)

        return handler

    async def _chat(self, data: Any) -> None:
        self.arrived[data["seq"]] = time.perf_counter()
        self.got.set()

    async def _signal(self, data: Any) -> None:
        self.signals[data["data"]["n"]] = time.perf_counter()
        self.got_signal.set()

    async def connect(self) -> Side:
        await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"])
        return self

    async def call(self, event: str, payload: Any) -> Any:
        answer = await self.sio.call(event, payload, timeout=10)
        if not answer.get("ok"):
            raise RuntimeError(f"{event}: {answer}")
        return answer


async def tokens(cluster: Cluster, url: str) -> tuple[str, str]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            url + "/api/auth/login", json={"username": "agent1", "password": "agent-password"}
        ) as r:
            agent = (await r.json())["token"]
    # The taxpayer signs in by SMS code, read from the nodes' logs.
    logs = [cluster.tmp / f"node{n}.log" for n in range(len(cluster.urls))]
    (session,) = await sign_in_people(url, [person_for(USCC)], logs)
    return agent, str(session["access_token"])


async def one_run(cluster: Cluster, messages: int) -> dict[str, Any]:
    agent_url = cluster.urls[0]
    taxpayer_url = cluster.urls[-1]  # the other node when there are two
    agent_token, taxpayer_token = await tokens(cluster, agent_url)
    agent = await Side(agent_url, agent_token).connect()
    taxpayer = await Side(taxpayer_url, taxpayer_token).connect()
    try:
        await agent.call("agent:status", {"status": "available"})
        await taxpayer.call("queue:join", JOIN)
        offer = await asyncio.wait_for(agent.events["offer:new"].get(), 10)
        await agent.call("offer:accept", {"offer_id": offer["offer_id"]})
        start = await asyncio.wait_for(taxpayer.events["session:start"].get(), 10)
        sid = start["session_id"]
        delivery: list[float] = []
        ack: list[float] = []
        for n in range(messages + 20):  # the first 20 warm up
            sender, receiver = (agent, taxpayer) if n % 2 == 0 else (taxpayer, agent)
            receiver.got.clear()
            t0 = time.perf_counter()
            answer = await sender.call(
                "chat:send", {"session_id": sid, "client_id": f"m{n}", "text": TEXT}
            )
            t_ack = time.perf_counter()
            seq = answer["message"]["seq"]
            while seq not in receiver.arrived:
                await asyncio.wait_for(receiver.got.wait(), 10)
                receiver.got.clear()
            if n >= 20:
                delivery.append((receiver.arrived[seq] - t0) * 1000)
                ack.append((t_ack - t0) * 1000)
        # The yardstick: the same round through the relay, which stores nothing (rtc:signal).
        relay: list[float] = []
        for n in range(messages + 20):
            sender, receiver = (agent, taxpayer) if n % 2 == 0 else (taxpayer, agent)
            receiver.got_signal.clear()
            t0 = time.perf_counter()
            await sender.call(
                "rtc:signal", {"session_id": sid, "type": "candidate", "data": {"n": n}}
            )
            while n not in receiver.signals:
                await asyncio.wait_for(receiver.got_signal.wait(), 10)
                receiver.got_signal.clear()
            if n >= 20:
                relay.append((receiver.signals[n] - t0) * 1000)
        await agent.call("session:end", {"session_id": sid})
    finally:
        await agent.sio.disconnect()
        await taxpayer.sio.disconnect()
    return {
        "delivery_p50_ms": percentile(delivery, 0.5),
        "delivery_p99_ms": percentile(delivery, 0.99),
        "ack_p50_ms": percentile(ack, 0.5),
        "ack_p99_ms": percentile(ack, 0.99),
        "relay_p50_ms": percentile(relay, 0.5),
        "relay_p99_ms": percentile(relay, 0.99),
        "messages": len(delivery),
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--setups", default="one-sqlite,one-pg,two-redis")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    os.sched_setaffinity(0, {CLIENT_CORE})
    setups = args.setups.split(",")
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in setups}
    for _ in range(args.repeats):
        for setup in setups:  # interleaved: a noisy minute hits every set-up
            with tempfile.TemporaryDirectory(prefix="vtax-chat-bench-") as tmp:
                cluster = Cluster(setup, Path(tmp))
                try:
                    await cluster.start()
                    result = await one_run(cluster, args.messages)
                finally:
                    await cluster.stop()
            runs[setup].append(result)
            print(setup, json.dumps(result), flush=True)
    summary = {
        setup: {
            key: round(statistics.median(r[key] for r in results), 2)
            for key in (
                "delivery_p50_ms",
                "delivery_p99_ms",
                "ack_p50_ms",
                "ack_p99_ms",
                "relay_p50_ms",
                "relay_p99_ms",
            )
        }
        for setup, results in runs.items()
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "machine": {
                        "cpus": os.cpu_count(),
                        "python": platform.python_version(),
                        "load": os.getloadavg(),
                    },
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "runs": runs,
                    "medians": summary,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
