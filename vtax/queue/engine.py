"""The dispatcher: queues tickets, makes offers, times them out, pushes positions.

State lives in a backend (`kv.KV`: in memory, or Redis shared by many nodes). Every change
is one transaction over it, so two nodes never offer one ticket twice or one agent two
tickets. Which pair to make is decided by the pure functions of `policy` from a few candidates
(the head of each ready line, the best agent of each pool), never by scanning the queue.
Notifications are collected while a transaction runs and sent after it committed.

Timers (offer expiry, wrap-up, cool-down, grace, escalation, maximum wait) are members of
one sorted set of deadlines; every node polls it and claims due members atomically, so each
fires once across nodes. Each handler checks the state it acts on, so a late or repeated
firing does nothing."""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from vtax.errors import DomainError
from vtax.queue import keys, policy
from vtax.queue.kv import KV, Tx
from vtax.queue.memory import MemoryKV
from vtax.queue.model import (
    AGENT_STATUSES,
    LEVELS,
    PRIORITY_LEVELS,
    AgentState,
    AgentStatus,
    Offer,
    Ticket,
)
from vtax.queue.queues import QueueBook, QueueConfig

Clock = Callable[[], float]
log = logging.getLogger(__name__)
STATS_TTL_S = 8 * 86400
EPSILON = 1e-6
HANDLE_PRIOR = 3  # the default handle time counts as this many observations
SPREAD_MAX = 16  # after lost races, a dispatcher picks among at most this many candidates


class QueueEvents(Protocol):
    """What the engine tells the outside world; the signaling layer implements it."""

    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None: ...
    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None: ...
    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None: ...
    async def queue_left(self, ticket: Ticket, reason: str, at: float) -> None: ...
    async def agent_status(self, agent: AgentState) -> None: ...
    async def queue_stats(self, stats: dict[str, Any]) -> None: ...


class QueueRefusal(DomainError):
    """A join the queue cannot serve: closed, full, or the wait would be too long."""

    def __init__(self, code: str, message: str, next_open_at: datetime | None = None) -> None:
        super().__init__(code, message)
        self.next_open_at = next_open_at

    def as_dict(self) -> dict[str, str]:
        out = super().as_dict()
        if self.next_open_at is not None:
            out["next_open_at"] = self.next_open_at.isoformat()
        return out


@dataclass
class _Step:
    """What one operation has to tell and to do once its transaction committed."""

    notes: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    tickets: list[str] = field(default_factory=list)  # to dispatch
    agents: list[str] = field(default_factory=list)  # to dispatch

    def reset(self) -> None:
        self.notes.clear()
        self.tickets.clear()
        self.agents.clear()


@dataclass
class _Watch:
    """A waiting ticket whose taxpayer is connected to this node: we push its position."""

    ticket: Ticket
    conn_id: str | None
    last: tuple[int, float]
    next_at: float


def _agent_pools(agent: AgentState) -> list[str]:
    pools = [
        keys.pool(cat, lang, level)
        for cat, level in agent.skills.items()
        if level >= 1
        for lang in agent.languages
    ]
    return pools + [keys.pool("*", lang, 0) for lang in agent.languages]


def _agent_groups(agent: AgentState) -> list[tuple[str, str]]:
    return [(cat, lang) for cat in agent.skills for lang in agent.languages]


