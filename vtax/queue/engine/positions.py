"""Positions and estimated waits: what a taxpayer is told, and the `queue:update` pushes to the
taxpayers connected to this node."""

from __future__ import annotations

import heapq

from vtax.errors import DomainError
from vtax.queue import keys, policy
from vtax.queue.engine.core import EngineCore, _Watch, log
from vtax.queue.model import AGENT_STATUSES, Ticket

HANDLE_PRIOR = 3  # the default handle time counts as this many observations


class Positions(EngineCore):
    """Positions, estimated waits and their pushes."""

    async def _counts(self, category: str, language: str) -> dict[str, int]:
        raw = await self.kv.hgetall(keys.staffing(category, language))
        return {s: int(raw.get(s) or 0) for s in AGENT_STATUSES if s != "offline"}

    async def handle_time(self, category: str) -> float:
        """Recent average handle time of a queue: the last two hours, with the configured
        default counting as a few observations so that a quiet hour does not swing it."""
        hour = int(self._clock() // 3600)
        rows = await self.kv.hgetall_many(
            [keys.handle_times(category, hour), keys.handle_times(category, hour - 1)]
        )
        total = sum(float(r.get("sum") or 0) for r in rows)
        n = sum(int(r.get("n") or 0) for r in rows)
        return (total + HANDLE_PRIOR * self.handle_s) / (n + HANDLE_PRIOR)

    async def _eta(
        self,
        ticket: Ticket,
        position: int,
        counts: dict[str, int],
        aht: float | None = None,
    ) -> float:
        staffed = sum(v for s, v in counts.items() if s != "away")
        return policy.estimated_wait_s(
            position,
            staffed,
            counts.get("available", 0),
            aht if aht is not None else await self.handle_time(ticket.category),
            reserved_eligible=counts.get("reserved", 0),
            offered=ticket.offer_id is not None,
        )

    async def estimate(self, ticket_id: str) -> tuple[int, float]:
        """The ticket's 1-based position in its line and its estimated wait."""
        ticket = await self._ticket(self.kv, ticket_id)
        if ticket is None:
            raise DomainError("not_found", "no such waiting ticket")
        (rank,) = await self.kv.zranks([(keys.line(ticket.category, ticket.language), ticket.id)])
        position = (rank or 0) + 1
        counts = await self._counts(ticket.category, ticket.language)
        return position, await self._eta(ticket, position, counts)

    def _watch(self, ticket: Ticket, last: tuple[int, float]) -> None:
        next_at = self._clock() + self.update_interval_s
        self._watches[ticket.id] = _Watch(ticket, ticket.conn_id, last, next_at)
        heapq.heappush(self._watch_heap, (next_at, ticket.id))

    def _unwatch(self, ticket_id: str) -> None:
        self._watches.pop(ticket_id, None)

    async def push_updates(self, budget: int = 2000) -> int:
        """Send `queue:update` to the taxpayers on this node whose position or estimate
        changed, each at most once per `update_interval_s`. The work per round is the number
        of tickets due, whatever the number waiting; a dequeue itself costs nothing here."""
        now = self._clock()
        due: list[_Watch] = []
        while self._watch_heap and self._watch_heap[0][0] <= now and len(due) < budget:
            _, tid = heapq.heappop(self._watch_heap)
            watch = self._watches.get(tid)
            if watch is not None and watch.next_at <= now:
                due.append(watch)
        if not due:
            return 0
        rows = await self.kv.hgetall_many([keys.ticket(w.ticket.id) for w in due])
        ranks = await self.kv.zranks(
            [(keys.line(w.ticket.category, w.ticket.language), w.ticket.id) for w in due]
        )
        counts: dict[tuple[str, str], dict[str, int]] = {}
        ahts: dict[str, float] = {}
        sent = 0
        for watch, row, rank in zip(due, rows, ranks, strict=True):
            ticket = Ticket.from_fields(row) if row else None
            if ticket is None or rank is None or ticket.conn_id != watch.conn_id:
                self._watches.pop(watch.ticket.id, None)  # served, gone, or moved elsewhere
                continue
            group = (ticket.category, ticket.language)
            if group not in counts:
                counts[group] = await self._counts(*group)
            if ticket.category not in ahts:
                ahts[ticket.category] = await self.handle_time(ticket.category)
            update = (
                rank + 1,
                await self._eta(ticket, rank + 1, counts[group], ahts[ticket.category]),
            )
            watch.ticket = ticket
            if update != watch.last:
                watch.last = update
                sent += 1
                try:
                    await self._events.queue_update(ticket, *update)
                except Exception:
                    log.exception("queue update failed")
            watch.next_at = now + self.update_interval_s
            heapq.heappush(self._watch_heap, (watch.next_at, ticket.id))
        return sent
