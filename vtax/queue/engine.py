"""The dispatcher: keeps tickets, agents and offers, makes offers and times them out.

All state changes happen under one lock; notifications collected while it is held are sent
after it is released, so a slow client never holds up the queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Protocol

from vtax.errors import DomainError
from vtax.queue import policy
from vtax.queue.model import AgentState, AgentStatus, Offer, Ticket

Clock = Callable[[], float]
log = logging.getLogger(__name__)


class QueueEvents(Protocol):
    """What the engine tells the outside world; the signaling layer implements it."""

    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None: ...
    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None: ...
    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None: ...
    async def agent_status(self, agent: AgentState) -> None: ...


class QueueEngine:
    def __init__(
        self,
        events: QueueEvents,
        *,
        offer_timeout_s: float = 15.0,
        wrapup_s: float = 30.0,
        handle_s: float = 300.0,
        clock: Clock = time.time,
    ) -> None:
        self._events = events
        self.offer_timeout_s = offer_timeout_s
        self.wrapup_s = wrapup_s
        self.handle_s = handle_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self.tickets: dict[str, Ticket] = {}
        self.agents: dict[str, AgentState] = {}
        self.offers: dict[str, Offer] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._outbox: list[Callable[[], Awaitable[None]]] = []
        self._last_sent: dict[str, tuple[int, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- public operations -------------------------------------------------------------

    async def join(self, ticket: Ticket) -> tuple[int, float]:
        """Queue a ticket; return its position and estimated wait."""
        async with self._step():
            if any(t.taxpayer_id == ticket.taxpayer_id for t in self.tickets.values()):
                raise DomainError("already_queued", "you are already waiting in the queue")
            self.tickets[ticket.id] = ticket
            self._dispatch()
            position, eta = self._estimate(ticket)
            self._last_sent[ticket.id] = (position, eta)
            return position, eta

    async def leave(self, ticket_id: str, taxpayer_id: str | None = None) -> Ticket:
        """Take a ticket out of the queue (left, disconnected); revoke its offer."""
        async with self._step():
            ticket = self.tickets.get(ticket_id)
            if ticket is None or (taxpayer_id is not None and ticket.taxpayer_id != taxpayer_id):
                raise DomainError("not_found", "no such waiting ticket")
            self._remove_ticket(ticket, revoke_reason="ticket_left")
            self._dispatch()
            return ticket

    def waiting_ticket_of(self, taxpayer_id: str) -> Ticket | None:
        return next((t for t in self.tickets.values() if t.taxpayer_id == taxpayer_id), None)

    async def agent_online(self, agent: AgentState) -> None:
        """Register an agent (offline until they say available); keeps a known agent's state."""
        async with self._step():
            known = self.agents.get(agent.id)
            if known is None:
                self.agents[agent.id] = agent
            else:
                known.skills, known.languages, known.name = (
                    agent.skills,
                    agent.languages,
                    agent.name,
                )

    async def set_status(self, agent_id: str, status: AgentStatus, reason: str = "") -> AgentState:
        """An agent asks to be available, away or offline."""
        async with self._step():
            agent = self._agent(agent_id)
            if status not in ("available", "away", "offline"):
                raise DomainError("invalid_payload", "status must be available, away or offline")
            if agent.status == "busy":
                raise DomainError("invalid_state", "end the current session first")
            if agent.offer_id is not None:
                self._revoke(self.offers[agent.offer_id], "agent_" + status, notify_agent=True)
            self._cancel_timer("wrapup:" + agent.id)
            self._set(agent, status, reason)
            self._dispatch()
            return agent

    async def accept(self, agent_id: str, offer_id: str) -> Ticket:
        """The agent takes the offered ticket: it leaves the queue and the agent is busy."""
        async with self._step():
            agent = self._agent(agent_id)
            offer = self.offers.get(offer_id)
            if offer is None or offer.agent_id != agent_id:
                raise DomainError("offer_expired", "this offer has expired or was withdrawn")
            ticket = self.tickets[offer.ticket_id]
            self._drop_offer(offer)
            del self.tickets[ticket.id]
            self._last_sent.pop(ticket.id, None)
            agent.missed_offers = 0
            agent.session_id = ticket.session_id
            agent.sessions_today += 1
            self._set(agent, "busy", "")
            self._dispatch()
            return ticket

    async def reject(self, agent_id: str, offer_id: str) -> None:
        async with self._step():
            offer = self.offers.get(offer_id)
            if offer is None or offer.agent_id != agent_id:
                raise DomainError("offer_expired", "this offer has expired or was withdrawn")
            self._revoke(offer, "rejected", notify_agent=False)
            self._dispatch()

    async def session_ended(self, agent_id: str) -> None:
        """The agent's session is over: wrap-up, then available again."""
        async with self._step():
            agent = self.agents.get(agent_id)
            if agent is None or agent.status != "busy":
                return
            agent.session_id = None
            if self.wrapup_s <= 0:
                self._set(agent, "available", "")
            else:
                self._set(agent, "wrap_up", "")
                self._start_timer("wrapup:" + agent_id, self.wrapup_s, self._wrapup_over, agent_id)
            self._dispatch()

    async def agent_gone(self, agent_id: str) -> None:
        """The agent's connection is gone: offline, offer revoked and ticket re-offered."""
        async with self._step():
            agent = self.agents.get(agent_id)
            if agent is None:
                return
            if agent.offer_id is not None:
                self._revoke(self.offers[agent.offer_id], "agent_offline", notify_agent=False)
            self._cancel_timer("wrapup:" + agent_id)
            agent.session_id = None
            self._set(agent, "offline", "disconnected", notify=False)
            self._dispatch()

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- internals ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _step(self) -> AsyncIterator[None]:
        async with self._lock:
            try:
                yield
            finally:
                outbox, self._outbox = self._outbox, []
        for send in outbox:
            try:
                await send()
            except Exception:  # one client's failure must not stop the others' news
                log.exception("queue notification failed")

    def _agent(self, agent_id: str) -> AgentState:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise DomainError("invalid_state", "agent is not connected")
        return agent

    def _set(
        self, agent: AgentState, status: AgentStatus, reason: str, notify: bool = True
    ) -> None:
        if status == "available" and agent.status != "available":
            agent.idle_since = self._clock()
        agent.status, agent.reason = status, reason
        if notify:
            self._outbox.append(partial(self._events.agent_status, agent))

    def _dispatch(self) -> None:
        now = self._clock()
        for ticket, agent in policy.plan_offers(
            list(self.tickets.values()), list(self.agents.values())
        ):
            offer = Offer(str(uuid.uuid4()), ticket.id, agent.id, now, now + self.offer_timeout_s)
            self.offers[offer.id] = offer
            ticket.offer_id = offer.id
            agent.offer_id = offer.id
            self._set(agent, "reserved", "", notify=False)
            self._start_timer(
                "offer:" + offer.id, self.offer_timeout_s, self._offer_expired, offer.id
            )
            self._outbox.append(partial(self._events.offer_new, agent, offer, ticket))
        self._push_positions()

    def _push_positions(self) -> None:
        places = policy.positions(self.tickets.values())
        for ticket_id, position in places.items():
            ticket = self.tickets[ticket_id]
            update = (position, self._eta(ticket, position))
            if self._last_sent.get(ticket_id) != update:
                self._last_sent[ticket_id] = update
                self._outbox.append(partial(self._events.queue_update, ticket, *update))

    def _estimate(self, ticket: Ticket) -> tuple[int, float]:
        position = policy.positions(self.tickets.values())[ticket.id]
        return position, self._eta(ticket, position)

    def _eta(self, ticket: Ticket, position: int) -> float:
        staffed = [
            a
            for a in self.agents.values()
            if a.status not in ("offline", "away") and policy.eligible(a, ticket)
        ]
        idle = sum(1 for a in staffed if a.status == "available")
        return policy.estimated_wait_s(position, len(staffed), idle, self.handle_s)

    def _remove_ticket(self, ticket: Ticket, revoke_reason: str) -> None:
        if ticket.offer_id is not None:
            self._revoke(self.offers[ticket.offer_id], revoke_reason, notify_agent=True)
        del self.tickets[ticket.id]
        self._last_sent.pop(ticket.id, None)

    def _drop_offer(self, offer: Offer) -> None:
        self.offers.pop(offer.id, None)
        self._cancel_timer("offer:" + offer.id)
        ticket = self.tickets.get(offer.ticket_id)
        if ticket is not None and ticket.offer_id == offer.id:
            ticket.offer_id = None
        agent = self.agents.get(offer.agent_id)
        if agent is not None and agent.offer_id == offer.id:
            agent.offer_id = None

    def _revoke(self, offer: Offer, reason: str, notify_agent: bool) -> None:
        """Withdraw an offer; a reserved agent becomes available again."""
        self._drop_offer(offer)
        agent = self.agents.get(offer.agent_id)
        if agent is not None and agent.status == "reserved":
            self._set(agent, "available", "")
        if notify_agent:
            self._outbox.append(
                partial(self._events.offer_revoked, offer.agent_id, offer.id, reason)
            )

    def _start_timer(
        self, key: str, delay: float, fn: Callable[[str], Awaitable[None]], arg: str
    ) -> None:
        self._cancel_timer(key)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._spawn, key, fn, arg)

    def _spawn(self, key: str, fn: Callable[[str], Awaitable[None]], arg: str) -> None:
        self._timers.pop(key, None)
        task = asyncio.ensure_future(fn(arg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _cancel_timer(self, key: str) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    async def _offer_expired(self, offer_id: str) -> None:
        async with self._step():
            offer = self.offers.get(offer_id)
            if offer is None:
                return
            agent = self.agents.get(offer.agent_id)
            if agent is not None:
                agent.missed_offers += 1
            self._revoke(offer, "expired", notify_agent=True)
            self._dispatch()

    async def _wrapup_over(self, agent_id: str) -> None:
        async with self._step():
            agent = self.agents.get(agent_id)
            if agent is not None and agent.status == "wrap_up":
                self._set(agent, "available", "")
                self._dispatch()
