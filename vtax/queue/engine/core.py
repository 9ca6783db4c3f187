"""The engine's typed core: its settings and state, the events it tells, and the helpers every
section's transactions are made of.

Each change of the queue is one transaction over the backend (`kv.KV`); a transaction gets a
`_Step` in which it collects what to tell and what to dispatch once it committed (`_do`). The
sections (taxpayers, agents, dispatch, timers, positions, live statistics) are mixins over this
core; what one section asks of another is declared here as an abstract method, so each module
type-checks on its own and `QueueEngine` cannot be built with a section missing."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from vtax.errors import DomainError
from vtax.queue import keys, policy
from vtax.queue.kv import KV, Tx
from vtax.queue.memory import MemoryKV
from vtax.queue.model import AgentState, AgentStatus, Offer, Ticket
from vtax.queue.queues import QueueBook, QueueConfig

Clock = Callable[[], float]
log = logging.getLogger(__name__)
STATS_TTL_S = 8 * 86400


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


class EngineCore(ABC):
    """Settings, state and transaction helpers shared by every section of the engine."""

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
            agent.status_since = now
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
        if ticket.held:  # a callback: offered once the taxpayer is back (`hold(..., False)`)
            return
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

    # ---- what one section asks of another ----------------------------------------------

    @abstractmethod
    async def dispatch_ticket(self, ticket_id: str) -> bool:
        """Dispatch: offer a ready ticket to the best free agent."""

    @abstractmethod
    async def dispatch_agent(self, agent_id: str) -> bool:
        """Dispatch: offer a free agent the first ready ticket they may take."""

    @abstractmethod
    async def _remove(
        self,
        ticket_id: str,
        taxpayer_id: str | None,
        reason: str,
        check: Callable[[Ticket, float], bool] | None = None,
    ) -> Ticket | None:
        """Taxpayers: take a waiting ticket out as abandoned or timed out."""

    @abstractmethod
    async def _grace_over(self, ticket_id: str) -> None:
        """Timers: a dropped taxpayer's grace period is over."""

    @abstractmethod
    async def _counts(self, category: str, language: str) -> dict[str, int]:
        """Positions: agents of a (category, language) group by state."""

    @abstractmethod
    async def _eta(
        self,
        ticket: Ticket,
        position: int,
        counts: dict[str, int],
        aht: float | None = None,
    ) -> float:
        """Positions: the estimated wait at a position."""

    @abstractmethod
    async def estimate(self, ticket_id: str) -> tuple[int, float]:
        """Positions: a ticket's position in its line and its estimated wait."""

    @abstractmethod
    def _watch(self, ticket: Ticket, last: tuple[int, float]) -> None:
        """Positions: push this ticket's position to its taxpayer from now on."""

    @abstractmethod
    def _unwatch(self, ticket_id: str) -> None:
        """Positions: stop pushing this ticket's position."""
