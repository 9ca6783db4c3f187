"""Signaling relay benchmark: this server vs a bare aiohttp relay vs the PeerJS server.

Side by side in one run, each server pinned to CPU core 0 and this load client to core 1:

  (a) vtax  - `python -m vtax serve` (temporary SQLite, generous rate limits); N sessions are
              set up through the real queue (taxpayer `queue:join`, agent `offer:accept`),
              then `rtc:signal` ping-pong inside each session (with acks, as the pages send);
              the agents have staff tokens, the taxpayers are people of the registry signed
              in by SMS code over HTTP right before they connect (the codes read from the
              node's log: tests/signin.py `sign_in_people`), as the pages sign in;
  (b) bare  - benchmarks/signaling_bare_relay.py: aiohttp WebSockets, nothing on top;
  (c) peerjs- the PeerJS server (npm `peer@1.0.2`, installed into a temporary folder),
              relaying `{type, dst, payload}`.

Per server and number of pairs: server CPU us per relayed message (utime+stime from
/proc/PID/stat over the window / messages relayed), messages/s, round-trip p50/p99 (ping from
one side, pong back from the other; one ping in flight per pair). Windows of the three servers
are interleaved and repeated; medians are reported. Then resident memory per idle connection
(3,000 connections, fresh server each; for (a) each connection is a different person, signed
in before the baseline is read: no token serves two sockets, so what a taxpayer costs the
node is counted once per connection, the sign-in itself not at all), session set-ups per
second for (a) (join to both `session:start`) on one node and on two nodes over Redis +
PostgreSQL, and optionally a py-spy profile of (a)'s relay path.

    python benchmarks/signaling_bench.py [--pairs 1,50,200] [--duration 3] [--repeats 3]
        [--messages N] [--out benchmarks/results/signaling-DATE.json] [--profile 15]

The load client speaks Engine.IO/Socket.IO directly over aiohttp WebSockets (see
benchmarks/signaling_clients.py); its own CPU use is reported with every window so that a
client-bound window shows. Everything binds to 127.0.0.1 and stops by itself.

Estimating a change without making it: `--a-variant NAME:K=V,...` runs more (a) servers side
by side with the same interleaved windows, from a scratch copy of the tree (`ROOT=/tmp/copy`)
and/or with the what-if patches of benchmarks/signaling_experiments.py (`VTAX_X=uvloop+gc`,
with `--x-site DIR` holding uvloop/orjson). `--bare-uvloop` adds the floor on uvloop.
`--no-ack` sends rtc:signal without an ack id (the server then sends no ack packet).
"""

# The orchestrator starts servers and helpers with blocking calls on purpose, between windows.
# ruff: noqa: ASYNC109, ASYNC110, ASYNC220, ASYNC221, ASYNC230, ASYNC240

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from signaling_accounts import people_of  # noqa: E402
from signaling_clients import (  # noqa: E402
    Conn,
    Load,
    Pair,
    SioConn,
    peer_frames,
    sio_frames,
    ws_connect,
)

ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from tests.signin import SIGN_IN_CODES_ENV, TestPerson, sign_in_people  # noqa: E402

