"""Queue events: taxpayers join, rejoin and leave, agents change status and answer offers;
the engine's notifications go back out as Socket.IO events.

Everything is sent to user rooms (or the supervisors' room) through the Socket.IO manager,
so it reaches the client on whichever node it is connected to."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from signaling import schemas
from signaling.hub import Ack, Connection, Hub, at
from vtax.errors import DomainError
from vtax.queue import AgentState, Offer, QueueBook, QueueEngine, Ticket
from vtax.queue.kv import KV
from vtax.queue.memory import MemoryKV
from vtax.queue.model import PRIORITY_CLASSES, TRANSFER_PRIORITY
from vtax.queue.redis_store import RedisKV
from vtax.review.audit import Actor
from vtax.review.transfers import link_transfer

if TYPE_CHECKING:
    from signaling.sessions import SessionRelay

SUPERVISORS_ROOM = "role:supervisor"


def ticket_view(ticket: Ticket, now: float) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "category": ticket.category,
        "language": ticket.language,
        "channel": ticket.channel,
        "question": ticket.question,
        "waited_s": round(max(now - ticket.joined_at, 0.0), 1),
    }


def make_engine(events: Any, settings: Any, categories: list[str]) -> QueueEngine:
    """The engine on the backend the settings choose: Redis when `redis_url` is set."""
    kv: KV = (
        RedisKV.from_url(settings.redis_url, settings.redis_prefix, settings.redis_max_connections)
        if settings.redis_url
        else MemoryKV()
    )
    book = QueueBook.load(settings.queues_file) if settings.queues_file else QueueBook()
    book.check_categories(categories)
    return QueueEngine(
        events,
        kv=kv,
        book=book,
        categories=categories,
        offer_timeout_s=settings.offer_timeout_s,
        wrapup_s=settings.wrapup_s,
        handle_s=settings.default_handle_s,
        grace_s=settings.queue_grace_s,
        missed_offers_limit=settings.missed_offers_limit,
        reject_delay_s=settings.reject_delay_s,
        no_answer_delay_s=settings.no_answer_delay_s,
        update_interval_s=settings.queue_update_interval_s,
        tick_s=settings.queue_tick_s,
        stats_interval_s=settings.stats_push_s,
        timezone=settings.queue_timezone,
    )


class QueueHandlers:
    """Implements `QueueEvents` towards clients and the queue's client events."""

    def __init__(self, hub: Hub, sessions: SessionRelay) -> None:
        self.hub = hub
        self.sessions = sessions
        self.engine = make_engine(self, hub.settings, sorted(hub.catalog.categories))
        self.on_dispatch: Callable[[float], None] | None = None  # /metrics histogram
        self.last_stats: dict[str, Any] = {}
        hub.event("queue:join", schemas.QueueJoinIn, ("taxpayer",), self.queue_join, limit="join")
        hub.event(
            "queue:rejoin", schemas.QueueRejoin, ("taxpayer",), self.queue_rejoin, limit="join"
        )
        hub.event("queue:leave", schemas.QueueLeave, ("taxpayer",), self.queue_leave)
        hub.event("agent:status", schemas.AgentStatusChange, ("agent",), self.agent_status_change)
        hub.event("offer:accept", schemas.OfferAccept, ("agent",), self.offer_accept)
        hub.event("offer:reject", schemas.OfferReject, ("agent",), self.offer_reject)
        hub.event("session:transfer", schemas.SessionTransfer, ("agent",), self.session_transfer)
        hub.connect_hooks.append(self.on_connect)
        hub.disconnect_hooks.append(self.on_disconnect)

    async def on_connect(self, conn: Connection) -> None:
        self.engine.start()
        role = conn.principal.role
        if role == "agent":
            staff = await self.hub.accounts.staff(conn.principal.subject)
            if staff is not None:
                profile = AgentState(
                    id=staff.id,
                    name=staff.display_name,
                    skills=dict(staff.skills),
                    languages=frozenset(staff.languages),
                )
                await self.engine.agent_online(profile, conn.sid)
        elif role == "supervisor":
            await self.hub.sio.enter_room(conn.sid, SUPERVISORS_ROOM)

    async def on_disconnect(self, conn: Connection) -> None:
        subject = conn.principal.subject
        if conn.principal.role == "taxpayer":
            await self.engine.taxpayer_dropped(subject, conn.sid)
        elif conn.principal.role == "agent":
            await self.engine.agent_connection_closed(subject, conn.sid)

    # ---- QueueEvents -------------------------------------------------------------------

    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None:
        await self.hub.records.offered(ticket.session_id, agent.id, at(offer.created_at))
        payload = {
            "offer_id": offer.id,
            "ticket": ticket_view(ticket, offer.created_at),
            "expires_in_s": round(offer.expires_at - offer.created_at, 1),
        }
        await self.hub.send_user("offer:new", payload, agent.id)
        if self.on_dispatch is not None:
            # From the moment a match was possible (the later of the ticket joining and the
            # agent becoming available) to the offer being sent out.
            ready = max(ticket.joined_at, agent.idle_since)
            self.on_dispatch(max(time.time() - ready, 0.0))

    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None:
        await self.hub.send_user(
            "offer:revoked", {"offer_id": offer_id, "reason": reason}, agent_id
        )

    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None:
        payload = {"ticket_id": ticket.id, "position": position, "eta_s": eta_s}
        await self.hub.send_user("queue:update", payload, ticket.taxpayer_id)

    async def queue_left(self, ticket: Ticket, reason: str, when: float) -> None:
        await self.hub.records.abandoned(ticket.session_id, at(when), reason)
        payload = {"ticket_id": ticket.id, "reason": reason}
        await self.hub.send_user("queue:left", payload, ticket.taxpayer_id)

    async def agent_status(self, agent: AgentState) -> None:
        payload = {"status": agent.status, "reason": agent.reason}
        await self.hub.send_user("agent:status", payload, agent.id)
        when = at(time.time())
        for hook in self.hub.agent_state_hooks:
            await hook(agent.id, agent.status, agent.reason, when)

    async def queue_stats(self, stats: dict[str, Any]) -> None:
        self.last_stats = stats  # /metrics reads queue depths from the latest push
        await self.hub.sio.emit("queue:stats", stats, room=SUPERVISORS_ROOM)

    # ---- client events -----------------------------------------------------------------

    async def queue_join(self, conn: Connection, p: schemas.QueueJoinIn) -> Ack:
        subject = conn.principal.subject
        if p.category not in self.hub.catalog.categories:
            raise DomainError("unknown_category", f"no business category {p.category!r}")
        if p.language not in self.hub.catalog.languages:
            raise DomainError("unknown_language", f"no service in language {p.language!r}")
        if await self.sessions.session_id_of(subject) is not None:
            raise DomainError("in_session", "you are in a video session already")
        held = await self.engine.waiting_ticket(subject)
        if held is not None:
            raise DomainError(
                "already_queued",
                "you are already waiting in the queue; send queue:rejoin with your ticket_id",
            )
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
            priority=PRIORITY_CLASSES[p.priority],
            conn_id=conn.sid,
        )
        position, eta = await self._enqueue(ticket)
        return {"ticket_id": ticket.id, "position": position, "eta_s": eta}

    async def _enqueue(self, ticket: Ticket) -> tuple[int, float]:
        """Open the ticket's session record (the 'ask') and queue it; a refusal of the queue
        is recorded (abandoned, `refused`) and raised."""
        await self.hub.records.open(
            session_id=ticket.session_id,
            ticket_id=ticket.id,
            taxpayer_id=ticket.taxpayer_id,
            category=ticket.category,
            language=ticket.language,
            channel=ticket.channel,
            question=ticket.question,
            joined_at=at(ticket.joined_at),
        )
        try:
            return await self.engine.join(ticket)
        except DomainError:
            await self.hub.records.abandoned(ticket.session_id, at(time.time()), "refused")
            raise

    async def queue_rejoin(self, conn: Connection, p: schemas.QueueRejoin) -> Ack:
        ticket, position, eta = await self.engine.rejoin(
            p.ticket_id, conn.principal.subject, conn.sid
        )
        return {"ticket_id": ticket.id, "position": position, "eta_s": eta}

    async def queue_leave(self, conn: Connection, p: schemas.QueueLeave) -> Ack:
        await self.engine.leave(p.ticket_id, conn.principal.subject)
        return {}

    async def agent_status_change(self, conn: Connection, p: schemas.AgentStatusChange) -> Ack:
        agent = await self.engine.set_status(conn.principal.subject, p.status, p.reason)
        return {"status": agent.status}

    async def offer_accept(self, conn: Connection, p: schemas.OfferAccept) -> Ack:
        ticket = await self.engine.accept(conn.principal.subject, p.offer_id)
        # The taxpayer's connection may be on another node: sessions reach it by its sid.
        session_id = await self.sessions.start(ticket, ticket.conn_id, conn)
        return {"session_id": session_id}

    async def offer_reject(self, conn: Connection, p: schemas.OfferReject) -> Ack:
        await self.engine.reject(conn.principal.subject, p.offer_id)
        return {}

    async def session_transfer(self, conn: Connection, p: schemas.SessionTransfer) -> Ack:
        """The agent hands the taxpayer to another queue: this session ends `transferred`, a
        new session record and ticket start in the target queue, served with priority (level
        1, like the declared needs) so the taxpayer does not start again from the back."""
        participant_id = await self.sessions.bound_participant(conn, p.session_id)
        live = await self.sessions.get(p.session_id)
        if live is None:
            raise DomainError("not_in_session", "that session is over")
        me = live.participants.get(participant_id)
        if me is None or me.role != "agent" or live.agent_id != conn.principal.subject:
            raise DomainError("forbidden", "only the session's agent may transfer it")
        if p.category not in self.hub.catalog.categories:
            raise DomainError("unknown_category", f"no business category {p.category!r}")
        info = live.info
        language = p.language or str(info.get("language", ""))
        if language not in self.hub.catalog.languages:
            raise DomainError("unknown_language", f"no service in language {language!r}")
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
        # The target queue may refuse (closed, full, unstaffed): then the call goes on.
        position, eta = await self._enqueue(ticket)
        await link_transfer(
            self.hub.records.sessionmaker, p.session_id, ticket.session_id, at(now),
            Actor("agent", conn.principal.subject),
            {"category": p.category, "language": language, "note": p.note},
        )  # fmt: skip
        await self.sessions.end(p.session_id, "transferred", "transferred", me)
        await self.hub.send(
            "queue:transferred",
            {
                "from_session_id": p.session_id,
                "session_id": ticket.session_id,
                "ticket_id": ticket.id,
                "category": ticket.category,
                "language": ticket.language,
                "note": p.note,
                "position": position,
                "eta_s": eta,
            },
            [taxpayer.sid],
        )
        return {"session_id": ticket.session_id, "ticket_id": ticket.id, "position": position}

    def depth_by_queue(self) -> dict[str, int]:
        """Waiting tickets per queue, as of the latest statistics push."""
        queues = self.last_stats.get("queues", {})
        return {name: int(q.get("waiting", 0)) for name, q in queues.items()}
