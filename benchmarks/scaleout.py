"""Scale-out on Redis: server CPU per session set-up and per relayed signal, for 1, 2 and 3 nodes.

For each node count N, N `vtax serve` nodes share one Redis (a fresh key prefix) and one fresh
PostgreSQL database; every node is pinned to core 0 and this load client to core 1 (as
benchmarks/signaling_bench.py does), so the nodes' CPU seconds are comparable across N.

  set-ups  `lanes` taxpayers spread round-robin over the nodes join, wait for both
           `session:start`, hang up, again; as many agents, spread the same way but shifted
           by one node (with N > 1 a session's two sides are on different nodes), accept every
           offer. CPU of all nodes together per completed set-up.
  relay    `pairs` sessions set up the same way, then `rtc:signal` ping-pong inside each (with
           acks, as the pages send). CPU of all nodes together per relayed message.

Agents have staff tokens; the taxpayers are people of the registry, signed in by SMS code over
HTTP at the first node once it runs (the codes read from its log), before any CPU is counted.

Flat CPU per operation as N grows means a node only pays for its own clients' traffic; growth
means every node pays for every message (python-socketio's Redis manager publishes each emit
to every node, which decodes it and looks for the room locally).

    python benchmarks/scaleout.py [--nodes 1,2,3] [--lanes 20] [--pairs 40] [--duration 4]
        [--repeats 3] [--out benchmarks/results/scaleout-DATE.json]
"""

# The orchestrator starts servers with blocking calls on purpose, between windows.
# ruff: noqa: ASYNC221

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from signaling_bench import (  # noqa: E402
    JOIN,
    PG_ADMIN,
    REDIS_URL,
    ROOT,
    Server,
    drop_redis_prefix,
    gather_limited,
    log,
    machine,
    make_accounts,
    make_agents,
    perf,
    sign_in,
    start_vtax,
    summarize,
    vtax_env,
    window,
)
from signaling_clients import Load, Pair, SioConn, sio_frames  # noqa: E402


class Nodes:
    """The N nodes as one server for `window`: CPU is their sum."""

    def __init__(self, nodes: list[Server]) -> None:
        self.nodes = nodes

    def cpu(self) -> float:
        return sum(n.cpu() for n in self.nodes)

    def cpu_exact(self) -> float:
        return sum(n.cpu_exact() for n in self.nodes)

    def url(self, i: int) -> str:
        return self.nodes[i % len(self.nodes)].url


async def spread_agents(
    http: aiohttp.ClientSession, nodes: Nodes, tokens: list[str], failures: list[Any]
) -> list[SioConn]:
    """Agents spread over the nodes, shifted by one from the taxpayers."""
    groups: dict[int, list[str]] = {}
    for i, token in enumerate(tokens):
        groups.setdefault((i + 1) % len(nodes.nodes), []).append(token)
    agents: list[SioConn] = []
    for node, group in groups.items():
        agents += await make_agents(http, nodes.url(node), group, failures)
    return agents


