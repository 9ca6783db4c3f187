"""The dispatcher: queues tickets, makes offers, times them out, pushes positions.

State lives in a backend (`kv.KV`: in memory, or Redis shared by many nodes). Every change
is one transaction over it, so two nodes never offer one ticket twice or one agent two
tickets. Which pair to make is decided by the pure functions of `policy` from a few candidates
(the head of each ready line, the best agent of each pool), never by scanning the queue.
Notifications are collected while a transaction runs and sent after it committed.

Timers (offer expiry, wrap-up, cool-down, grace, escalation, maximum wait) are members of
one sorted set of deadlines; every node polls it and claims due members atomically, so each
fires once across nodes. Each handler checks the state it acts on, so a late or repeated
firing does nothing.

The package follows the engine's seams: `core` (settings, state, the transaction helpers),
then one mixin per section: `taxpayers`, `agents`, `dispatch`, `timers`, `positions` (and
estimated waits), `stats` (live statistics). `QueueEngine` puts them together with the
background ticker."""

from __future__ import annotations

import asyncio

from vtax.queue.engine.agents import Agents
from vtax.queue.engine.core import Clock, EngineCore, QueueEvents, QueueRefusal, log
from vtax.queue.engine.dispatch import Dispatch
from vtax.queue.engine.positions import Positions
from vtax.queue.engine.stats import LiveStats
from vtax.queue.engine.taxpayers import Taxpayers
from vtax.queue.engine.timers import Timers
from vtax.queue.model import LEVELS, Ticket

__all__ = ["Clock", "EngineCore", "QueueEngine", "QueueEvents", "QueueRefusal"]


class QueueEngine(Taxpayers, Agents, Dispatch, Timers, Positions, LiveStats):
    """The queue engine: every section over one core, and the ticker that drives timers,
    position pushes and the statistics push."""

    def start(self) -> None:
        """Start the background ticker (timers, position pushes, statistics)."""
        if self._runner is None:
            self._closing = False
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop the ticker and close the backend. A cancellation can be swallowed on its way
        (a client library turning it into a timeout error), so the ticker also stops at a flag
        and the cancel is repeated until it has."""
        self._closing = True
        runner, self._runner = self._runner, None
        if runner is not None:
            while not runner.done():
                runner.cancel()
                await asyncio.wait({runner}, timeout=1.0)
            if not runner.cancelled() and runner.exception() is not None:
                log.warning("queue ticker ended with %r", runner.exception())
        await self.kv.aclose()

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the ticker must outlive one bad round (e.g. Redis restarting)
                if self._closing:
                    return
                log.exception("queue tick failed")
            await asyncio.sleep(self.tick_s)

    async def tick(self) -> None:
        """One round of background work: due timers, position pushes, the statistics push."""
        await self.fire_due()
        await self.push_updates()
        now = self._clock()
        if now >= self._next_stats:
            self._next_stats = now + self.stats_interval_s
            slot = int(now / self.stats_interval_s)
            if await self.kv.claim_once(f"stats:{slot}", self.stats_interval_s * 2):
                await self._events.queue_stats(await self.live_stats())

    @property
    def tickets(self) -> dict[str, Ticket]:
        """Waiting tickets whose taxpayer is connected to this node."""
        return {tid: w.ticket for tid, w in self._watches.items()}


# Every proficiency level has a pool; keep the constant close to its use for readers.
assert LEVELS == (1, 2, 3, 4, 5)
