"""Queue engine benchmarks, in-memory and Redis backends side by side in one run.

    .venv/bin/python benchmarks/queue_dispatch.py [--quick] [--sizes 1000,10000,100000]

1. Dispatch latency: from an agent becoming available (or a ticket joining) to the offer
   handed to the transport (`QueueEvents.offer_new` called), median and p99, at 1,000 /
   10,000 / 100,000 waiting tickets and 100 / 1,000 agents.
2. Cost of position updates per dequeue at 10,000 waiting: the dequeue's own time and the
   messages it sends (none: pushes run on the ticker, a bounded number per round).
3. Throughput of join -> offer -> accept -> end cycles per second on one core.

The process pins itself to one core (Redis, if local, gets the other); Redis runs on
127.0.0.1:6379 under a throw-away key prefix, deleted at the end."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from vtax.queue import AgentState, Offer, QueueEngine, Ticket
from vtax.queue.kv import KV
from vtax.queue.memory import MemoryKV
from vtax.queue.redis_store import RedisKV

REDIS_URL = os.environ.get("VTAX_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class Probe:
    """QueueEvents that timestamps offers."""

    def __init__(self) -> None:
        self.offered_at = 0.0
        self.offers: list[Offer] = []
        self.updates = 0

    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None:
        self.offered_at = time.perf_counter()
        self.offers.append(offer)

    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None:
        return None

    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None:
        self.updates += 1

    async def queue_left(self, ticket: Ticket, reason: str, at: float) -> None:
        return None

    async def agent_status(self, agent: AgentState) -> None:
        return None

    async def queue_stats(self, stats: dict[str, Any]) -> None:
        return None


def ticket(n: int, language: str = "zh-CN", now: float | None = None) -> Ticket:
    return Ticket(
        id=f"t{n}-{uuid.uuid4().hex[:6]}",
        session_id=f"s{n}",
        taxpayer_id=f"tp{n}-{uuid.uuid4().hex[:6]}",
        category="invoices",
        language=language,
        channel="web",
        question="?",
        joined_at=time.time() if now is None else now,
        conn_id=f"c{n}",
    )


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * p), len(ordered) - 1)]


def ms(v: float) -> str:
    return f"{v * 1000:.3f}"


class Bench:
    def __init__(self, name: str, make_kv: Callable[[], KV]) -> None:
        self.name = name
        self.probe = Probe()
        self.engine = QueueEngine(
            self.probe,
            kv=make_kv(),
            categories=["invoices", "registration"],
            wrapup_s=0.0,
            update_interval_s=2.0,
        )
        self.waiting = 0
        self.agents = 0

    async def fill(self, target: int) -> None:
        """Bring the zh-CN invoices line to `target` waiting tickets (no agent takes them)."""
        base = time.time() - 3600
        while self.waiting < target:
            batch = min(500, target - self.waiting)
            await asyncio.gather(
                *(
                    self.engine.join(ticket(self.waiting + i, now=base + self.waiting + i))
                    for i in range(batch)
                )
            )
            self.waiting += batch

    async def staff(self, target: int) -> None:
        """Registered agents (away): they take offers only when a probe makes them available."""
        while self.agents < target:
            n = self.agents
            profile = AgentState(
                f"a{n}", f"a{n}", {"invoices": 3, "registration": 2}, frozenset({"zh-CN"})
            )
            await self.engine.agent_online(profile, f"conn-a{n}")
            await self.engine.set_status(profile.id, "away")
            self.agents += 1

    async def agent_available_latency(self, samples: int) -> list[float]:
        out = []
        for i in range(samples):
            agent_id = f"a{i % self.agents}"
            self.probe.offered_at = 0.0
            t0 = time.perf_counter()
            await self.engine.set_status(agent_id, "available")
            assert self.probe.offered_at, "no offer"
            out.append(self.probe.offered_at - t0)
            await self.engine.set_status(agent_id, "away")  # the ticket goes back, first
        return out

    async def join_latency(self, samples: int) -> list[float]:
        profile = AgentState("en-agent", "en", {"invoices": 3}, frozenset({"en"}))
        await self.engine.agent_online(profile, "conn-en")
        await self.engine.set_status("en-agent", "available")
        out = []
        for i in range(samples):
            t = ticket(10_000_000 + i, language="en")
            self.probe.offered_at = 0.0
            t0 = time.perf_counter()
            await self.engine.join(t)
            assert self.probe.offered_at, "no offer"
            out.append(self.probe.offered_at - t0)
            await self.engine.leave(t.id)
        await self.engine.set_status("en-agent", "offline")
        return out

    async def dequeue_cost(self, samples: int) -> tuple[list[float], int]:
        """Accept the first ticket (a dequeue) and count messages sent during it."""
        out = []
        sent = 0
        for i in range(samples):
            agent_id = f"a{i % self.agents}"
            await self.engine.set_status(agent_id, "available")
            offer = self.probe.offers[-1]
            before = self.probe.updates
            t0 = time.perf_counter()
            await self.engine.accept(agent_id, offer.id)
            out.append(time.perf_counter() - t0)
            sent += self.probe.updates - before
            await self.engine.session_ended(agent_id)
            await self.engine.set_status(agent_id, "away")
            self.waiting -= 1
        return out, sent

    async def push_round(self) -> tuple[int, float]:
        """One ticker round after the interval: tickets due and the time it took."""
        due = sum(1 for _, _ in self.engine._watch_heap)
        t0 = time.perf_counter()
        await self.engine.push_updates(budget=10**9)
        return due, time.perf_counter() - t0

    async def cycles(self, seconds: float) -> float:
        """join -> offer -> accept -> end, one agent, no other tickets in its line."""
        profile = AgentState("cyc", "cyc", {"registration": 3}, frozenset({"zh-CN"}))
        await self.engine.agent_online(profile, "conn-cyc")
        await self.engine.set_status("cyc", "available")
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            t = ticket(20_000_000 + n)
            t.category = "registration"
            await self.engine.join(t)
            await self.engine.accept("cyc", self.probe.offers[-1].id)
            await self.engine.session_ended("cyc")
            n += 1
        return n / (time.perf_counter() - t0)


async def run(sizes: list[int], agents: list[int], samples: int, cycle_s: float) -> None:
    prefix = f"vtax-bench-{uuid.uuid4().hex[:8]}:"
    redis_kv = RedisKV.from_url(REDIS_URL, prefix)
    client = redis_kv.client
    benches = [Bench("memory", MemoryKV), Bench("redis", lambda: redis_kv)]
    rows: list[tuple[str, ...]] = []
    try:
        for size in sizes:
            for bench in benches:
                t0 = time.perf_counter()
                await bench.fill(size)
                print(
                    f"  filled {bench.name} to {size} waiting in {time.perf_counter() - t0:.1f} s"
                )
            for n_agents in agents:
                for bench in benches:
                    await bench.staff(n_agents)
                    avail = await bench.agent_available_latency(samples)
                    join = await bench.join_latency(samples)
                    rows.append(
                        (
                            f"{size:>7}",
                            f"{n_agents:>5}",
                            bench.name,
                            ms(statistics.median(avail)),
                            ms(pct(avail, 0.99)),
                            ms(statistics.median(join)),
                            ms(pct(join, 0.99)),
                        )
                    )
                    print("  ", *rows[-1])
        print()
        print("Dispatch latency (ms): agent available -> offer_new, ticket join -> offer_new")
        print(f"{'waiting':>7} {'agents':>5} backend  avail p50  avail p99  join p50  join p99")
        for r in rows:
            print(f"{r[0]} {r[1]} {r[2]:<8}{r[3]:>10}{r[4]:>11}{r[5]:>10}{r[6]:>10}")

        print("\nPosition updates per dequeue at 10,000 waiting")
        prefix2 = prefix + "b:"
        benches = [Bench("memory", MemoryKV), Bench("redis", lambda: RedisKV(client, prefix2))]
        for bench in benches:
            await bench.fill(10_000)
            await bench.staff(100)
            cost, sent = await bench.dequeue_cost(samples)
            bench.engine._clock = lambda: time.time() + 10  # past the interval: all due
            due, took = await bench.push_round()
            print(
                f"  {bench.name:<7} dequeue p50 {ms(statistics.median(cost))} ms, "
                f"p99 {ms(pct(cost, 0.99))} ms, messages sent by the dequeues: {sent}; "
                f"a push round later ({bench.waiting} waiting): {due} checked in {took * 1000:.0f} ms "
                f"({took / max(due, 1) * 1e6:.1f} us each), {bench.probe.updates} updates"
            )
            bench.engine._clock = time.time

        print("\nThroughput: join -> offer -> accept -> end cycles per second (one core)")
        for bench in benches:
            print(f"  {bench.name:<7} {await bench.cycles(cycle_s):,.0f} /s")
    finally:
        await RedisKV(client, prefix).delete_prefix()  # the second set's prefix is inside it
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--agents", default="100,1000")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--cycle-s", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 only, fewer samples")
    args = parser.parse_args()
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {os.cpu_count() - 1 if os.cpu_count() else 0})
    sizes = [int(s) for s in args.sizes.split(",")]
    samples, cycle_s = args.samples, args.cycle_s
    if args.quick:
        sizes, samples, cycle_s = [s for s in sizes if s <= 10_000], 100, 2.0
    asyncio.run(run(sizes, [int(a) for a in args.agents.split(",")], samples, cycle_s))


if __name__ == "__main__":
    main()
