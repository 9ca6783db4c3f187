"""Timers: offer expiry, wrap-up, cool-down, grace, escalation and maximum wait.

They are members of one sorted set of deadlines (`keys.TIMERS`); every node polls it and claims
due members atomically with a lease (`KV.claim_due`), so each fires once across nodes and one
that failed comes back when its lease expires. Each handler checks the state it acts on, so a
late or repeated firing does nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import ClassVar

from vtax.queue import keys
from vtax.queue.engine.core import EngineCore, _Step, log
from vtax.queue.kv import Tx
from vtax.queue.model import AgentStatus, Ticket

EPSILON = 1e-6


class Timers(EngineCore):
    """Run the due timers."""

    async def next_due(self) -> float | None:
        """When the next timer is due (the simulator's clock jumps there)."""
        first = await self.kv.zrange_withscores(keys.TIMERS, 0, 0)
        return first[0][1] if first else None

    async def fire_due(self, limit: int = 200) -> int:
        """Run the timers due now; return how many were claimed."""
        now = self._clock()
        due = await self.kv.claim_due(keys.TIMERS, now, self.timer_lease_s, limit)
        for member in due:
            kind, _, ident = member.partition(":")
            handler = self._timer_handlers.get(kind)
            try:
                if handler is None:
                    await self.kv.run(partial(self._forget, member=member))
                else:
                    await handler(self, ident)
            except Exception:  # the lease brings it back later
                log.exception("queue timer %s failed", member)
        return len(due)

    @staticmethod
    async def _forget(tx: Tx, *, member: str) -> None:
        tx.zrem(keys.TIMERS, member)

    async def _offer_expired(self, offer_id: str) -> None:
        now = self._clock()

        async def tx_expire(tx: Tx, step: _Step) -> None:
            offer = await self._offer(tx, offer_id)
            tx.zrem(keys.TIMERS, "offer:" + offer_id)
            if offer is None:
                return
            if offer.expires_at > now + EPSILON:  # claimed early: put it back
                tx.zadd(keys.TIMERS, {"offer:" + offer_id: offer.expires_at})
                return
            agent = await self._agent_of(tx, offer.agent_id)
            ticket = await self._ticket(tx, offer.ticket_id)
            after: tuple[AgentStatus, str] = ("available", "")
            if agent is not None:
                agent.missed_offers += 1
                if agent.missed_offers >= self.missed_offers_limit:
                    after = ("away", "missed_offers")
                else:
                    agent.ready_at = now + self.no_answer_delay_s
            self._withdraw(tx, step, offer, ticket, agent, "expired", now, agent_next=after)
            if ticket is not None:
                self._count(tx, ticket.category, now, offers_expired=1)

        await self._do(tx_expire)

    async def _wrapup_over(self, agent_id: str) -> None:
        now = self._clock()

        async def tx_wrapup(tx: Tx, step: _Step) -> None:
            agent = await self._agent_of(tx, agent_id)
            member = "wrapup:" + agent_id
            if agent is None or agent.status != "wrap_up":
                tx.zrem(keys.TIMERS, member)
                return
            due = agent.ended_at + self.wrapup_s
            if due > now + EPSILON:
                tx.zadd(keys.TIMERS, {member: due})
                return
            tx.zrem(keys.TIMERS, member)
            self._record_handle(tx, agent, now)
            self._set_status(tx, step, agent, "available", "", now)

        await self._do(tx_wrapup)

    async def _cooled_down(self, agent_id: str) -> None:
        now = self._clock()

        async def tx_ready(tx: Tx, step: _Step) -> None:
            agent = await self._agent_of(tx, agent_id)
            member = "ready:" + agent_id
            if agent is None or agent.status != "available":
                tx.zrem(keys.TIMERS, member)
                return
            if agent.ready_at > now + EPSILON:
                tx.zadd(keys.TIMERS, {member: agent.ready_at})
                return
            agent.ready_at = 0.0
            self._set_status(tx, step, agent, "available", agent.reason, now, notify=False)

        await self._do(tx_ready)

    async def _grace_over(self, ticket_id: str) -> None:
        def still_dropped(ticket: Ticket, now: float) -> bool:
            return (
                not ticket.held  # a callback keeps the place while the taxpayer is away
                and ticket.dropped_at is not None
                and now >= ticket.dropped_at + self.grace_s - EPSILON
            )

        removed = await self._remove(ticket_id, None, "disconnected", check=still_dropped)
        if removed is None:
            await self._settle_timer(
                "grace:" + ticket_id,
                ticket_id,
                lambda t: t.dropped_at + self.grace_s if t.dropped_at is not None else None,
            )

    async def _max_wait_over(self, ticket_id: str) -> None:
        def too_long(ticket: Ticket, now: float) -> bool:
            limit = self._config(ticket).max_wait_s
            return (
                limit is not None
                and ticket.offer_id is None
                and now >= ticket.joined_at + limit - EPSILON
            )

        removed = await self._remove(ticket_id, None, "timeout", check=too_long)
        if removed is None:
            now = self._clock()

            def due(t: Ticket) -> float | None:
                limit = self._config(t).max_wait_s
                if limit is None:
                    return None
                # Under offer at the limit: let the offer play out, then look again.
                return max(t.joined_at + limit, now + self.offer_timeout_s if t.offer_id else 0)

            await self._settle_timer("maxwait:" + ticket_id, ticket_id, due)

    async def _settle_timer(
        self, member: str, ticket_id: str, due: Callable[[Ticket], float | None]
    ) -> None:
        """After a timer found nothing to do: drop it, or put it back at its true time."""

        async def tx_settle(tx: Tx) -> None:
            ticket = await self._ticket(tx, ticket_id)
            when = due(ticket) if ticket is not None else None
            if when is None:
                tx.zrem(keys.TIMERS, member)
            else:
                tx.zadd(keys.TIMERS, {member: when})

        await self.kv.run(tx_settle)

    async def _escalate(self, ticket_id: str) -> None:
        now = self._clock()

        async def tx_escalate(tx: Tx, step: _Step) -> None:
            ticket = await self._ticket(tx, ticket_id)
            member = "escalate:" + ticket_id
            if ticket is None:
                tx.zrem(keys.TIMERS, member)
                return
            following = self._config(ticket).next_step_at(now - ticket.joined_at + EPSILON)
            if following is None:
                tx.zrem(keys.TIMERS, member)
            else:
                tx.zadd(keys.TIMERS, {member: ticket.joined_at + following})
            step.tickets.append(ticket_id)

        await self._do(tx_escalate)

    _timer_handlers: ClassVar[dict[str, Callable[[Timers, str], Awaitable[None]]]] = {
        "offer": _offer_expired,
        "wrapup": _wrapup_over,
        "ready": _cooled_down,
        "grace": _grace_over,
        "maxwait": _max_wait_over,
        "escalate": _escalate,
    }
