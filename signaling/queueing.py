"""Queue events: taxpayers join and leave, agents change status and answer offers; the
engine's notifications go back out as Socket.IO events."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from signaling import schemas
from signaling.hub import Ack, Connection, Hub, at
from vtax.errors import DomainError
from vtax.queue import AgentState, Offer, QueueEngine, Ticket

if TYPE_CHECKING:
    from signaling.sessions import SessionRelay


def ticket_view(ticket: Ticket, now: float) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "category": ticket.category,
        "language": ticket.language,
        "channel": ticket.channel,
        "question": ticket.question,
        "waited_s": round(max(now - ticket.joined_at, 0.0), 1),
    }


class QueueHandlers:
    """Implements `QueueEvents` towards clients and the queue's client events."""

    def __init__(self, hub: Hub, sessions: SessionRelay) -> None:
        self.hub = hub
        self.sessions = sessions
        settings = hub.settings
        self.engine = QueueEngine(
            self,
            offer_timeout_s=settings.offer_timeout_s,
            wrapup_s=settings.wrapup_s,
            handle_s=settings.default_handle_s,
        )
        self.ticket_sids: dict[str, str] = {}  # ticket id -> the taxpayer connection waiting
        hub.event("queue:join", schemas.QueueJoin, ("taxpayer",), self.queue_join)
        hub.event("queue:leave", schemas.QueueLeave, ("taxpayer",), self.queue_leave)
        hub.event("agent:status", schemas.AgentStatusChange, ("agent",), self.agent_status_change)
        hub.event("offer:accept", schemas.OfferAccept, ("agent",), self.offer_accept)
        hub.event("offer:reject", schemas.OfferReject, ("agent",), self.offer_reject)
        hub.connect_hooks.append(self.on_connect)
        hub.disconnect_hooks.append(self.on_disconnect)

    async def on_connect(self, conn: Connection) -> None:
        if conn.principal.role == "agent":
            staff = await self.hub.accounts.staff(conn.principal.subject)
            if staff is not None:
                await self.engine.agent_online(
                    AgentState(
                        id=staff.id,
                        name=staff.display_name,
                        skills=dict(staff.skills),
                        languages=frozenset(staff.languages),
                    )
                )

    async def on_disconnect(self, conn: Connection) -> None:
        for ticket_id, owner in list(self.ticket_sids.items()):
            if owner == conn.sid:
                await self._abandon(ticket_id, conn.principal.subject, "disconnected")
        subject = conn.principal.subject
        if conn.principal.role == "agent" and not self.hub.has_connection(subject):
            await self.engine.agent_gone(subject)

    # ---- QueueEvents -------------------------------------------------------------------

    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None:
        await self.hub.records.offered(ticket.session_id, agent.id, at(offer.created_at))
        payload = {
            "offer_id": offer.id,
            "ticket": ticket_view(ticket, offer.created_at),
            "expires_in_s": round(offer.expires_at - offer.created_at, 1),
        }
        await self.hub.send_user("offer:new", payload, agent.id)

    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None:
        await self.hub.send_user(
            "offer:revoked", {"offer_id": offer_id, "reason": reason}, agent_id
        )

    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None:
        sid = self.ticket_sids.get(ticket.id)
        if sid is not None:
            payload = {"ticket_id": ticket.id, "position": position, "eta_s": eta_s}
            await self.hub.send("queue:update", payload, [sid])

    async def agent_status(self, agent: AgentState) -> None:
        payload = {"status": agent.status, "reason": agent.reason}
        await self.hub.send_user("agent:status", payload, agent.id)
        when = at(time.time())
        for hook in self.hub.agent_state_hooks:
            await hook(agent.id, agent.status, agent.reason, when)

    # ---- client events -----------------------------------------------------------------

    async def queue_join(self, conn: Connection, p: schemas.QueueJoin) -> Ack:
        subject = conn.principal.subject
        if p.category not in self.hub.catalog.categories:
            raise DomainError("unknown_category", f"no business category {p.category!r}")
        if await self.sessions.session_id_of(subject) is not None:
            raise DomainError("in_session", "you are in a video session already")
        if self.engine.waiting_ticket_of(subject) is not None:
            raise DomainError("already_queued", "you are already waiting in the queue")
        now = time.time()
        ticket = Ticket(
            id=str(uuid.uuid4()),
            session_id=str(uuid.uuid4()),
            taxpayer_id=subject,
            category=p.category,
            language=p.language,
            channel=p.channel,
            question=p.question,
            joined_at=now,
        )
        await self.hub.records.open(
            session_id=ticket.session_id,
            ticket_id=ticket.id,
            taxpayer_id=subject,
            category=p.category,
            language=p.language,
            channel=p.channel,
            question=p.question,
            joined_at=at(now),
        )
        self.ticket_sids[ticket.id] = conn.sid
        try:
            position, eta = await self.engine.join(ticket)
        except DomainError:
            self.ticket_sids.pop(ticket.id, None)
            await self.hub.records.abandoned(ticket.session_id, at(time.time()), "refused")
            raise
        return {"ticket_id": ticket.id, "position": position, "eta_s": eta}

    async def queue_leave(self, conn: Connection, p: schemas.QueueLeave) -> Ack:
        await self._abandon(p.ticket_id, conn.principal.subject, "left")
        return {}

    async def _abandon(self, ticket_id: str, taxpayer_id: str, reason: str) -> None:
        ticket = await self.engine.leave(ticket_id, taxpayer_id)
        sid = self.ticket_sids.pop(ticket_id, None)
        await self.hub.records.abandoned(ticket.session_id, at(time.time()), reason)
        if sid is not None and reason != "disconnected":
            await self.hub.send("queue:left", {"ticket_id": ticket_id, "reason": reason}, [sid])

    async def agent_status_change(self, conn: Connection, p: schemas.AgentStatusChange) -> Ack:
        agent = await self.engine.set_status(conn.principal.subject, p.status, p.reason)
        return {"status": agent.status}

    async def offer_accept(self, conn: Connection, p: schemas.OfferAccept) -> Ack:
        ticket = await self.engine.accept(conn.principal.subject, p.offer_id)
        taxpayer_sid = self.ticket_sids.pop(ticket.id, None)
        session_id = await self.sessions.start(ticket, taxpayer_sid, conn)
        return {"session_id": session_id}

    async def offer_reject(self, conn: Connection, p: schemas.OfferReject) -> Ack:
        await self.engine.reject(conn.principal.subject, p.offer_id)
        return {}
