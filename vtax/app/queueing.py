"""The queue's use cases: taxpayers join, rejoin and leave (intake); agents come and go, set
their status and answer offers (pairing); the agent hands a caller to another queue
(transfer). `QueueNotices` implements the engine's `QueueEvents`: what the engine decides
goes out to people through the `Notifier`, and into the session records.

Every push is a contract model (vtax/contract/server_events.py)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from vtax.accounts import Accounts
from vtax.app.calls import Calls, ticket_view
from vtax.app.ports import Caller, Notifier, at
from vtax.app.step_up import StepUpGate
from vtax.catalog import Catalog
from vtax.contract import client_events as ce
from vtax.contract import server_events as se
from vtax.errors import DomainError
from vtax.queue import AgentState, Offer, QueueEngine, Ticket
from vtax.queue.model import PRIORITY_CLASSES, TRANSFER_PRIORITY
from vtax.review.records import SessionRecords
from vtax.review.transfers import link_transfer

log = logging.getLogger(__name__)
AgentStateHook = Callable[[str, str, str, datetime], Awaitable[None]]


def acting_of(caller: Caller) -> tuple[str, str]:
    """The enterprise and role a taxpayer acts for (their token's), or ("", "")."""
    return (caller.acting_for, caller.acting_role) if caller.acting_for else ("", "")


class QueueNotices:
    """The engine's `QueueEvents`: offers and status to agents, positions to taxpayers,
    figures to supervisors; offered/abandoned into the session records."""

    def __init__(self, records: SessionRecords, notifier: Notifier) -> None:
        self.records = records
        self.notifier = notifier
        self.on_dispatch: Callable[[float], None] | None = None  # /metrics histogram
        # Called on every agent state change: (agent_id, status, reason, at).
        self.agent_state_hooks: list[AgentStateHook] = []
        # Called with every statistics push (the figures the engine computed).
        self.stats_hooks: list[Callable[[dict[str, Any]], Awaitable[None]]] = []
        # Called when a ticket leaves the queue unserved: (ticket, reason).
        self.left_hooks: list[Callable[[Ticket, str], Awaitable[None]]] = []

    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None:
        await self.records.offered(ticket.session_id, agent.id, at(offer.created_at))
        message = se.OfferNew(
            offer_id=offer.id,
            ticket=ticket_view(ticket, offer.created_at),
            expires_in_s=round(offer.expires_at - offer.created_at, 1),
        )
        await self.notifier.to_user(agent.id, message)
        if self.on_dispatch is not None:
            # From the moment a match was possible (the later of the ticket joining and the
            # agent becoming available) to the offer being sent out.
            ready = max(ticket.joined_at, agent.idle_since)
            self.on_dispatch(max(time.time() - ready, 0.0))

    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None:
        message = se.OfferRevoked(offer_id=offer_id, reason=reason)  # type: ignore[arg-type]
        await self.notifier.to_user(agent_id, message)

    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None:
        message = se.QueueUpdate(ticket_id=ticket.id, position=position, eta_s=eta_s)
        await self.notifier.to_user(ticket.taxpayer_id, message)

    async def queue_left(self, ticket: Ticket, reason: str, when: float) -> None:
        await self.records.abandoned(ticket.session_id, at(when), reason)
        message = se.QueueLeft(ticket_id=ticket.id, reason=reason)  # type: ignore[arg-type]
        await self.notifier.to_user(ticket.taxpayer_id, message)
        for hook in self.left_hooks:
            await hook(ticket, reason)

    async def agent_status(self, agent: AgentState) -> None:
        message = se.AgentStatusChanged(status=agent.status, reason=agent.reason)
        await self.notifier.to_user(agent.id, message)
        await self.agent_state_changed(agent.id, agent.status, agent.reason, at(time.time()))

    async def agent_state_changed(
        self, agent_id: str, status: str, reason: str, when: datetime
    ) -> None:
        for hook in self.agent_state_hooks:
            await hook(agent_id, status, reason, when)

    async def queue_stats(self, stats: dict[str, Any]) -> None:
        for hook in self.stats_hooks:
            await hook(stats)


class Queueing:
    """Intake (join, rejoin, leave, drop), pairing (agent presence, status, accept, reject)
    and transfer, over the queue engine and the live calls."""

    def __init__(
        self,
        engine: QueueEngine,
        notices: QueueNotices,
        calls: Calls,
        records: SessionRecords,
        accounts: Accounts,
        catalog: Catalog,
        notifier: Notifier,
        step_up: StepUpGate | None = None,
    ) -> None:
        self.engine = engine
        # risky items (catalog `step_up`) are asked for only after a fresh high sign-in
        self.step_up = step_up or StepUpGate()
        self.notices = notices
        self.calls = calls
        self.records = records
        self.accounts = accounts
        self.catalog = catalog
        self.notifier = notifier
        # Called once an agent accepted a ticket and its session started: (ticket, session_id).
        self.accepted_hooks: list[Callable[[Ticket, str], Awaitable[None]]] = []

    # ---- presence ------------------------------------------------------------------------

    async def resend_offer(self, caller: Caller) -> bool:
        """The agent's pending offer again, to this connection only, with the time it has
        left: after a fan-out gap the first `offer:new` may never have reached it (the page
        takes the same offer id twice). True if there was one."""
        if caller.role != "agent" or caller.conn is None:
            return False
        pending = await self.engine.pending_offer(caller.subject)
        if pending is None:
            return False
        offer, ticket = pending
        now = time.time()
        message = se.OfferNew(
            offer_id=offer.id,
            ticket=ticket_view(ticket, now),
            expires_in_s=round(max(offer.expires_at - now, 0.0), 1),
        )
        await self.notifier.to_connections([caller.conn], message)
        return True

    async def connected(self, caller: Caller) -> None:
        """A connection came up: an agent is online (offered nothing until `available`)."""
        self.engine.start()
        if caller.role == "agent" and caller.conn is not None:
            staff = await self.accounts.staff(caller.subject)
            if staff is not None:
                profile = AgentState(
                    id=staff.id,
                    name=staff.display_name,
                    skills=dict(staff.skills),
                    languages=frozenset(staff.languages),
                )
                await self.engine.agent_online(profile, caller.conn)

    async def disconnected(self, caller: Caller) -> None:
        """A connection went away: a waiting taxpayer keeps its place for the grace; an agent
        whose last connection closed goes offline."""
        if caller.conn is None:
            return
        if caller.role == "taxpayer":
            await self.engine.taxpayer_dropped(caller.subject, caller.conn)
        elif caller.role == "agent":
            await self.engine.agent_connection_closed(caller.subject, caller.conn)
            if not self.notifier.has_connection_here(caller.subject):
                # The engine takes the agent offline without an agent:status of its own.
                await self.notices.agent_state_changed(
                    caller.subject, "offline", "disconnected", at(time.time())
                )

    # ---- intake ----------------------------------------------------------------------------

    async def join(self, caller: Caller, p: ce.QueueJoin) -> ce.Queued:
        if p.item is not None:
            self.catalog.check_item_of(p.category, p.item)
            if p.item in self.catalog.step_up_items:
                await self.step_up.require(caller, "queue:join", p.item)
        ticket = await self.new_ticket(
            caller, p.category, p.language, p.channel, p.question, p.priority
        )
        position, eta = await self.enqueue(ticket, acting_of(caller))
        return ce.Queued(ticket_id=ticket.id, position=position, eta_s=eta)

    async def new_ticket(
        self,
        caller: Caller,
        category: str,
        language: str,
        channel: str,
        question: str,
        priority: str = "normal",
        *,
        consultation_id: str | None = None,
    ) -> Ticket:
        """The ticket of a taxpayer about to join (`queue:join`, the assistant's hand-off),
        refused while the taxpayer is in a call or already waiting."""
        if await self.calls.session_id_of(caller.subject) is not None:
            raise DomainError("in_session", "you are in a video session already")
        if await self.engine.waiting_ticket(caller.subject) is not None:
            raise DomainError(
                "already_queued",
                "you are already waiting in the queue; send queue:rejoin with your ticket_id",
            )
        return Ticket(
            id=str(uuid.uuid4()),
            session_id=str(uuid.uuid4()),
            taxpayer_id=caller.subject,
            category=category,
            language=language,
            channel=channel,
            question=question,
            joined_at=time.time(),
            priority=PRIORITY_CLASSES[priority],
            conn_id=caller.conn,
            consultation_id=consultation_id,
        )

    async def enqueue(
        self, ticket: Ticket, acting: tuple[str, str] = ("", "")
    ) -> tuple[int, float]:
        """Open the ticket's session record (the 'ask', with the enterprise and role the
        taxpayer acts for) and queue it; a refusal of the queue is recorded (abandoned,
        `refused`) and raised."""
        await self.records.open(
            session_id=ticket.session_id,
            ticket_id=ticket.id,
            taxpayer_id=ticket.taxpayer_id,
            category=ticket.category,
            language=ticket.language,
            channel=ticket.channel,
            question=ticket.question,
            joined_at=at(ticket.joined_at),
            enterprise_id=acting[0] or None,
            acting_role=acting[1] or None,
            consultation_id=ticket.consultation_id,
            booking_id=ticket.booking_id or None,
        )
        try:
            return await self.engine.join(ticket)
        except DomainError:
            await self.records.abandoned(ticket.session_id, at(time.time()), "refused")
            raise

    async def rejoin(self, caller: Caller, p: ce.QueueRejoin) -> ce.Queued:
        if caller.conn is None:
            raise DomainError("invalid_payload", "rejoin needs a live connection")
        ticket, position, eta = await self.engine.rejoin(p.ticket_id, caller.subject, caller.conn)
        return ce.Queued(ticket_id=ticket.id, position=position, eta_s=eta)

    async def leave(self, caller: Caller, p: ce.QueueLeave) -> ce.Done:
        await self.engine.leave(p.ticket_id, caller.subject)
        return ce.Done()

    # ---- pairing ---------------------------------------------------------------------------

    async def set_status(self, caller: Caller, p: ce.AgentStatusChange) -> ce.StatusSet:
        agent = await self.engine.set_status(caller.subject, p.status, p.reason)
        return ce.StatusSet(status=agent.status)

    async def accept(self, caller: Caller, p: ce.OfferAccept) -> ce.Accepted:
        ticket = await self.engine.accept(caller.subject, p.offer_id)
        # The taxpayer's connection may be on another node: the call reaches it by its id.
        session_id = await self.calls.start(ticket, caller)
        for hook in self.accepted_hooks:
            await hook(ticket, session_id)
        return ce.Accepted(session_id=session_id)

    async def reject(self, caller: Caller, p: ce.OfferReject) -> ce.Done:
        await self.engine.reject(caller.subject, p.offer_id)
        return ce.Done()

    # ---- transfer --------------------------------------------------------------------------

    async def transfer(self, caller: Caller, p: ce.SessionTransfer) -> ce.Transferred:
        """The agent hands the taxpayer to another queue: this session ends `transferred`, a
        new session record and ticket start in the target queue, served with priority (level
        1, like the declared needs) so the taxpayer does not start again from the back."""
        participant_id = await self.calls.bound_participant(caller, p.session_id)
        live = await self.calls.get(p.session_id)
        if live is None:
            raise DomainError("not_in_session", "that session is over")
        me = live.participants.get(participant_id)
        if me is None or me.role != "agent" or live.agent_id != caller.subject:
            raise DomainError("forbidden", "only the session's agent may transfer it")
        info = live.info
        language = p.language or str(info.get("language", ""))
        taxpayer = next((x for x in live.participants.values() if x.role == "taxpayer"), None)
        if taxpayer is None or taxpayer.state != "connected" or taxpayer.sid is None:
            raise DomainError(
                "peer_away", "the taxpayer is reconnecting; transfer when they are back"
            )
        now = time.time()
        ticket = Ticket(
            id=str(uuid.uuid4()),
            session_id=str(uuid.uuid4()),
            taxpayer_id=taxpayer.subject,
            category=p.category,
            language=language,
            channel=str(info.get("channel", "web")),
            question=str(info.get("question", "")),
            joined_at=now,
            priority=TRANSFER_PRIORITY,
            conn_id=taxpayer.sid,
        )
        # The target queue may refuse (closed, full, unstaffed): then the call goes on. The
        # new session is for whom the old one was.
        position, eta = await self.enqueue(ticket, await self.records.acting_of(p.session_id))
        await link_transfer(
            self.records.sessionmaker, p.session_id, ticket.session_id, at(now), caller.actor,
            {"category": p.category, "language": language, "note": p.note},
        )  # fmt: skip
        await self.calls.end(p.session_id, "transferred", "transferred", me)
        message = se.QueueTransferred(
            from_session_id=p.session_id,
            session_id=ticket.session_id,
            ticket_id=ticket.id,
            category=ticket.category,
            language=ticket.language,
            note=p.note,
            position=position,
            eta_s=eta,
        )
        await self.notifier.to_connections([taxpayer.sid], message)
        return ce.Transferred(session_id=ticket.session_id, ticket_id=ticket.id, position=position)