PY = sys.executable
SERVER_CORE, CLIENT_CORE = "0", 1
PEER_VERSION = "1.0.2"
PG_ADMIN = os.environ.get("VTAX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/0"
JOIN = {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "bench"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
perf = time.perf_counter


def log(*args: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- servers ----------------------------------------------------------------------------


KEEP_LOGS: Path | None = None  # --keep-logs: copy every server's log here when it stops


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        """utime + stime of the server process (all its threads), seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def cpu_exact(self) -> float:
        """Time on CPU of all the server's threads from the scheduler (ns precision), seconds:
        a cross-check of the tick-sampled utime+stime."""
        total = 0
        for task in os.listdir(f"/proc/{self.pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{self.pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-3000:]
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if KEEP_LOGS is not None and self.log_path is not None and self.log_path.exists():
            KEEP_LOGS.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log_path, KEEP_LOGS / f"{self.name}-{self.pid}.log")


async def wait_http(server: Server, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited ({server.proc.returncode}):\n{server.tail()}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(server.url + path) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer {path} in {timeout} s:\n{server.tail()}")


def vtax_env(tmp: Path, key: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTAX_")}
    env.update(
        VTAX_DATA_DIR=str(tmp),
        VTAX_SECRET_KEY=key,
        VTAX_HOST="127.0.0.1",
        VTAX_RECORDINGS_DIR=str(tmp / "recordings"),
        VTAX_DOCUMENTS_DIR=str(tmp / "documents"),
        VTAX_SIGNAL_RATE="1000000",
        VTAX_SIGNAL_BURST="1000000",
        VTAX_JOIN_RATE="1000",
        VTAX_JOIN_BURST="1000",
        VTAX_WRAPUP_S="0",
        VTAX_OFFER_TIMEOUT_S="60",
        VTAX_RECORDING_MODE="off",
        VTAX_RECORDER_AUTOSTART="false",
        VTAX_DRAIN_TIMEOUT_S="0",
        VTAX_LOG_FORMAT="text",
        # Every taxpayer signs in by SMS code from this one client address.
        **SIGN_IN_CODES_ENV,
        # The agents' passwords (never used: they have tokens) hashed at the lowest cost.
        VTAX_PASSWORD_HASH_TIME_COST="1",
        VTAX_PASSWORD_HASH_MEMORY_KIB="8",
        VTAX_PASSWORD_HASH_PARALLELISM="1",
    )
    env.update(extra or {})
    return env


def run_checked(cmd: list[str], env: dict[str, str], cwd: Path, what: str) -> str:
    for attempt in range(5):  # others edit the tree concurrently: an import error may pass
        r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
        if r.returncode == 0:
            return r.stdout
        log(f"{what} failed (attempt {attempt + 1}): {r.stderr[-800:]}")
        time.sleep(5)
    raise RuntimeError(f"{what} failed")


def make_accounts(env: dict[str, str], root: Path, agents: int, people: int) -> dict[str, Any]:
    """A migrated database with `agents` agents (their tokens) and `people` people in the
    registry (benchmarks/signaling_accounts.py); the people sign in once the node runs."""
    run_checked([PY, "-m", "vtax", "migrate"], env, root, "vtax migrate")
    out = run_checked(
        [PY, str(BENCH / "signaling_accounts.py"), "--agents", str(agents),
         "--people", str(people)],
        env, root, "accounts",
    )  # fmt: skip
    answer = json.loads(out)
    return {"agents": answer["agents"], "people": people_of(answer)}


async def sign_in(server: Server, people: list[TestPerson]) -> list[str]:
    """The people's taxpayer access tokens: an SMS sign-in each over HTTP at `server`, the
    codes read from its log. Right before connecting: an access token lives 15 minutes."""
    assert server.log_path is not None
    t0 = perf()
    sessions = await sign_in_people(server.url, people, [server.log_path])
    log(f"({server.name}) {len(people)} people signed in by SMS code in {perf() - t0:.1f} s")
    return [str(s["access_token"]) for s in sessions]


async def start_vtax(name: str, tmp: Path, env: dict[str, str], root: Path) -> Server:
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log_path = tmp / f"{name}.log"
    env = dict(env, PYTHONPATH=os.pathsep.join([str(root), env.get("PYTHONPATH", "")]))
    for attempt in range(4):
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CORE, PY, "-m", "vtax", "serve", "--port", str(port)],
                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        server = Server(name, proc, f"http://127.0.0.1:{port}", log_path)
        try:
            await wait_http(server, "/healthz")
            return server
        except RuntimeError as exc:
            server.stop()
            log(f"{name} did not start (attempt {attempt + 1}); retrying: {str(exc)[-600:]}")
            await asyncio.sleep(5)
    raise RuntimeError(f"{name} did not start")


async def start_bare(
    tmp: Path, extra: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    log_path = tmp / f"bare-{port}.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, PY, str(BENCH / "signaling_bare_relay.py"),
             "--port", str(port), *extra],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    server = Server("bare", proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 30
    while "listening" not in server.tail():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"bare relay did not start:\n{server.tail()}")
        await asyncio.sleep(0.05)
    return server


def install_peerjs(tmp: Path) -> Path:
    prefix = tmp / "peerjs"
    prefix.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", f"peer@{PEER_VERSION}", "--prefix", str(prefix), "--no-audit",
         "--no-fund", "--loglevel=error"],
        check=True, stdout=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    return prefix / "node_modules" / ".bin" / "peerjs"


async def start_peerjs(binary: Path) -> Server:
    port = free_port()
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, str(binary), "--port", str(port), "--host", "127.0.0.1",
         "--alive_timeout", "3600000", "--concurrent_limit", "10000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = Server("peerjs", proc, f"http://127.0.0.1:{port}")
    await wait_http(server, "/")
    return server


def node_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return "?"


# ---- connections and pairs --------------------------------------------------------------


async def gather_limited(coros: list[Any], limit: int = 64) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> Any:
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def accept_offer(agent: SioConn, offer: dict[str, Any], failures: list[Any]) -> None:
    try:
        r = await agent.call("offer:accept", {"offer_id": offer["offer_id"]})
        if not r.get("ok"):
            failures.append(r)
    except Exception as exc:
        failures.append(repr(exc))


async def make_agents(
    http: aiohttp.ClientSession, url: str, tokens: list[str], failures: list[Any]
) -> list[SioConn]:
    agents = await gather_limited([SioConn.connect(http, url, t) for t in tokens])
    tasks: set[asyncio.Task[None]] = set()
    for ag in agents:

        def on_offer(p: dict[str, Any], ag: SioConn = ag) -> None:
            task = asyncio.create_task(accept_offer(ag, p, failures))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        ag.handlers["offer:new"] = on_offer
        for ignored in ("agent:status", "offer:revoked", "session:end", "session:peer"):
            ag.handlers[ignored] = lambda _p: None
    acks = await gather_limited([ag.call("agent:status", {"status": "available"}) for ag in agents])
    bad = [a for a in acks if not a.get("ok")]
    if bad:
        raise RuntimeError(f"agent:status failed: {bad[:3]}")
    return agents


async def sio_pairs(
    http: aiohttp.ClientSession,
    server: Server,
    tokens: dict[str, list[str]],
    n: int,
    load: Load,
    ack: bool = True,
) -> list[Pair]:
    """n sessions through the real queue: agents go available, taxpayers join, agents accept."""
    failures: list[Any] = []
    agents = await make_agents(http, server.url, tokens["agents"][:n], failures)
    taxpayers = await gather_limited(
        [SioConn.connect(http, server.url, t) for t in tokens["taxpayers"][:n]]
    )
    for tp in taxpayers:
        tp.handlers["queue:update"] = lambda _p: None
    joins = await gather_limited([tp.call("queue:join", JOIN) for tp in taxpayers], 16)
    bad = [j for j in joins if not j.get("ok")]
    if bad:
        raise RuntimeError(f"queue:join failed: {bad[:3]}")
    tp_starts = await asyncio.gather(*(tp.wait_event("session:start", 120) for tp in taxpayers))
    ag_starts = await asyncio.gather(*(ag.wait_event("session:start", 120) for ag in agents))
    if failures:
        raise RuntimeError(f"offer:accept failed: {failures[:3]}")
    by_session = {s["session_id"]: ag for s, ag in zip(ag_starts, agents, strict=True)}
    await asyncio.sleep(0.5)  # let the last status events arrive before the fast path
    pairs = []
    for start, tp in zip(tp_starts, taxpayers, strict=True):
        ping, pong = sio_frames(start["session_id"], ack)
        pairs.append(Pair(load, tp, by_session[start["session_id"]], ping, pong, sio=True))
    return pairs


async def ws_pairs(
    http: aiohttp.ClientSession, server: Server, n: int, load: Load, peerjs: bool
) -> list[Pair]:
    run = uuid.uuid4().hex[:8]

    def url(peer: str) -> str:
        if peerjs:
            return f"ws://127.0.0.1:{server.url.rsplit(':', 1)[1]}/peerjs?key=peerjs&id={peer}&token=t{run}"
        return f"ws://127.0.0.1:{server.url.rsplit(':', 1)[1]}/ws?id={peer}"

    ids = [(f"t{run}{i}", f"a{run}{i}") for i in range(n)]
    callers = await gather_limited([ws_connect(http, url(t), peerjs) for t, _ in ids])
    callees = await gather_limited([ws_connect(http, url(a), peerjs) for _, a in ids])
    return [
        Pair(load, c, e, *peer_frames(t, a), sio=False)
        for (t, a), c, e in zip(ids, callers, callees, strict=True)
    ]


# ---- windows ----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def client_cpu() -> float:
    t = os.times()
    return t.user + t.system


async def window(
    server: Server, pairs: list[Pair], load: Load, duration: float, warmup: float, messages: int
) -> dict[str, Any]:
    load.rtts, load.ack_errors, load.dead_pairs = [], 0, 0
    load.running = True
    await asyncio.gather(*(p.kick() for p in pairs))
    await asyncio.sleep(warmup)
    c0, k0, t0, r0 = server.cpu(), client_cpu(), perf(), load.round_trips
    e0 = server.cpu_exact()
    load.recording = True
    while True:
        await asyncio.sleep(0.05)
        if perf() - t0 >= duration or (messages and 2 * (load.round_trips - r0) >= messages):
            break
    load.recording = False
    c1, k1, t1, r1 = server.cpu(), client_cpu(), perf(), load.round_trips
    e1 = server.cpu_exact()
    load.running = False
    deadline = perf() + 5
    while any(p.busy for p in pairs) and perf() < deadline:
        await asyncio.sleep(0.01)
    stalled = sum(p.busy for p in pairs)
    for p in pairs:
        p.busy = False
    msgs = 2 * (r1 - r0)
    wall = t1 - t0
    return {
        "messages": msgs,
        "seconds": round(wall, 3),
        "msg_per_s": msgs / wall,
        "cpu_us_per_msg": (c1 - c0) * 1e6 / msgs if msgs else None,
        "cpu_us_per_msg_schedstat": (e1 - e0) * 1e6 / msgs if msgs else None,
        "server_cpu_busy": (c1 - c0) / wall,
        "client_cpu_busy": (k1 - k0) / wall,
        "rtt_p50_ms": (pct(load.rtts, 0.50) or 0) * 1e3,
        "rtt_p99_ms": (pct(load.rtts, 0.99) or 0) * 1e3,
        "stalled_pairs": stalled,
        "ack_errors": load.ack_errors,
        "dead_pairs": load.dead_pairs,
    }


def med(windows: list[dict[str, Any]], key: str) -> float | None:
    vals = [w[key] for w in windows if w.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(windows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("cpu_us_per_msg", "cpu_us_per_msg_schedstat", "msg_per_s", "rtt_p50_ms", "rtt_p99_ms", "server_cpu_busy",
            "client_cpu_busy")  # fmt: skip
    out: dict[str, Any] = {k: med(windows, k) for k in keys}
    out["stalled_pairs"] = sum(w["stalled_pairs"] for w in windows)
    out["ack_errors"] = sum(w["ack_errors"] for w in windows)
    out["dead_pairs"] = max(w["dead_pairs"] for w in windows)
    out["windows"] = windows
    return out


# ---- memory per idle connection ----------------------------------------------------------


async def idle_memory(
    server: Server, connect: Any, count: int, warm: int = 50, settle: float = 3.0
) -> dict[str, Any]:
    conns: list[Conn] = list(await gather_limited([connect(i) for i in range(warm)]))
    await asyncio.sleep(settle)
    base = server.rss_kb()
    t0 = perf()
    conns += await gather_limited([connect(warm + i) for i in range(count)], 32)
    opened = perf() - t0
    await asyncio.sleep(settle)
    c0, t0 = server.cpu_exact(), perf()
    await asyncio.sleep(5)  # idle cost: heartbeats (Engine.IO pings every ping_interval)
    idle_cpu = (server.cpu_exact() - c0) / (perf() - t0)
    alive = sum(not c.closed for c in conns)
    rss = server.rss_kb()
    result = {
        "connections": count,
        "alive": alive,
        "rss_base_kb": base,
        "rss_kb": rss,
        "kb_per_connection": round((rss - base) / count, 2),
        "connect_s": round(opened, 2),
        "idle_cpu_percent": round(idle_cpu * 100, 2),
    }
    await gather_limited([c.close() for c in conns], 256)
    return result


# ---- session set-ups ---------------------------------------------------------------------


async def queue_counters(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The node's queue transaction counters from /metrics."""
    async with http.get(url + "/metrics") as r:
        text = await r.text()
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")
    return {
        "transactions": float(values.get("vtax_queue_transactions_total", 0)),
        "conflicts": float(values.get("vtax_queue_conflicts_total", 0)),
    }


async def setups(
    http: aiohttp.ClientSession,
    tp_url: str,
    ag_url: str,
    tp_tokens: list[str],
    ag_tokens: list[str],
    duration: float,
    windows: int,
    first_timeout: float = 20.0,
) -> dict[str, Any]:
    """Concurrent lanes: join, wait for both `session:start`, hang up, again. Agents accept
    every offer they get."""
    failures: list[Any] = []
    nodes = sorted({tp_url, ag_url})
    before = [await queue_counters(http, url) for url in nodes]
    agents = await make_agents(http, ag_url, ag_tokens, failures)
    started: dict[str, asyncio.Future[float]] = {}
    loop = asyncio.get_running_loop()

    def fut_for(sid: str) -> asyncio.Future[float]:
        if sid not in started:
            started[sid] = loop.create_future()
        return started[sid]

    for ag in agents:
        ag.handlers["session:start"] = lambda p: fut_for(p["session_id"]).set_result(perf())
    taxpayers = await gather_limited([SioConn.connect(http, tp_url, t) for t in tp_tokens])
    done: list[float] = []
    latencies: list[float] = []
    errors: list[str] = []
    t_begin = perf()
    end_at = t_begin + 1.0 + duration * windows

    async def lane(tp: SioConn) -> None:
        tp.handlers["queue:update"] = lambda _p: None
        first = True
        while perf() < end_at:
            t0 = perf()
            joined = await tp.call("queue:join", JOIN)
            if not joined.get("ok"):
                errors.append(str(joined)[:200])
                await asyncio.sleep(0.05)
                continue
            try:
                start = await tp.wait_event("session:start", first_timeout if first else 60)
                sid = start["session_id"]
                await asyncio.wait_for(fut_for(sid), 30)
            except TimeoutError:
                errors.append("timeout waiting for session:start")
                return
            first = False
            t1 = perf()
            done.append(t1)
            latencies.append(t1 - t0)
            started.pop(sid, None)
            ended = await tp.call("session:end", {"session_id": sid})
            if not ended.get("ok"):
                errors.append(f"session:end {str(ended)[:160]}")
                return
            await tp.wait_event("session:end", 30)

    async def guarded(tp: SioConn) -> None:
        # A lane that fails (a timeout on an overloaded node) is counted, not fatal.
        try:
            await lane(tp)
        except Exception as exc:
            errors.append(f"lane stopped: {type(exc).__name__} {str(exc)[:120]}")

    try:
        await asyncio.gather(*(guarded(tp) for tp in taxpayers))
    finally:
        await gather_limited([c.close() for c in [*agents, *taxpayers]], 256)
    rates = []
    for i in range(windows):
        a = t_begin + 1.0 + i * duration
        rates.append(sum(a <= t < a + duration for t in done) / duration)
    after = [await queue_counters(http, url) for url in nodes]
    tx = sum(a["transactions"] - b["transactions"] for a, b in zip(after, before, strict=True))
    conflicts = sum(a["conflicts"] - b["conflicts"] for a, b in zip(after, before, strict=True))
    return {
        "lanes": len(taxpayers),
        "setups_per_s": statistics.median(rates) if done else 0.0,
        "window_rates": [round(r, 1) for r in rates],
        "completed": len(done),
        "latency_p50_ms": (pct(latencies, 0.5) or 0) * 1e3,
        "latency_p99_ms": (pct(latencies, 0.99) or 0) * 1e3,
        "queue_transactions_per_setup": round(tx / len(done), 1) if done else None,
        "queue_conflicts_per_setup": round(conflicts / len(done), 2) if done else None,
        "errors": Counter(errors).most_common(5),
        "accept_failures": Counter(str(f)[:200] for f in failures).most_common(5),
    }


# ---- profile ----------------------------------------------------------------------------

COMPONENTS = (
    ("signaling/hub.py", "vtax: signaling/hub.py"),
    ("signaling/sessions.py", "vtax: signaling/sessions.py"),
    ("vtax/live/", "vtax: vtax/live (store)"),
    ("signaling/", "vtax: other signaling"),
    ("pydantic", "pydantic (schema validation)"),
    ("socketio/", "python-socketio"),
    ("engineio/", "python-engineio"),
    ("aiohttp/", "aiohttp"),
    ("json/", "json (stdlib)"),
    ("asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
    ("logging/", "logging"),
)


_LINE = re.compile(r":\d+\)$")


def component(frame: str) -> str:
    for needle, name in COMPONENTS:
        if needle in frame:
            return name
    return "other: " + frame.split(" (")[0][:60]


def summarize_profile(collapsed: Path, cpu_us_per_msg: float) -> dict[str, Any]:
    """Self and inclusive shares from py-spy's collapsed stacks, in us per relayed message."""
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    comp: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        # "func (path/file.py:LINE)" -> "func (path/file.py)": one row per function.
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        total += count
        leaf = frames[-1]
        self_fn[leaf] += count
        comp[component(leaf)] += count
        for f in set(frames):
            incl_fn[f] += count

    def rows(counter: Counter[str], k: int) -> list[dict[str, Any]]:
        return [
            {
                "frame": f,
                "share": round(c / total, 4),
                "us_per_msg": round(c / total * cpu_us_per_msg, 1),
            }
            for f, c in counter.most_common(k)
        ]

    return {
        "samples": total,
        "cpu_us_per_msg": cpu_us_per_msg,
        "self_by_component": rows(comp, 20),
        "self_top": rows(self_fn, 30),
        "inclusive_top": rows(incl_fn, 60),
    }


async def profile_relay(
    http: aiohttp.ClientSession,
    server: Server,
    pairs: list[Pair],
    load: Load,
    seconds: float,
    tmp: Path,
) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    if not Path(pyspy).exists():
        return {"error": "py-spy is not installed (pip install py-spy into the venv)"}
    out = tmp / "relay.collapsed"
    load.rtts, load.running = [], True
    await asyncio.gather(*(p.kick() for p in pairs))
    await asyncio.sleep(0.5)
    c0, r0 = server.cpu(), load.round_trips
    spy = await asyncio.create_subprocess_exec(
        pyspy, "record", "-p", str(server.pid), "-d", str(int(seconds)), "-r", "200",
        "-f", "raw", "-o", str(out), "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await spy.communicate()
    c1, r1 = server.cpu(), load.round_trips
    load.running = False
    await asyncio.sleep(1)
    if not out.exists():
        return {"error": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}
    us = (c1 - c0) * 1e6 / max(1, 2 * (r1 - r0))
    summary = summarize_profile(out, us)
    summary["pairs"] = len(pairs)
    summary["collapsed_file"] = str(out)
    return summary


# ---- orchestration ----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "lscpu": [line for line in lscpu if line.split(":")[0].strip() in
                  ("Architecture", "CPU(s)", "Model name", "Thread(s) per core",
                   "Core(s) per socket", "Hypervisor vendor", "L2 cache", "L3 cache")],
        "python": platform.python_version(),
        "node": node_version(),
        "kernel": platform.release(),
    }  # fmt: skip


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("aiohttp", "python-socketio", "python-engineio", "pydantic"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    out["peer"] = PEER_VERSION
    return out


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def relay_matrix(
    args: argparse.Namespace, tmp: Path, key: str, peer_bin: Path | None, results: dict[str, Any]
) -> None:
    max_pairs = max(args.pairs)
    servers: dict[str, Server] = {}
    loads: dict[str, Load] = {}
    pairs: dict[str, list[Pair]] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            specs = [("a", args.a_root, args.a_env)] if "a" in args.only else []
            specs += args.a_variant
            for label, root, extra in specs:
                folder = tmp / label.replace(":", "-")
                folder.mkdir()
                if extra.get("VTAX_X"):
                    extra = experiment_env(tmp, extra, args.x_site)
                env = vtax_env(folder, key, extra)
                log(f"({label}) creating {max_pairs} agents and registering {max_pairs} people")
                # In a thread: the loop keeps answering the Engine.IO pings of servers set up
                # earlier (a blocked client is dropped after ping_interval + ping_timeout).
                tokens = await asyncio.to_thread(make_accounts, env, root, max_pairs, max_pairs)
                servers[label] = await start_vtax(label, folder, env, root)
                tokens["taxpayers"] = await sign_in(servers[label], tokens["people"])
                loads[label] = Load()
                log(f"({label}) setting up {max_pairs} sessions through the queue")
                t0 = perf()
                pairs[label] = await sio_pairs(
                    http, servers[label], tokens, max_pairs, loads[label], not args.no_ack
                )
                log(f"({label}) {max_pairs} sessions in {perf() - t0:.1f} s")
            if "b" in args.only:
                servers["b"] = await start_bare(tmp)
                loads["b"] = Load()
                pairs["b"] = await ws_pairs(http, servers["b"], max_pairs, loads["b"], False)
            if args.bare_uvloop:
                # The floor on uvloop; --x-site lets a scratch install provide it.
                env = dict(os.environ, PYTHONPATH=args.x_site)
                servers["b:uvloop"] = await start_bare(tmp, ("--uvloop",), env)
                loads["b:uvloop"] = Load()
                pairs["b:uvloop"] = await ws_pairs(
                    http, servers["b:uvloop"], max_pairs, loads["b:uvloop"], False
                )
            if "c" in args.only and peer_bin is not None:
                servers["c"] = await start_peerjs(peer_bin)
                loads["c"] = Load()
                pairs["c"] = await ws_pairs(http, servers["c"], max_pairs, loads["c"], True)
            order = list(servers)
            collected: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(
                lambda: defaultdict(list)
            )
            for n in args.pairs:
                for rep in range(args.repeats):
                    for k in order[rep % len(order) :] + order[: rep % len(order)]:
                        w = await window(
                            servers[k], pairs[k][:n], loads[k], args.duration, args.warmup,
                            args.messages,
                        )  # fmt: skip
                        collected[k][n].append(w)
                        log(
                            f"({k}) {n:>4} pairs rep {rep + 1}: {w['cpu_us_per_msg'] or 0:7.1f} us/msg "
                            f"{w['msg_per_s']:8.0f} msg/s  p50 {w['rtt_p50_ms']:.2f} ms "
                            f"p99 {w['rtt_p99_ms']:.2f} ms  server {w['server_cpu_busy']:.0%} "
                            f"client {w['client_cpu_busy']:.0%}"
                        )
            results["relay"] = {
                k: {str(n): summarize(ws) for n, ws in by_n.items()}
                for k, by_n in collected.items()
            }
            target = args.profile_target
            if args.profile and target in servers:
                n = min(args.profile_pairs, max_pairs)
                log(f"({target}) profiling the relay with py-spy, {n} pairs, {args.profile} s")
                results["profile"] = await profile_relay(
                    http, servers[target], pairs[target][:n], loads[target], args.profile, tmp
                )
                results["profile"]["server"] = target
        finally:
            for ps in pairs.values():
                await gather_limited([c.close() for p in ps for c in (p.caller, p.callee)], 256)
            for s in servers.values():
                s.stop()
            for _label, _root, extra in args.a_variant:
                if extra.get("VTAX_REDIS_PREFIX"):
                    drop_redis_prefix(extra["VTAX_REDIS_PREFIX"])


def experiment_env(tmp: Path, extra: dict[str, str], x_site: str) -> dict[str, str]:
    """Environment that makes the server apply benchmarks/signaling_experiments.py patches
    named in VTAX_X at start-up (through a sitecustomize module)."""
    from signaling_experiments import SITECUSTOMIZE

    site = tmp / "xsite"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    paths = [str(site), extra.get("PYTHONPATH", "")]
    return {
        **extra,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "VTAX_X_PATH": os.pathsep.join(p for p in (str(BENCH), x_site) if p),
    }


def drop_redis_prefix(prefix: str) -> None:
    keys = subprocess.run(["redis-cli", "--scan", "--pattern", prefix + "*"],
                          capture_output=True, text=True, timeout=60).stdout.split()  # fmt: skip
    for i in range(0, len(keys), 500):
        subprocess.run(["redis-cli", "del", *keys[i : i + 500]], capture_output=True, timeout=60)


async def memory_phase(
    args: argparse.Namespace, tmp: Path, key: str, peer_bin: Path | None, results: dict[str, Any]
) -> None:
    n = args.idle
    out: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        if "a" in args.only:
            env = vtax_env(tmp / "mem-a", key, args.a_env)
            (tmp / "mem-a").mkdir()
            people = make_accounts(env, args.a_root, 0, n + 50)["people"]
            server = await start_vtax("vtax-mem", tmp / "mem-a", env, args.a_root)
            try:
                # One person per connection, all signed in before the first is measured.
                tokens = await sign_in(server, people)
                out["a"] = await idle_memory(
                    server, lambda i: SioConn.connect(http, server.url, tokens[i]), n
                )
            finally:
                server.stop()
        port_of = lambda s: s.url.rsplit(":", 1)[1]  # noqa: E731
        if "b" in args.only:
            server = await start_bare(tmp)
            try:
                out["b"] = await idle_memory(
                    server,
                    lambda i: ws_connect(
                        http, f"ws://127.0.0.1:{port_of(server)}/ws?id=m{i}", False
                    ),
                    n,
                )
            finally:
                server.stop()
        if "c" in args.only and peer_bin is not None:
            server = await start_peerjs(peer_bin)
            try:
                out["c"] = await idle_memory(
                    server,
                    lambda i: ws_connect(
                        http,
                        f"ws://127.0.0.1:{port_of(server)}/peerjs?key=peerjs&id=m{i}&token=t",
                        True,
                    ),
                    n,
                )
            finally:
                server.stop()
    for k, v in out.items():
        log(f"({k}) {v['kb_per_connection']} KB per idle connection ({v['alive']} alive)")
    results["memory"] = out


async def setup_phase(
    args: argparse.Namespace, tmp: Path, key: str, results: dict[str, Any]
) -> None:
    k = args.setup_lanes
    out: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        # One node, the embedded default (SQLite, in-memory queue and live store).
        env = vtax_env(tmp / "setup-1", key, args.a_env)
        (tmp / "setup-1").mkdir()
        tokens = make_accounts(env, args.a_root, k, k)
        node = await start_vtax("vtax-setup-1", tmp / "setup-1", env, args.a_root)
        try:
            tokens["taxpayers"] = await sign_in(node, tokens["people"])
            out["one_node_sqlite"] = await setups(
                http, node.url, node.url, tokens["taxpayers"], tokens["agents"],
                args.setup_duration, args.repeats,
            )  # fmt: skip
        finally:
            node.stop()
        log(f"set-ups, one node (SQLite): {out['one_node_sqlite']['setups_per_s']:.1f}/s")
        if not args.skip_two_node:
            out.update(await redis_setups(args, http, tmp, key, k))
    results["setups"] = out


async def redis_setups(
    args: argparse.Namespace, http: aiohttp.ClientSession, tmp: Path, key: str, k: int
) -> dict[str, Any]:
    """Nodes over Redis and a shared PostgreSQL database: one node alone, then two nodes with
    the taxpayers on node A and the agents on node B."""
    out: dict[str, Any] = {}
    db = f"vtax_bench_{uuid.uuid4().hex[:10]}"
    prefix = f"vtaxbench{uuid.uuid4().hex[:8]}:"
    admin = PG_ADMIN
    nodes: list[Server] = []
    try:
        subprocess.run(["psql", admin, "-q", "-c", f'CREATE DATABASE "{db}"'], check=True,
                       capture_output=True, timeout=60)  # fmt: skip
        base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        extra = dict(args.a_env, VTAX_DATABASE_URL=f"{base}/{db}", VTAX_REDIS_URL=REDIS_URL,
                     VTAX_REDIS_PREFIX=prefix)  # fmt: skip
        env_a = vtax_env(tmp / "node-a", key, extra)
        env_b = vtax_env(tmp / "node-b", key, extra)
        tokens = make_accounts(env_a, args.a_root, 2 * k, 2 * k)
        nodes.append(await start_vtax("vtax-node-a", tmp / "node-a", env_a, args.a_root))
        # Signed in at node A; the tokens are good at both nodes (one database, one key).
        tokens["taxpayers"] = await sign_in(nodes[0], tokens["people"])
        try:
            out["one_node_redis_pg"] = await setups(
                http, nodes[0].url, nodes[0].url, tokens["taxpayers"][:k], tokens["agents"][:k],
                args.setup_duration, args.repeats,
            )  # fmt: skip
            log(f"set-ups, one node (Redis+PG): {out['one_node_redis_pg']['setups_per_s']:.1f}/s")
        except Exception as exc:
            out["one_node_redis_pg"] = {"error": repr(exc)[:500]}
        nodes.append(await start_vtax("vtax-node-b", tmp / "node-b", env_b, args.a_root))
        try:
            two = await setups(
                http, nodes[0].url, nodes[1].url, tokens["taxpayers"][k:], tokens["agents"][k:],
                args.setup_duration, args.repeats,
            )  # fmt: skip
            if two["completed"] == 0:
                two["error"] = (
                    "no session started across nodes: a taxpayer on node A never reached an "
                    "agent on node B (the queue is per node: the Redis queue backend is not "
                    "wired into the node yet)"
                )
            out["two_nodes_redis_pg"] = two
            log(
                f"set-ups, two nodes (Redis+PG): {two['setups_per_s']:.1f}/s {two.get('error', '')}"
            )
        except Exception as exc:
            out["two_nodes_redis_pg"] = {"error": repr(exc)[:500]}
    finally:
        for node in nodes:
            node.stop()
        subprocess.run(["psql", admin, "-q", "-c", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'],
                       capture_output=True, timeout=60)  # fmt: skip
        drop_redis_prefix(prefix)
    return out


def print_table(results: dict[str, Any]) -> None:
    names = {"a": "(a) vtax", "b": "(b) bare aiohttp", "c": "(c) PeerJS"}
    print("\nrelay (medians of windows)")
    print(f"{'server':<18}{'pairs':>6}{'us/msg':>9}{'msg/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'srv cpu':>9}{'cli cpu':>9}")  # fmt: skip
    for k, by_n in results.get("relay", {}).items():
        for n, s in by_n.items():
            print(f"{names.get(k, '(' + k + ')'):<18}{n:>6}{s['cpu_us_per_msg']:>9.1f}{s['msg_per_s']:>9.0f}"
                  f"{s['rtt_p50_ms']:>9.2f}{s['rtt_p99_ms']:>9.2f}{s['server_cpu_busy']:>9.0%}"
                  f"{s['client_cpu_busy']:>9.0%}")  # fmt: skip
    for k, m in results.get("memory", {}).items():
        print(f"{names.get(k, k):<18} {m['kb_per_connection']:.1f} KB per idle connection "
              f"({m['connections']} connections, {m['alive']} alive)")  # fmt: skip
    for name, s in results.get("setups", {}).items():
        if "setups_per_s" in s:
            print(
                f"set-ups {name}: {s['setups_per_s']:.1f}/s ({s['lanes']} lanes, p50 "
                f"{s['latency_p50_ms']:.0f} ms, {s.get('queue_transactions_per_setup')} queue "
                f"transactions and {s.get('queue_conflicts_per_setup')} conflicts per set-up)"
                f"{'  ' + s['error'] if s.get('error') else ''}"
            )
        else:
            print(f"set-ups {name}: {s.get('error')}")
    prof = results.get("profile")
    if prof and "self_by_component" in prof:
        print(f"\nprofile of (a), {prof['pairs']} pairs: {prof['cpu_us_per_msg']:.1f} us/msg")
        for row in prof["self_by_component"]:
            print(f"  {row['us_per_msg']:>6.1f} us  {row['share']:>6.1%}  {row['frame']}")


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        "versions": versions(),
        "settings": {
            "pairs": args.pairs, "duration_s": args.duration, "repeats": args.repeats,
            "warmup_s": args.warmup, "messages": args.messages, "idle": args.idle,
            "a_root": str(args.a_root), "a_env": args.a_env,
            "a_variants": [[n, str(r), e] for n, r, e in args.a_variant], "ack": not args.no_ack,
            "client": "one asyncio process on core 1, aiohttp WebSockets; Engine.IO/Socket.IO "
                      "spoken directly (no python-socketio client); one ping in flight per pair; "
                      "rtc:signal sent with an ack id as the pages do",
        },
    }  # fmt: skip
    key = "bench-" + uuid.uuid4().hex + uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="vtax-sigbench-") as tmpname:
        tmp = Path(tmpname)
        peer_bin = None
        if "c" in args.only:
            log(f"installing peer@{PEER_VERSION} into {tmp / 'peerjs'}")
            peer_bin = install_peerjs(tmp)
        if not args.skip_relay:
            await relay_matrix(args, tmp, key, peer_bin, results)
        if not args.skip_memory:
            await memory_phase(args, tmp, key, peer_bin, results)
        if not args.skip_setups and "a" in args.only:
            await setup_phase(args, tmp, key, results)
        if args.keep_profile and (tmp / "relay.collapsed").exists():
            shutil.copy(tmp / "relay.collapsed", args.keep_profile)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="1,50,200", help="concurrent pairs, comma-separated")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per window")
    parser.add_argument("--messages", type=int, default=0, help="end a window after N messages")
    parser.add_argument("--repeats", type=int, default=3, help="windows per server and pairs")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--idle", type=int, default=3000, help="idle connections for memory")
    parser.add_argument("--only", default="a,b,c", help="servers to run: a,b,c")
    parser.add_argument("--setup-lanes", type=int, default=20)
    parser.add_argument("--setup-duration", type=float, default=3.0)
    parser.add_argument("--skip-relay", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-setups", action="store_true")
    parser.add_argument("--skip-two-node", action="store_true")
    parser.add_argument("--profile", type=float, default=0, help="py-spy (a) for S seconds")
    parser.add_argument("--profile-pairs", type=int, default=50)
    parser.add_argument("--keep-profile", type=Path, help="copy py-spy's collapsed stacks here")
    parser.add_argument(
        "--no-ack",
        action="store_true",
        help="(a): send rtc:signal without an ack id (the pages ask for acks)",
    )
    parser.add_argument("--a-root", type=Path, default=ROOT, help="tree to run (a) from")
    parser.add_argument("--a-env", action="append", default=[], metavar="VTAX_X=V",
                        help="extra environment for (a), e.g. PYTHONPATH=/scratch/site")  # fmt: skip
    parser.add_argument(
        "--a-variant",
        action="append",
        default=[],
        metavar="NAME:K=V,...",
        help="another (a) server run side by side, e.g. a scratch copy: "
        "'uv:VTAX_X=uvloop' (patches of benchmarks/signaling_experiments.py) or "
        "'copy:ROOT=/tmp/copy' (a scratch copy of the tree)",
    )
    parser.add_argument(
        "--x-site",
        default="",
        help="folder with uvloop/orjson for the experiments (pip install --target DIR ...)",
    )
    parser.add_argument(
        "--bare-uvloop",
        action="store_true",
        help="also run the bare relay on uvloop (must be importable)",
    )
    parser.add_argument("--profile-target", default="a", help="server label to profile")
    parser.add_argument("--out", type=Path, help="write the results JSON here")
    parser.add_argument("--keep-logs", type=Path, help="copy the servers' logs here")
    args = parser.parse_args()
    global KEEP_LOGS
    KEEP_LOGS = args.keep_logs
    args.pairs = sorted({int(x) for x in args.pairs.split(",") if x.strip()})
    args.only = {x.strip() for x in args.only.split(",")}
    args.a_env = dict(kv.split("=", 1) for kv in args.a_env)
    args.a_root = args.a_root.resolve()
    variants = []
    for spec in args.a_variant:
        name, _, rest = spec.partition(":")
        extra = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
        root = Path(extra.pop("ROOT", str(args.a_root))).resolve()
        variants.append((f"a:{name}", root, {**args.a_env, **extra}))
    args.a_variant = variants
    os.sched_setaffinity(0, {CLIENT_CORE})
    raise_fd_limit()
    load_before = os.getloadavg()
    results = asyncio.run(amain(args))
    results["machine"]["loadavg_before_after"] = [load_before, os.getloadavg()]
    print_table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
