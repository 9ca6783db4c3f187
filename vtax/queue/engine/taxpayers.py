"""Taxpayers: join (or the refusal), rejoin after a drop, leave, the drop itself."""

from __future__ import annotations

from collections.abc import Callable

from vtax.errors import DomainError
from vtax.queue import keys
from vtax.queue.engine.core import EngineCore, QueueRefusal, _Step
from vtax.queue.kv import Tx
from vtax.queue.model import Ticket


class Taxpayers(EngineCore):
    """The taxpayer's side of the queue."""

    async def _refusal(self, ticket: Ticket, now: float) -> QueueRefusal | None:
        config = self._config(ticket)
        if config.hours is not None and not config.hours.is_open(now):
            nxt = config.hours.next_opening(now)
            when = f"; it opens at {nxt.isoformat()}" if nxt else ""
            return QueueRefusal("queue_closed", f"the {ticket.category} queue is closed{when}", nxt)
        if ticket.booked_on_time or (config.max_wait_s is None and config.join_when_unstaffed):
            return None  # an on-time appointment's seat was planned: no wait/length refusal
        counts = await self._counts(ticket.category, ticket.language)
        staffed = sum(counts.values())
        if not config.join_when_unstaffed and staffed == 0:
            return QueueRefusal(
                "no_agents", f"no agent for {ticket.category} in {ticket.language} is on duty"
            )
        if config.max_wait_s is not None:
            ahead = await self.kv.zcount(
                keys.line(ticket.category, ticket.language), float("-inf"), self._line_score(ticket)
            )
            eta = await self._eta(ticket, ahead + 1, counts)
            if eta > config.max_wait_s:
                return QueueRefusal(
                    "wait_too_long",
                    f"the estimated wait ({eta:.0f} s) is longer than this queue serves "
                    f"({config.max_wait_s:.0f} s); please try again later",
                )
        return None

    async def join(self, ticket: Ticket) -> tuple[int, float]:
        """Queue a ticket (its `conn_id` names the taxpayer's connection); return its position
        and estimated wait. Refusals raise `QueueRefusal` (or `DomainError already_queued`)."""
        now = self._clock()
        config = self._config(ticket)
        refusal = await self._refusal(ticket, now)
        if refusal is not None:
            await self.kv.run(lambda tx: self._refused(tx, ticket.category, now))
            raise refusal

        async def tx_join(tx: Tx, step: _Step) -> None:
            await tx.watch(keys.taxpayer(ticket.taxpayer_id))
            held = await tx.get(keys.taxpayer(ticket.taxpayer_id))
            if held and await tx.hgetall(keys.ticket(held)):
                raise DomainError("already_queued", "you are already waiting in the queue")
            if config.max_length is not None and not ticket.booked_on_time:
                if await tx.zcard(keys.waiting(ticket.category)) >= config.max_length:
                    raise QueueRefusal(
                        "queue_full",
                        f"the {ticket.category} queue is full ({config.max_length} waiting); "
                        "please try again later",
                    )
            tx.hset(keys.ticket(ticket.id), ticket.to_fields())
            tx.set(keys.taxpayer(ticket.taxpayer_id), ticket.id)
            tx.zadd(
                keys.line(ticket.category, ticket.language), {ticket.id: self._line_score(ticket)}
            )
            tx.zadd(keys.waiting(ticket.category), {ticket.id: ticket.joined_at})
            timers: dict[str, float] = {}
            following = config.next_step_at(0.0)
            if following is not None:
                timers["escalate:" + ticket.id] = ticket.joined_at + following
            if config.max_wait_s is not None:
                timers["maxwait:" + ticket.id] = ticket.joined_at + config.max_wait_s
            if timers:
                tx.zadd(keys.TIMERS, timers)
            self._count(tx, ticket.category, now, joined=1)
            if ticket.conn_id is not None:
                self._make_ready(tx, step, ticket)

        try:
            await self._do(tx_join)
        except QueueRefusal:
            await self.kv.run(lambda tx: self._refused(tx, ticket.category, now))
            raise
        return await self._estimate_and_watch(ticket)

    async def _estimate_and_watch(self, ticket: Ticket) -> tuple[int, float]:
        try:
            position, eta = await self.estimate(ticket.id)
        except DomainError:
            return 1, 0.0  # served (or gone) before we could look: no wait
        self._watch(ticket, (position, eta))
        return position, eta

    async def _refused(self, tx: Tx, category: str, now: float) -> None:
        self._count(tx, category, now, refused=1)

    async def rejoin(
        self, ticket_id: str, taxpayer_id: str, conn_id: str
    ) -> tuple[Ticket, int, float]:
        """A taxpayer back (after a drop, or on a new connection) takes up their ticket in the
        same place."""

        async def tx_rejoin(tx: Tx, step: _Step) -> Ticket:
            ticket = await self._ticket(tx, ticket_id)
            if ticket is None or ticket.taxpayer_id != taxpayer_id:
                raise DomainError("not_found", "no such waiting ticket; it may have expired")
            was_dropped = ticket.conn_id is None
            ticket.conn_id, ticket.dropped_at = conn_id, None
            tx.hset(keys.ticket(ticket.id), {"conn_id": conn_id, "dropped_at": ""})
            if was_dropped:
                tx.zrem(keys.TIMERS, "grace:" + ticket.id)
                if ticket.offer_id is None:
                    self._make_ready(tx, step, ticket)
            return ticket

        ticket = await self._do(tx_rejoin)
        position, eta = await self._estimate_and_watch(ticket)
        return ticket, position, eta

    async def leave(self, ticket_id: str, taxpayer_id: str | None = None) -> Ticket:
        """The taxpayer leaves: abandoned at once; an open offer is withdrawn."""
        ticket = await self._remove(ticket_id, taxpayer_id, "left")
        if ticket is None:
            raise DomainError("not_found", "no such waiting ticket")
        return ticket

    async def _remove(
        self,
        ticket_id: str,
        taxpayer_id: str | None,
        reason: str,
        check: Callable[[Ticket, float], bool] | None = None,
    ) -> Ticket | None:
        """Take a waiting ticket out as abandoned (`left`, `disconnected`) or `timeout`."""
        now = self._clock()

        async def tx_remove(tx: Tx, step: _Step) -> Ticket | None:
            ticket = await self._ticket(tx, ticket_id)
            if ticket is None or (taxpayer_id is not None and ticket.taxpayer_id != taxpayer_id):
                return None
            if check is not None and not check(ticket, now):
                return None
            ticket.conn_id = None  # gone: withdrawing its offer must not make it ready
            await self._withdraw_by_id(tx, step, ticket.offer_id, "ticket_left", now, ticket=ticket)
            self._drop_ticket(tx, ticket)
            waited = max(now - ticket.joined_at, 0.0)  # a booking before its T
            sl = self._config(ticket).service_level_s
            if reason == "timeout":
                self._count(tx, ticket.category, now, timed_out=1)
            else:
                self._count(
                    tx,
                    ticket.category,
                    now,
                    abandoned=1,
                    abandoned_in_sl=int(waited <= sl),
                    abandoned_wait_sum=waited,
                )
            step.notes.append(lambda: self._events.queue_left(ticket, reason, now))
            return ticket

        ticket: Ticket | None = await self._do(tx_remove)
        if ticket is not None:
            self._unwatch(ticket.id)
        return ticket

    async def taxpayer_dropped(self, taxpayer_id: str, conn_id: str) -> None:
        """The connection that holds a waiting ticket is gone: keep the place for the grace
        period (no offers meanwhile); then it is abandoned."""
        now = self._clock()

        async def tx_drop(tx: Tx, step: _Step) -> Ticket | None:
            held = await tx.get(keys.taxpayer(taxpayer_id))
            ticket = await self._ticket(tx, held) if held else None
            if ticket is None or ticket.conn_id != conn_id:
                return None  # another connection holds it now, or nothing waits
            ticket.conn_id, ticket.dropped_at = None, now
            tx.hset(keys.ticket(ticket.id), {"conn_id": "", "dropped_at": repr(now)})
            self._unready(tx, ticket)
            await self._withdraw_by_id(
                tx, step, ticket.offer_id, "taxpayer_dropped", now, ticket=ticket
            )
            if not ticket.held:  # a callback keeps the place: no grace runs out
                tx.zadd(keys.TIMERS, {"grace:" + ticket.id: now + self.grace_s})
            return ticket

        ticket = await self._do(tx_drop)
        if ticket is not None:
            self._unwatch(ticket.id)
            if self.grace_s <= 0 and not ticket.held:
                await self._grace_over(ticket.id)

    async def hold(self, ticket_id: str, taxpayer_id: str, on: bool) -> Ticket:
        """A callback keeps the ticket's place while the taxpayer is away (`on`): its wait
        keeps counting, it is not offered, a dropped connection does not abandon it. Off (the
        taxpayer is back, or the callback ended): offered again while its connection is here;
        without one, the connection grace starts now."""
        now = self._clock()

        async def tx_hold(tx: Tx, step: _Step) -> Ticket:
            ticket = await self._ticket(tx, ticket_id)
            if ticket is None or ticket.taxpayer_id != taxpayer_id:
                raise DomainError("not_found", "no such waiting ticket")
            if ticket.held == on:
                return ticket
            ticket.held = on
            tx.hset(keys.ticket(ticket.id), {"held": "1" if on else ""})
            if on:
                self._unready(tx, ticket)
                await self._withdraw_by_id(
                    tx, step, ticket.offer_id, "taxpayer_dropped", now, ticket=ticket
                )
                tx.zrem(keys.TIMERS, "grace:" + ticket.id)
            elif ticket.conn_id is not None:
                if ticket.offer_id is None:
                    self._make_ready(tx, step, ticket)
            else:
                ticket.dropped_at = now
                tx.hset(keys.ticket(ticket.id), {"dropped_at": repr(now)})
                tx.zadd(keys.TIMERS, {"grace:" + ticket.id: now + self.grace_s})
            return ticket

        ticket: Ticket = await self._do(tx_hold)
        return ticket

    async def waiting_ticket(self, taxpayer_id: str) -> Ticket | None:
        held = await self.kv.get(keys.taxpayer(taxpayer_id))
        return await self._ticket(self.kv, held) if held else None

    async def ticket(self, ticket_id: str) -> Ticket | None:
        return await self._ticket(self.kv, ticket_id)