class QueueEngine:
    def __init__(
        self,
        events: QueueEvents,
        *,
        kv: KV | None = None,
        book: QueueBook | None = None,
        categories: Sequence[str] = (),
        offer_timeout_s: float = 15.0,
        wrapup_s: float = 30.0,
        handle_s: float = 300.0,
        grace_s: float = 60.0,
        missed_offers_limit: int = 2,
        reject_delay_s: float = 10.0,
        no_answer_delay_s: float = 10.0,
        update_interval_s: float = 2.0,
        tick_s: float = 0.1,
        stats_interval_s: float = 2.0,
        timer_lease_s: float = 10.0,
        timezone: str = "Asia/Shanghai",
        clock: Clock = time.time,
    ) -> None:
        self._events = events
        self.kv: KV = kv if kv is not None else MemoryKV()
        self.book = book or QueueBook()
        self.categories = sorted(set(categories) | set(self.book.queues))
        self.offer_timeout_s = offer_timeout_s
        self.wrapup_s = wrapup_s
        self.handle_s = handle_s
        self.grace_s = grace_s
        self.missed_offers_limit = missed_offers_limit
        self.reject_delay_s = reject_delay_s
        self.no_answer_delay_s = no_answer_delay_s
        self.update_interval_s = update_interval_s
        self.tick_s = tick_s
        self.stats_interval_s = stats_interval_s
        self.timer_lease_s = timer_lease_s
        self.zone = ZoneInfo(timezone)
        self._clock = clock
        self._rng = random.Random()  # spreads dispatchers that lost a race (policy.spread_*)
        self._watches: dict[str, _Watch] = {}
        self._watch_heap: list[tuple[float, str]] = []
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._next_stats = 0.0

    # ---- lifecycle ---------------------------------------------------------------------

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

    # ---- helpers on transactions -------------------------------------------------------

    def _day(self, now: float) -> str:
        return datetime.fromtimestamp(now, self.zone).date().isoformat()

    def _count(self, tx: Tx, category: str, now: float, **amounts: float) -> None:
        key = keys.stats(category, self._day(now))
        for name, amount in amounts.items():
            if isinstance(amount, int):
                tx.hincrby(key, name, amount)
            else:
                tx.hincrbyfloat(key, name, amount)
        tx.expire(key, STATS_TTL_S)

    @staticmethod
    async def _ticket(tx: Any, ticket_id: str) -> Ticket | None:
        fields = await tx.hgetall(keys.ticket(ticket_id))
        return Ticket.from_fields(fields) if fields else None

    @staticmethod
    async def _agent_of(tx: Any, agent_id: str) -> AgentState | None:
        fields = await tx.hgetall(keys.agent(agent_id))
        return AgentState.from_fields(fields) if fields else None

    @staticmethod
    async def _offer(tx: Any, offer_id: str) -> Offer | None:
        fields = await tx.hgetall(keys.offer(offer_id))
        return Offer.from_fields(fields) if fields else None

    def _config(self, ticket: Ticket) -> QueueConfig:
        return self.book.of(ticket.category)

    def _line_score(self, ticket: Ticket) -> float:
        return policy.ticket_score(ticket.joined_at, ticket.priority, self._config(ticket).aging_s)

    def _pool(self, tx: Tx, agent: AgentState) -> None:
        for cat, level in agent.skills.items():
            if level < 1:
                continue
            score = policy.pool_score(self.book.of(cat).strategy, agent)
            for lang in agent.languages:
                tx.zadd(keys.pool(cat, lang, level), {agent.id: score})
        for lang in agent.languages:
            tx.zadd(keys.pool("*", lang, 0), {agent.id: agent.idle_since})

    @staticmethod
    def _unpool(tx: Tx, agent: AgentState) -> None:
        for key in _agent_pools(agent):
            tx.zrem(key, agent.id)

    @staticmethod
    def _staff(tx: Tx, agent: AgentState, status: str, amount: int) -> None:
        if status == "offline":
            return
        for cat, lang in _agent_groups(agent):
            tx.hincrby(keys.staffing(cat, lang), status, amount)
        for cat in agent.skills:
            tx.hincrby(keys.queue_agents(cat), status, amount)

    def _set_status(
        self,
        tx: Tx,
        step: _Step,
        agent: AgentState,
        status: AgentStatus,
        reason: str,
        now: float,
        notify: bool = True,
    ) -> None:
        """Move an agent to a state: counts, pools, the cool-down timer; write it."""
        old = agent.status
        if old != status:
            self._staff(tx, agent, old, -1)
            self._staff(tx, agent, status, +1)
            if status == "available":
                agent.idle_since = now
        self._unpool(tx, agent)
        tx.zrem(keys.TIMERS, "ready:" + agent.id)
        if status == "available":
            if agent.ready_at <= now:
                self._pool(tx, agent)
                step.agents.append(agent.id)
            else:
                tx.zadd(keys.TIMERS, {"ready:" + agent.id: agent.ready_at})
        agent.status, agent.reason = status, reason
        tx.hset(keys.agent(agent.id), agent.to_fields())
        if notify and (old != status or reason):
            snapshot = AgentState.from_fields(agent.to_fields())
            step.notes.append(lambda: self._events.agent_status(snapshot))

    def _make_ready(self, tx: Tx, step: _Step, ticket: Ticket) -> None:
        tx.zadd(
            keys.ready(ticket.category, ticket.language, ticket.priority),
            {ticket.id: ticket.joined_at},
        )
        step.tickets.append(ticket.id)

    @staticmethod
    def _unready(tx: Tx, ticket: Ticket) -> None:
        tx.zrem(keys.ready(ticket.category, ticket.language, ticket.priority), ticket.id)

    def _drop_ticket(self, tx: Tx, ticket: Ticket) -> None:
        """Take a ticket out of every structure (served or abandoned)."""
        self._unready(tx, ticket)
        tx.zrem(keys.line(ticket.category, ticket.language), ticket.id)
        tx.zrem(keys.waiting(ticket.category), ticket.id)
        tx.zrem(keys.TIMERS, "grace:" + ticket.id, "escalate:" + ticket.id, "maxwait:" + ticket.id)
        tx.delete(keys.ticket(ticket.id), keys.taxpayer(ticket.taxpayer_id))

    def _withdraw(
        self,
        tx: Tx,
        step: _Step,
        offer: Offer,
        ticket: Ticket | None,
        agent: AgentState | None,
        reason: str,
        now: float,
        agent_next: tuple[AgentStatus, str] = ("available", ""),
        notify_agent: bool = True,
    ) -> None:
        """End an open offer without an accept: the ticket is ready again (if its taxpayer is
        connected and it is still waiting), the reserved agent goes to `agent_next`."""
        tx.delete(keys.offer(offer.id))
        tx.zrem(keys.TIMERS, "offer:" + offer.id)
        if ticket is not None and ticket.offer_id == offer.id:
            ticket.offer_id = None
            tx.hset(keys.ticket(ticket.id), {"offer_id": ""})
            if ticket.conn_id is not None:
                self._make_ready(tx, step, ticket)
        if agent is not None and agent.offer_id == offer.id:
            agent.offer_id = None
            if agent.status == "reserved":
                self._set_status(tx, step, agent, agent_next[0], agent_next[1], now)
            else:
                tx.hset(keys.agent(agent.id), {"offer_id": ""})
        if notify_agent:
            step.notes.append(lambda: self._events.offer_revoked(offer.agent_id, offer.id, reason))

    async def _withdraw_by_id(
        self,
        tx: Tx,
        step: _Step,
        offer_id: str | None,
        reason: str,
        now: float,
        *,
        ticket: Ticket | None = None,
        agent: AgentState | None = None,
        **kw: Any,
    ) -> None:
        """Withdraw an offer by id; pass the ticket or agent already loaded in this
        transaction, so that the one instance carries every change."""
        if not offer_id:
            return
        offer = await self._offer(tx, offer_id)
        if offer is None:
            return
        if ticket is None or ticket.id != offer.ticket_id:
            ticket = await self._ticket(tx, offer.ticket_id)
        if agent is None or agent.id != offer.agent_id:
            agent = await self._agent_of(tx, offer.agent_id)
        self._withdraw(tx, step, offer, ticket, agent, reason, now, **kw)

    def _record_handle(self, tx: Tx, agent: AgentState, now: float) -> None:
        """A session and its wrap-up are over: count the handle time for the ETA and AHT."""
        if not agent.answered_at or not agent.ticket_category:
            return
        handled = max(now - agent.answered_at, 0.0)
        key = keys.handle_times(agent.ticket_category, int(now // 3600))
        tx.hincrbyfloat(key, "sum", handled)
        tx.hincrby(key, "n", 1)
        tx.expire(key, 3 * 3600)
        self._count(tx, agent.ticket_category, now, handle_sum=handled, handle_n=1)
        agent.answered_at = 0.0

    async def _commit(self, step: _Step) -> None:
        """Send what a committed transaction has to tell, then make the offers it enabled."""
        for note in step.notes:
            try:
                await note()
            except Exception:  # one client's failure must not stop the others' news
                log.exception("queue notification failed")
        for ticket_id in dict.fromkeys(step.tickets):
            await self.dispatch_ticket(ticket_id)
        for agent_id in dict.fromkeys(step.agents):
            await self.dispatch_agent(agent_id)

    async def _do(self, fn: Callable[[Tx, _Step], Awaitable[Any]]) -> Any:
        step = _Step()

        async def attempt(tx: Tx) -> Any:
            step.reset()
            return await fn(tx, step)

        result = await self.kv.run(attempt)
        await self._commit(step)
        return result

    # ---- taxpayers ---------------------------------------------------------------------

    async def _refusal(self, ticket: Ticket, now: float) -> QueueRefusal | None:
        config = self._config(ticket)
        if config.hours is not None and not config.hours.is_open(now):
            nxt = config.hours.next_opening(now)
            when = f"; it opens at {nxt.isoformat()}" if nxt else ""
            return QueueRefusal("queue_closed", f"the {ticket.category} queue is closed{when}", nxt)
        if config.max_wait_s is None and config.join_when_unstaffed:
            return None
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
            if config.max_length is not None:
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
            waited = now - ticket.joined_at
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
            tx.zadd(keys.TIMERS, {"grace:" + ticket.id: now + self.grace_s})
            return ticket

        ticket = await self._do(tx_drop)
        if ticket is not None:
            self._unwatch(ticket.id)
            if self.grace_s <= 0:
                await self._grace_over(ticket.id)

    async def waiting_ticket(self, taxpayer_id: str) -> Ticket | None:
        held = await self.kv.get(keys.taxpayer(taxpayer_id))
        return await self._ticket(self.kv, held) if held else None

    async def ticket(self, ticket_id: str) -> Ticket | None:
        return await self._ticket(self.kv, ticket_id)

    # ---- agents ------------------------------------------------------------------------

    async def agent(self, agent_id: str) -> AgentState | None:
        return await self._agent_of(self.kv, agent_id)

    async def agent_online(self, profile: AgentState, conn_id: str) -> AgentState:
        """A connection of an agent opened: register the agent (offline until they say
        available) or refresh a known agent's profile, keeping the state."""
        now = self._clock()

        async def tx_online(tx: Tx, step: _Step) -> AgentState:
            agent = await self._agent_of(tx, profile.id)
            tx.sadd(keys.agent_conns(profile.id), conn_id)
            tx.sadd(keys.AGENTS, profile.id)
            if agent is None:
                tx.hset(keys.agent(profile.id), profile.to_fields())
                return profile
            if (agent.skills, agent.languages) != (profile.skills, profile.languages):
                self._staff(tx, agent, agent.status, -1)
                self._unpool(tx, agent)
                agent.skills, agent.languages = profile.skills, profile.languages
                self._staff(tx, agent, agent.status, +1)
                if agent.status == "available" and agent.ready_at <= now:
                    self._pool(tx, agent)
                    step.agents.append(agent.id)
            agent.name, agent.capacity = profile.name, profile.capacity
            tx.hset(keys.agent(agent.id), agent.to_fields())
            return agent

        agent: AgentState = await self._do(tx_online)
        return agent

    async def agent_connection_closed(self, agent_id: str, conn_id: str) -> None:
        """An agent's connection closed; with none left (on any node) the agent is offline and
        an open offer goes to the next agent."""
        now = self._clock()

        async def tx_closed(tx: Tx, step: _Step) -> None:
            conns = await tx.smembers(keys.agent_conns(agent_id))
            agent = await self._agent_of(tx, agent_id)
            tx.srem(keys.agent_conns(agent_id), conn_id)
            if agent is None or conns - {conn_id}:
                return
            if agent.status == "busy":
                # In a call that may still be resumed (reload, network change): stay busy;
                # `session_ended` takes the agent offline if nobody is connected by then.
                return
            await self._go_offline(tx, step, agent, "disconnected", now)

        await self._do(tx_closed)

    async def _go_offline(
        self, tx: Tx, step: _Step, agent: AgentState, reason: str, now: float
    ) -> None:
        await self._withdraw_by_id(
            tx,
            step,
            agent.offer_id,
            "agent_offline",
            now,
            agent=agent,
            agent_next=("offline", reason),
        )
        if agent.status == "wrap_up":
            self._record_handle(tx, agent, now)
        tx.zrem(keys.TIMERS, "wrapup:" + agent.id)
        agent.session_id = None
        self._set_status(tx, step, agent, "offline", reason, now)

    async def set_status(self, agent_id: str, status: AgentStatus, reason: str = "") -> AgentState:
        """An agent asks to be available, away or offline."""
        if status not in ("available", "away", "offline"):
            raise DomainError("invalid_payload", "status must be available, away or offline")
        now = self._clock()

        async def tx_status(tx: Tx, step: _Step) -> AgentState:
            await tx.watch(keys.agent(agent_id))
            agent = await self._agent_of(tx, agent_id)
            if agent is None:
                raise DomainError("invalid_state", "agent is not connected")
            if agent.status == "busy":
                raise DomainError("invalid_state", "end the current session first")
            if status == "available" and agent.status in ("available", "reserved"):
                return agent  # already taking offers: nothing changes (flapping is harmless)
            if agent.status == "reserved":
                await self._withdraw_by_id(
                    tx,
                    step,
                    agent.offer_id,
                    "agent_" + status,
                    now,
                    agent=agent,
                    agent_next=(status, reason),
                )
                if agent.status == status:
                    return agent
            if agent.status == "wrap_up":
                self._record_handle(tx, agent, now)
                tx.zrem(keys.TIMERS, "wrapup:" + agent.id)
            if status == "available":
                agent.missed_offers, agent.ready_at = 0, 0.0
            self._set_status(tx, step, agent, status, reason, now)
            return agent

        agent: AgentState = await self._do(tx_status)
        return agent

    async def accept(self, agent_id: str, offer_id: str) -> Ticket:
        """The agent takes the offered ticket: it leaves the queue and the agent is busy."""
        now = self._clock()

        async def tx_accept(tx: Tx, step: _Step) -> Ticket:
            await tx.watch(keys.offer(offer_id), keys.agent(agent_id))
            offer = await self._offer(tx, offer_id)
            if offer is None or offer.agent_id != agent_id:
                raise DomainError("offer_expired", "this offer has expired or was withdrawn")
            agent = await self._agent_of(tx, agent_id)
            ticket = await self._ticket(tx, offer.ticket_id)
            if agent is None or agent.status != "reserved" or agent.offer_id != offer_id:
                raise DomainError("invalid_state", "you are not reserved for this offer")
            if ticket is None:
                raise DomainError("offer_expired", "the taxpayer has left")
            tx.delete(keys.offer(offer.id))
            tx.zrem(keys.TIMERS, "offer:" + offer.id)
            self._drop_ticket(tx, ticket)
            day = self._day(now)
            if agent.sessions_day != day:
                agent.sessions_day, agent.sessions_today = day, 0
            agent.sessions_today += 1
            agent.missed_offers = 0
            agent.offer_id, agent.session_id = None, ticket.session_id
            agent.answered_at, agent.ticket_category = now, ticket.category
            self._set_status(tx, step, agent, "busy", "", now)
            waited = now - ticket.joined_at
            self._count(
                tx,
                ticket.category,
                now,
                answered=1,
                answered_in_sl=int(waited <= self._config(ticket).service_level_s),
                answered_wait_sum=waited,
                offers_accepted=1,
            )
            return ticket

        ticket: Ticket = await self._do(tx_accept)
        self._unwatch(ticket.id)
        return ticket

    async def reject(self, agent_id: str, offer_id: str) -> None:
        """The agent declines: the ticket goes to the next agent at once; this agent gets no
        offer for `reject_delay_s` (FreeSWITCH reject-delay-time)."""
        now = self._clock()

        async def tx_reject(tx: Tx, step: _Step) -> None:
            offer = await self._offer(tx, offer_id)
            if offer is None or offer.agent_id != agent_id:
                raise DomainError("offer_expired", "this offer has expired or was withdrawn")
            agent = await self._agent_of(tx, agent_id)
            ticket = await self._ticket(tx, offer.ticket_id)
            if agent is not None:
                agent.missed_offers, agent.ready_at = 0, now + self.reject_delay_s
            self._withdraw(tx, step, offer, ticket, agent, "rejected", now, notify_agent=False)
            if ticket is not None:
                self._count(tx, ticket.category, now, offers_rejected=1)

        await self._do(tx_reject)

    async def session_ended(self, agent_id: str) -> None:
        """The agent's session is over: wrap-up, then available again."""
        now = self._clock()

        async def tx_ended(tx: Tx, step: _Step) -> None:
            await tx.watch(keys.agent(agent_id), keys.agent_conns(agent_id))
            agent = await self._agent_of(tx, agent_id)
            if agent is None or agent.status != "busy":
                return
            agent.session_id, agent.ended_at = None, now
            if not await tx.smembers(keys.agent_conns(agent_id)):
                # The agent's connection dropped during the call and never came back.
                self._record_handle(tx, agent, now)
                self._set_status(tx, step, agent, "offline", "disconnected", now)
                return
            if self.wrapup_s <= 0:
                self._record_handle(tx, agent, now)
                self._set_status(tx, step, agent, "available", "", now)
            else:
                tx.zadd(keys.TIMERS, {"wrapup:" + agent_id: now + self.wrapup_s})
                self._set_status(tx, step, agent, "wrap_up", "", now)

        await self._do(tx_ended)

    # ---- dispatch ----------------------------------------------------------------------

    async def dispatch_ticket(self, ticket_id: str) -> bool:
        """Offer a ready ticket to the best agent who may take it now, if any. After a lost
        race (another node or task claimed that agent first) the next try picks among the
        best few (`policy.best_agent`), so a burst of joins does not herd."""
        for attempt in range(16):
            ticket = await self._ticket(self.kv, ticket_id)
            if ticket is None or ticket.offer_id is not None or ticket.conn_id is None:
                return False
            config = self._config(ticket)
            now = self._clock()
            levels = policy.eligible_levels(config, now - ticket.joined_at)
            pools = [
                keys.pool(ticket.category if level else "*", ticket.language, level)
                for level in levels
            ]
            k = self._spread(attempt)
            candidates = [
                policy.AgentHead(member, level, score)
                for level, rows in zip(levels, await self.kv.tops(pools, k), strict=True)
                for member, score in rows
            ]
            choice = policy.best_agent(config.strategy, candidates, k, self._rng)
            if choice is None:
                return False
            if await self._offer_pair(ticket_id, choice.agent_id):
                return True
        # Lost every race for an agent (a burst): look again on the next tick.
        await self.kv.run(partial(self._retry, member="escalate:" + ticket_id))
        return False

    @staticmethod
    def _spread(attempt: int) -> int:
        """How many of the best candidates a dispatcher picks among: the best first, then more
        after each race lost to another dispatcher."""
        return 1 if attempt == 0 else min(2 ** (attempt + 1), SPREAD_MAX)

    def _ready_lines(self, agent: AgentState) -> list[tuple[str, str, int]]:
        cats = [c for c, level in agent.skills.items() if level >= 1]
        if self.book.any_widens:
            cats += [
                c
                for c in self.categories
                if c not in agent.skills and self.book.of(c).widens_to_any
            ]
        return [(c, lang, p) for c in cats for lang in agent.languages for p in PRIORITY_LEVELS]

    async def dispatch_agent(self, agent_id: str) -> bool:
        """Offer an available agent the first ready ticket they may take, if any (after a
        lost race, one of the first few: `policy.best_ticket`)."""
        for attempt in range(16):
            agent = await self._agent_of(self.kv, agent_id)
            now = self._clock()
            if (
                agent is None
                or agent.status != "available"
                or agent.offer_id is not None
                or agent.ready_at > now
            ):
                return False
            lines = self._ready_lines(agent)
            k = self._spread(attempt)
            tops = await self.kv.tops([keys.ready(*line) for line in lines], k)
            candidates = [
                policy.TicketHead(member, line[0], line[1], line[2], score)
                for line, rows in zip(lines, tops, strict=True)
                for member, score in rows
            ]
            choice = policy.best_ticket(agent, candidates, self.book, now, k, self._rng)
            if choice is None:
                return False
            if await self._offer_pair(choice.ticket_id, agent_id):
                return True
        await self.kv.run(partial(self._retry, member="ready:" + agent_id))
        return False

    async def _retry(self, tx: Tx, *, member: str) -> None:
        tx.zadd(keys.TIMERS, {member: self._clock()})

    async def _offer_pair(self, ticket_id: str, agent_id: str) -> bool:
        """The atomic claim: if the ticket is still ready and the agent still free and
        eligible, reserve one for the other. False if either changed meanwhile."""
        now = self._clock()

        async def tx_offer(tx: Tx, step: _Step) -> bool:
            await tx.watch(keys.ticket(ticket_id), keys.agent(agent_id))
            ticket = await self._ticket(tx, ticket_id)
            agent = await self._agent_of(tx, agent_id)
            if ticket is None or agent is None:
                return False
            if ticket.offer_id is not None or ticket.conn_id is None:
                return False
            if agent.status != "available" or agent.offer_id is not None or agent.ready_at > now:
                return False
            need = self._config(ticket).required_level(now - ticket.joined_at)
            if not policy.eligible(agent, ticket, need):
                return False
            offer = Offer(str(uuid.uuid4()), ticket.id, agent.id, now, now + self.offer_timeout_s)
            tx.hset(keys.offer(offer.id), offer.to_fields())
            tx.zadd(keys.TIMERS, {"offer:" + offer.id: offer.expires_at})
            ticket.offer_id = offer.id
            tx.hset(keys.ticket(ticket.id), {"offer_id": offer.id})
            self._unready(tx, ticket)
            agent.offer_id, agent.last_offer_at = offer.id, now
            self._set_status(tx, step, agent, "reserved", "", now)
            self._count(tx, ticket.category, now, offers=1)
            step.notes.append(lambda: self._events.offer_new(agent, offer, ticket))
            return True

        made: bool = await self._do(tx_offer)
        return made

    # ---- timers ------------------------------------------------------------------------

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
                ticket.dropped_at is not None and now >= ticket.dropped_at + self.grace_s - EPSILON
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

    _timer_handlers: ClassVar[dict[str, Callable[[QueueEngine, str], Awaitable[None]]]] = {
        "offer": _offer_expired,
        "wrapup": _wrapup_over,
        "ready": _cooled_down,
        "grace": _grace_over,
        "maxwait": _max_wait_over,
        "escalate": _escalate,
    }

    # ---- position and estimated wait ---------------------------------------------------

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

    # ---- live statistics ---------------------------------------------------------------

    async def live_stats(self) -> dict[str, Any]:
        """Per queue: waiting, longest wait, agents by state, offers, and today's service
        level (both of Asterisk's formulas), ASA, abandonment and handle time."""
        now = self._clock()
        day = self._day(now)
        queues: dict[str, Any] = {}
        for cat in self.categories:
            config = self.book.of(cat)
            oldest = await self.kv.zrange_withscores(keys.waiting(cat), 0, 0)
            agents_raw = await self.kv.hgetall(keys.queue_agents(cat))
            c = {k: float(v) for k, v in (await self.kv.hgetall(keys.stats(cat, day))).items()}
            answered, abandoned = c.get("answered", 0.0), c.get("abandoned", 0.0)
            in_sl, ab_in_sl = c.get("answered_in_sl", 0.0), c.get("abandoned_in_sl", 0.0)
            offers = c.get("offers", 0.0)
            queues[cat] = {
                "waiting": await self.kv.zcard(keys.waiting(cat)),
                "longest_wait_s": round(now - oldest[0][1], 1) if oldest else 0.0,
                "agents": {
                    s: int(agents_raw.get(s) or 0) for s in AGENT_STATUSES if s != "offline"
                },
                "offers": {
                    "made": int(offers),
                    "accepted": int(c.get("offers_accepted", 0)),
                    "rejected": int(c.get("offers_rejected", 0)),
                    "expired": int(c.get("offers_expired", 0)),
                },
                "today": {
                    "joined": int(c.get("joined", 0)),
                    "refused": int(c.get("refused", 0)),
                    "answered": int(answered),
                    "abandoned": int(abandoned),
                    "timed_out": int(c.get("timed_out", 0)),
                    "service_level": _ratio(in_sl, answered),
                    "service_level_with_abandoned": _ratio(in_sl + ab_in_sl, answered + abandoned),
                    "asa_s": _mean(c.get("answered_wait_sum", 0.0), answered),
                    "abandonment_rate": _ratio(abandoned, answered + abandoned),
                    "aht_s": _mean(c.get("handle_sum", 0.0), c.get("handle_n", 0.0)),
                },
                "service_level_s": config.service_level_s,
                "strategy": config.strategy,
                "open": config.hours is None or config.hours.is_open(now),
            }
        return {
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "day": day,
            "queues": queues,
        }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(total: float, n: float) -> float | None:
    return round(total / n, 1) if n else None


# Every proficiency level has a pool; keep the constant close to its use for readers.
assert LEVELS == (1, 2, 3, 4, 5)
