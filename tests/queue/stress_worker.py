"""One process of the multi-process stress test (tests/queue/test_stress.py).

    python -m tests.queue.stress_worker PREFIX WORKER WORKERS TICKETS SEED OUT.json

Runs a queue engine on the shared Redis prefix, joins its share of tickets, and acts for
whichever agent an offer made here goes to: accept (then hang up), reject, or let it expire.
Some taxpayers leave, some drop for good, some drop and come back. When every worker has
joined everything and nothing waits, it writes what it saw: the tickets it joined, served and
saw leave."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from typing import Any

from vtax.errors import DomainError
from vtax.queue import AgentState, Offer, QueueEngine, Ticket, keys
from vtax.queue.redis_store import RedisKV

REDIS_URL = "redis://127.0.0.1:6379/0"
AGENTS_PER_WORKER = 20


class Worker:
    def __init__(self, prefix: str, worker: int, tickets: int, seed: int) -> None:
        self.rng = random.Random(seed * 100 + worker)
        self.worker, self.tickets = worker, tickets
        self.kv = RedisKV.from_url(REDIS_URL, prefix)
        self.client = self.kv.client
        self.engine = QueueEngine(
            self,
            kv=self.kv,
            categories=["invoices"],
            offer_timeout_s=0.1,
            wrapup_s=0.0,
            grace_s=0.2,
            missed_offers_limit=3,
            reject_delay_s=0.02,
            no_answer_delay_s=0.02,
            tick_s=0.01,
            timer_lease_s=2.0,
        )
        self.joined: list[str] = []
        self.served: list[str] = []
        self.left: list[str] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # QueueEvents
    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None:
        roll = self.rng.random()
        if roll < 0.7:
            self.spawn(self.accept(agent.id, offer.id))
        elif roll < 0.85:
            self.spawn(self.reject(agent.id, offer.id))
        # else: let it expire

    async def accept(self, agent_id: str, offer_id: str) -> None:
        await asyncio.sleep(self.rng.uniform(0, 0.01))
        try:
            ticket = await self.engine.accept(agent_id, offer_id)
        except DomainError:
            return
        self.served.append(ticket.id)
        await asyncio.sleep(self.rng.uniform(0, 0.005))
        await self.engine.session_ended(agent_id)

    async def reject(self, agent_id: str, offer_id: str) -> None:
        try:
            await self.engine.reject(agent_id, offer_id)
        except DomainError:
            pass

    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None:
        return None

    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None:
        return None

    async def queue_left(self, ticket: Ticket, reason: str, at: float) -> None:
        self.left.append(ticket.id)

    async def agent_status(self, agent: AgentState) -> None:
        if agent.status == "away" and agent.reason == "missed_offers":
            self.spawn(self.back(agent.id))

    async def back(self, agent_id: str) -> None:
        await asyncio.sleep(0.05)
        try:
            await self.engine.set_status(agent_id, "available")
        except DomainError:
            pass

    async def queue_stats(self, stats: dict[str, Any]) -> None:
        return None

    async def taxpayer(self, n: int) -> None:
        tid = f"w{self.worker}-t{n}"
        ticket = Ticket(
            tid, "s" + tid, "tp-" + tid, "invoices", "zh-CN", "web", "?", 0.0, conn_id="c" + tid
        )
        ticket.joined_at = self.engine._clock()
        await self.engine.join(ticket)
        self.joined.append(tid)
        roll = self.rng.random()
        if roll < 0.05:
            await asyncio.sleep(self.rng.uniform(0, 0.3))
            try:
                await self.engine.leave(tid, ticket.taxpayer_id)
            except DomainError:
                pass
        elif roll < 0.10:
            await asyncio.sleep(self.rng.uniform(0, 0.3))
            await self.engine.taxpayer_dropped(ticket.taxpayer_id, ticket.conn_id or "")
            if roll < 0.08:
                await asyncio.sleep(self.rng.uniform(0, 0.15))
                try:
                    await self.engine.rejoin(tid, ticket.taxpayer_id, "again-" + tid)
                except DomainError:
                    pass

    async def run(self) -> dict[str, Any]:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
        for i in range(AGENTS_PER_WORKER):
            agent_id = f"w{self.worker}-a{i}"
            profile = AgentState(agent_id, agent_id, {"invoices": 3}, frozenset({"zh-CN"}))
            await self.engine.agent_online(profile, "conn-" + agent_id)
            await self.engine.set_status(agent_id, "available")
        self.engine.start()
        pending: set[asyncio.Task[Any]] = set()
        for n in range(self.tickets):
            pending.add(asyncio.ensure_future(self.taxpayer(n)))
            if len(pending) >= 40:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*pending)
        await self.client.incr(self.kv.k("stress:done"))
        while True:
            done = int(await self.client.get(self.kv.k("stress:done")) or 0)
            waiting = await self.kv.zcard(keys.waiting("invoices"))
            if done == WORKERS and waiting == 0:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # the last hang-ups
        await asyncio.gather(*self.tasks)
        await self.engine.close()
        return {"joined": self.joined, "served": self.served, "left": self.left}


WORKERS = 3


def dump_tasks() -> None:
    """SIGUSR1: where every task waits (the test asks before it gives up on a worker)."""
    for task in asyncio.all_tasks():
        print("TASK", task.get_name(), file=sys.stderr)
        for frame in task.get_stack(limit=12):
            code = frame.f_code
            print(f"  {code.co_filename}:{frame.f_lineno} {code.co_name}", file=sys.stderr)
    sys.stderr.flush()


def main() -> None:
    global WORKERS
    prefix, worker, workers, tickets, seed, out = sys.argv[1:7]
    WORKERS = int(workers)
    result = asyncio.run(Worker(prefix, int(worker), int(tickets), int(seed)).run())
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