async def setups(
    http: aiohttp.ClientSession,
    nodes: Nodes,
    tp_tokens: list[str],
    ag_tokens: list[str],
    duration: float,
    repeats: int,
) -> dict[str, Any]:
    failures: list[Any] = []
    agents = await spread_agents(http, nodes, ag_tokens, failures)
    started: dict[str, asyncio.Future[float]] = {}
    loop = asyncio.get_running_loop()

    def fut_for(sid: str) -> asyncio.Future[float]:
        if sid not in started:
            started[sid] = loop.create_future()
        return started[sid]

    for ag in agents:
        ag.handlers["session:start"] = lambda p: fut_for(p["session_id"]).set_result(perf())
    taxpayers = await gather_limited(
        [SioConn.connect(http, nodes.url(i), t) for i, t in enumerate(tp_tokens)]
    )
    counts: list[tuple[int, float, float]] = []  # per window: set-ups, CPU s, wall s
    done = 0
    errors: list[str] = []
    running = True
    first = asyncio.Event()  # the first set-up is through

    async def lane(tp: SioConn) -> None:
        nonlocal done
        tp.handlers["queue:update"] = lambda _p: None
        while running:
            joined = await tp.call("queue:join", JOIN)
            if not joined.get("ok"):
                errors.append(str(joined)[:200])
                await asyncio.sleep(0.05)
                continue
            start = await tp.wait_event("session:start", 60)
            sid = start["session_id"]
            await asyncio.wait_for(fut_for(sid), 30)
            started.pop(sid, None)
            done += 1
            first.set()
            ended = await tp.call("session:end", {"session_id": sid})
            if not ended.get("ok"):
                errors.append(f"session:end {str(ended)[:160]}")
                return
            await tp.wait_event("session:end", 30)

    lanes = [asyncio.create_task(lane(tp)) for tp in taxpayers]
    try:
        # Warm-up: the first set-up through (seconds on a loaded machine, else a window may
        # count none), then a second more.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first.wait(), 60)
        await asyncio.sleep(1.0)
        for _ in range(repeats):
            c0, d0, t0 = nodes.cpu_exact(), done, perf()
            await asyncio.sleep(duration)
            counts.append((done - d0, nodes.cpu_exact() - c0, perf() - t0))
    finally:
        running = False
        await asyncio.wait(lanes, timeout=30)
        for task in lanes:
            task.cancel()
        await gather_limited([c.close() for c in [*agents, *taxpayers]], 256)
    per = [cpu * 1e3 / n for n, cpu, _ in counts if n]
    return {
        "lanes": len(taxpayers),
        "cpu_ms_per_setup": statistics.median(per) if per else None,
        "setups_per_s": statistics.median(n / wall for n, _, wall in counts),
        "windows": [
            {"setups": n, "cpu_s": round(c, 3), "wall_s": round(w, 2)} for n, c, w in counts
        ],
        "errors": errors[:5],
        "accept_failures": [str(f)[:200] for f in failures[:5]],
    }


async def pairs_across(
    http: aiohttp.ClientSession, nodes: Nodes, tokens: dict[str, list[str]], n: int, load: Load
) -> list[Pair]:
    failures: list[Any] = []
    agents = await spread_agents(http, nodes, tokens["agents"][:n], failures)
    taxpayers = await gather_limited(
        [SioConn.connect(http, nodes.url(i), t) for i, t in enumerate(tokens["taxpayers"][:n])]
    )
    for tp in taxpayers:
        tp.handlers["queue:update"] = lambda _p: None
    joins = await gather_limited([tp.call("queue:join", JOIN) for tp in taxpayers], 16)
    if bad := [j for j in joins if not j.get("ok")]:
        raise RuntimeError(f"queue:join failed: {bad[:3]}")
    tp_starts = await asyncio.gather(*(tp.wait_event("session:start", 120) for tp in taxpayers))
    ag_starts = await asyncio.gather(*(ag.wait_event("session:start", 120) for ag in agents))
    if failures:
        raise RuntimeError(f"offer:accept failed: {failures[:3]}")
    by_session = {s["session_id"]: ag for s, ag in zip(ag_starts, agents, strict=True)}
    await asyncio.sleep(0.5)
    out = []
    for start, tp in zip(tp_starts, taxpayers, strict=True):
        ping, pong = sio_frames(start["session_id"], True)
        out.append(Pair(load, tp, by_session[start["session_id"]], ping, pong, sio=True))
    return out


async def run_n(args: argparse.Namespace, http: aiohttp.ClientSession, n: int, tmp: Path) -> dict:
    db = f"vtax_bench_{uuid.uuid4().hex[:10]}"
    prefix = f"vtaxbench{uuid.uuid4().hex[:8]}:"
    key = secrets.token_urlsafe(32)
    servers: list[Server] = []
    subprocess.run(["psql", PG_ADMIN, "-q", "-c", f'CREATE DATABASE "{db}"'], check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        extra = {"VTAX_DATABASE_URL": f"{base}/{db}", "VTAX_REDIS_URL": REDIS_URL,
                 "VTAX_REDIS_PREFIX": prefix}  # fmt: skip
        envs = [vtax_env(tmp / f"n{n}-node{i}", key, extra) for i in range(n)]
        need = args.lanes + args.pairs
        tokens = make_accounts(envs[0], ROOT, need, need)
        for i, env in enumerate(envs):
            servers.append(await start_vtax(f"node{i}", tmp / f"n{n}-node{i}", env, ROOT))
        # The taxpayers sign in by SMS code at the first node (one database and key: their
        # tokens are good at every node), right before they connect.
        tokens["taxpayers"] = await sign_in(servers[0], tokens["people"])
        nodes = Nodes(servers)
        result: dict[str, Any] = {"nodes": n}
        # What the nodes burn doing nothing (heartbeats, queue ticks, statistics pushes, the
        # pub/sub listener), charged to no operation: measured first, subtracted below.
        await asyncio.sleep(2.0)
        c0, t0 = nodes.cpu_exact(), perf()
        await asyncio.sleep(args.duration)
        idle = (nodes.cpu_exact() - c0) / (perf() - t0)
        result["idle_cpu_per_s"] = idle
        result["setups"] = await setups(
            http, nodes, tokens["taxpayers"][: args.lanes], tokens["agents"][: args.lanes],
            args.duration, args.repeats,
        )  # fmt: skip
        net = [
            (w["cpu_s"] - idle * w["wall_s"]) * 1e3 / w["setups"]
            for w in result["setups"]["windows"]
            if w["setups"]
        ]
        result["setups"]["net_cpu_ms_per_setup"] = statistics.median(net) if net else None
        log(f"{n} node(s): {result['setups']['cpu_ms_per_setup']} ms CPU per set-up")
        load = Load()
        rest = {k: v[args.lanes :] for k, v in tokens.items()}
        pairs = await pairs_across(http, nodes, rest, args.pairs, load)
        windows = [
            await window(nodes, pairs, load, args.duration, 0.5, 0)  # type: ignore[arg-type]
            for _ in range(args.repeats)
        ]
        result["relay"] = summarize(windows)
        net_relay = [
            (w["cpu_us_per_msg_schedstat"] * w["messages"] / 1e6 - idle * w["seconds"])
            * 1e6
            / w["messages"]
            for w in windows
            if w["messages"] and w["cpu_us_per_msg_schedstat"] is not None
        ]
        result["relay"]["net_cpu_us_per_msg"] = statistics.median(net_relay) if net_relay else None
        log(f"{n} node(s): {result['relay']['cpu_us_per_msg_schedstat']} us CPU per signal")
        await gather_limited([c.close() for p in pairs for c in (p.caller, p.callee)], 256)
        return result
    finally:
        for s in servers:
            s.stop()
        subprocess.run(["psql", PG_ADMIN, "-q", "-c", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'],
                       capture_output=True, timeout=60)  # fmt: skip
        drop_redis_prefix(prefix)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(sys.argv),
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="vtax-scaleout-") as tmp:
        async with aiohttp.ClientSession() as http:
            for n in args.nodes:
                out["runs"].append(await run_n(args, http, n, Path(tmp)))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    p.add_argument("--lanes", type=int, default=20)
    p.add_argument("--pairs", type=int, default=40)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    import os

    os.sched_setaffinity(0, {1})  # the load client on core 1, the nodes on core 0
    result = asyncio.run(amain(args))
    print(
        f"{'nodes':>5} {'idle CPU':>9} {'ms/set-up':>10} {'net ms':>7} {'set-ups/s':>10} "
        f"{'us/signal':>10} {'net us':>7} {'msg/s':>8}"
    )
    for r in result["runs"]:
        s, rl = r["setups"], r["relay"]
        print(
            f"{r['nodes']:>5} {r['idle_cpu_per_s']:>9.3f} {s['cpu_ms_per_setup'] or 0:>10.1f} "
            f"{s['net_cpu_ms_per_setup'] or 0:>7.1f} {s['setups_per_s']:>10.1f} "
            f"{rl['cpu_us_per_msg_schedstat'] or 0:>10.1f} {rl['net_cpu_us_per_msg'] or 0:>7.1f} "
            f"{rl['msg_per_s'] or 0:>8.0f}"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
