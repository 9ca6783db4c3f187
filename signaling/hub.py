"""Socket.IO signaling: authenticates connections, validates every event, drives the queue
engine and relays WebRTC signals inside a session. The only module that knows Socket.IO."""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError

from signaling import schemas
from vtax.accounts import Accounts
from vtax.auth import Principal, TokenIssuer, Unauthorized
from vtax.catalog import Catalog
from vtax.config import Settings
from vtax.errors import DomainError
from vtax.ice import ice_servers
from vtax.queue import AgentState, Offer, QueueEngine, Ticket
from vtax.review.records import Actor, SessionRecords

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
Ack = dict[str, Any]


def error(code: str, message: str, **extra: Any) -> Ack:
    return {"ok": False, "error": {"code": code, "message": message, **extra}}


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()]


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass
class Connection:
    sid: str
    principal: Principal


@dataclass
class Participant:
    id: str
    role: str
    subject: str
    display_name: str
    sid: str | None


@dataclass
class LiveSession:
    id: str
    ticket: Ticket
    agent_id: str
    participants: dict[str, Participant] = field(default_factory=dict)
    seq: int = 0

    def participant_of(self, subject: str) -> Participant | None:
        return next((p for p in self.participants.values() if p.subject == subject), None)


class Hub:
    """Implements the queue's events towards clients and the client events towards the queue."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        settings: Settings,
        issuer: TokenIssuer,
        accounts: Accounts,
        records: SessionRecords,
        catalog: Catalog,
    ) -> None:
        self.sio = sio
        self.settings = settings
        self.issuer = issuer
        self.accounts = accounts
        self.records = records
        self.catalog = catalog
        self.queue = QueueEngine(
            self,
            offer_timeout_s=settings.offer_timeout_s,
            wrapup_s=settings.wrapup_s,
            handle_s=settings.default_handle_s,
        )
        self.connections: dict[str, Connection] = {}
        self.ticket_sids: dict[str, str] = {}  # ticket id -> the taxpayer connection waiting
        self.sessions: dict[str, LiveSession] = {}
        self.session_of: dict[str, str] = {}  # subject (taxpayer/agent id) -> live session id
        self._register()

    # ---- plumbing ----------------------------------------------------------------------

    def _register(self) -> None:
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on("*", self.on_unknown)
        self._event("queue:join", schemas.QueueJoin, ("taxpayer",), self.queue_join)
        self._event("queue:leave", schemas.QueueLeave, ("taxpayer",), self.queue_leave)
        self._event("agent:status", schemas.AgentStatusChange, ("agent",), self.agent_status_change)
        self._event("offer:accept", schemas.OfferAccept, ("agent",), self.offer_accept)
        self._event("offer:reject", schemas.OfferReject, ("agent",), self.offer_reject)
        self._event("rtc:signal", schemas.RtcSignal, ("taxpayer", "agent"), self.rtc_signal)
        self._event("session:end", schemas.SessionEnd, ("taxpayer", "agent"), self.session_end)
        self._event("session:summary", schemas.SessionSummaryIn, ("agent",), self.session_summary)
        self._event("session:rate", schemas.SessionRate, ("taxpayer",), self.session_rate)

    def _event(
        self,
        name: str,
        schema: type[M],
        roles: tuple[str, ...],
        fn: Callable[[Connection, M], Awaitable[Ack]],
    ) -> None:
        limit = self.settings.max_event_bytes

        async def handler(sid: str, *args: Any) -> Ack:
            conn = self.connections.get(sid)
            if conn is None:
                return error("unauthorized", "not connected")
            if conn.principal.expires_at < time.time():
                return error("unauthorized", "the token has expired; sign in again")
            if conn.principal.role not in roles:
                return error("forbidden", f"{name} is not allowed for role {conn.principal.role}")
            if len(args) != 1:
                return error("invalid_payload", f"{name} takes exactly one payload object")
            if len(json.dumps(args[0], separators=(",", ":"))) > limit:
                return error("payload_too_large", f"the payload is larger than {limit} bytes")
            try:
                payload = schema.model_validate(args[0])
            except ValidationError as exc:
                return error(
                    "invalid_payload",
                    f"{name}: the payload is not valid",
                    details=validation_details(exc),
                )
            try:
                return {"ok": True, **await fn(conn, payload)}
            except DomainError as exc:
                return {"ok": False, "error": exc.as_dict()}
            except Exception:
                incident = uuid.uuid4().hex[:12]
                log.exception("event %s failed (incident %s)", name, incident)
                return error("internal", f"internal error, incident {incident}")

        self.sio.on(name, handler)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = self.issuer.verify(token)
            if principal.role == "agent":
                staff = await self.accounts.staff(principal.subject)
                if staff is None or staff.role != "agent":
                    raise Unauthorized("the account is disabled")
                await self.queue.agent_online(
                    AgentState(
                        id=staff.id,
                        name=staff.display_name,
                        skills=dict(staff.skills),
                        languages=frozenset(staff.languages),
                    )
                )
        except Unauthorized as exc:
            refusal = socketio.exceptions.ConnectionRefusedError(str(exc))
            # Top-level `code` for Python clients, `data.code` for the JS client's err.data.
            refusal.error_args = {
                "message": str(exc),
                "code": "unauthorized",
                "data": {"code": "unauthorized", "message": str(exc)},
            }
            raise refusal from None
        self.connections[sid] = Connection(sid, principal)
        await self.sio.enter_room(sid, f"user:{principal.subject}")

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self.connections.pop(sid, None)
        if conn is None:
            return
        subject = conn.principal.subject
        for ticket_id, owner in list(self.ticket_sids.items()):
            if owner == sid:
                await self._abandon(ticket_id, subject, "disconnected")
        live = self.sessions.get(self.session_of.get(subject, ""))
        if live is not None:
            me = live.participant_of(subject)
            if me is not None and me.sid == sid:
                await self._send(
                    "session:peer",
                    {"session_id": live.id, "state": "left"},
                    self._other_sids(live, me.id),
                )
                await self._end(live, "disconnected", "dropped", me)
        if conn.principal.role == "agent" and not self._has_other_connection(subject):
            await self.queue.agent_gone(subject)

    async def on_unknown(self, event: str, sid: str, *args: Any) -> Ack:
        return error("unknown_event", f"there is no event {event[:64]!r}")

    async def _send(self, event: str, data: dict[str, Any], sids: list[str]) -> None:
        """Emit to exactly these connections. (python-socketio broadcasts on `to=[]`.)"""
        if sids:
            await self.sio.emit(event, data, to=sids)

    def _has_other_connection(self, subject: str) -> bool:
        return any(c.principal.subject == subject for c in self.connections.values())

    def _other_sids(self, live: LiveSession, participant_id: str) -> list[str]:
        return [
            p.sid
            for p in live.participants.values()
            if p.id != participant_id and p.sid is not None
        ]

    # ---- QueueEvents: the engine tells clients -----------------------------------------

    async def offer_new(self, agent: AgentState, offer: Offer, ticket: Ticket) -> None:
        await self.records.offered(ticket.session_id, agent.id, at(offer.created_at))
        await self.sio.emit(
            "offer:new",
            {
                "offer_id": offer.id,
                "ticket": self._ticket_view(ticket, offer.created_at),
                "expires_in_s": round(offer.expires_at - offer.created_at, 1),
            },
            room=f"user:{agent.id}",
        )

    async def offer_revoked(self, agent_id: str, offer_id: str, reason: str) -> None:
        await self.sio.emit(
            "offer:revoked", {"offer_id": offer_id, "reason": reason}, room=f"user:{agent_id}"
        )

    async def queue_update(self, ticket: Ticket, position: int, eta_s: float) -> None:
        sid = self.ticket_sids.get(ticket.id)
        if sid is not None:
            await self.sio.emit(
                "queue:update",
                {"ticket_id": ticket.id, "position": position, "eta_s": eta_s},
                to=sid,
            )

    async def agent_status(self, agent: AgentState) -> None:
        await self.sio.emit(
            "agent:status",
            {"status": agent.status, "reason": agent.reason},
            room=f"user:{agent.id}",
        )

    @staticmethod
    def _ticket_view(ticket: Ticket, now: float) -> dict[str, Any]:
        return {
            "ticket_id": ticket.id,
            "category": ticket.category,
            "language": ticket.language,
            "channel": ticket.channel,
            "question": ticket.question,
            "waited_s": round(max(now - ticket.joined_at, 0.0), 1),
        }

    # ---- client events -----------------------------------------------------------------

    async def queue_join(self, conn: Connection, p: schemas.QueueJoin) -> Ack:
        subject = conn.principal.subject
        if p.category not in self.catalog.categories:
            raise DomainError("unknown_category", f"no business category {p.category!r}")
        if subject in self.session_of:
            raise DomainError("in_session", "you are in a video session already")
        if self.queue.waiting_ticket_of(subject) is not None:
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
        await self.records.open(
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
            position, eta = await self.queue.join(ticket)
        except DomainError:
            self.ticket_sids.pop(ticket.id, None)
            await self.records.abandoned(ticket.session_id, at(time.time()), "refused")
            raise
        return {"ticket_id": ticket.id, "position": position, "eta_s": eta}

    async def queue_leave(self, conn: Connection, p: schemas.QueueLeave) -> Ack:
        await self._abandon(p.ticket_id, conn.principal.subject, "left")
        return {}

    async def _abandon(self, ticket_id: str, taxpayer_id: str, reason: str) -> None:
        ticket = await self.queue.leave(ticket_id, taxpayer_id)
        sid = self.ticket_sids.pop(ticket_id, None)
        await self.records.abandoned(ticket.session_id, at(time.time()), reason)
        if sid is not None and reason != "disconnected":
            await self.sio.emit("queue:left", {"ticket_id": ticket_id, "reason": reason}, to=sid)

    async def agent_status_change(self, conn: Connection, p: schemas.AgentStatusChange) -> Ack:
        agent = await self.queue.set_status(conn.principal.subject, p.status, p.reason)
        return {"status": agent.status}

    async def offer_accept(self, conn: Connection, p: schemas.OfferAccept) -> Ack:
        agent_id = conn.principal.subject
        ticket = await self.queue.accept(agent_id, p.offer_id)
        taxpayer_sid = self.ticket_sids.pop(ticket.id, None)
        now = time.time()
        await self.records.answered(ticket.session_id, agent_id, at(now))
        staff = await self.accounts.staff(agent_id)
        live = LiveSession(ticket.session_id, ticket, agent_id)
        taxpayer = Participant(
            "p-" + secrets.token_hex(6), "taxpayer", ticket.taxpayer_id, "", taxpayer_sid
        )
        agent = Participant(
            "p-" + secrets.token_hex(6),
            "agent",
            agent_id,
            staff.display_name if staff else "",
            conn.sid,
        )
        live.participants = {taxpayer.id: taxpayer, agent.id: agent}
        self.sessions[live.id] = live
        self.session_of[ticket.taxpayer_id] = live.id
        self.session_of[agent_id] = live.id
        view = self._ticket_view(ticket, now)
        for me, peer in ((taxpayer, agent), (agent, taxpayer)):
            if me.sid is None:
                continue
            await self.sio.emit(
                "session:start",
                {
                    "session_id": live.id,
                    "participant_id": me.id,
                    "role": me.role,
                    "polite": me.role == "taxpayer",
                    "peer": {
                        "participant_id": peer.id,
                        "role": peer.role,
                        "display_name": peer.display_name,
                    },
                    "ice_servers": ice_servers(self.settings, me.id),
                    "ticket": view,
                },
                to=me.sid,
            )
        if taxpayer_sid is None:  # the taxpayer vanished between offer and accept
            await self._end(live, "disconnected", "dropped", None)
        return {"session_id": live.id}

    async def offer_reject(self, conn: Connection, p: schemas.OfferReject) -> Ack:
        await self.queue.reject(conn.principal.subject, p.offer_id)
        return {}

    def _live_participant(
        self, conn: Connection, session_id: str
    ) -> tuple[LiveSession, Participant]:
        live = self.sessions.get(session_id)
        me = live.participant_of(conn.principal.subject) if live else None
        if live is None or me is None or me.sid != conn.sid:
            raise DomainError("not_in_session", "you are not a participant of that live session")
        return live, me

    async def rtc_signal(self, conn: Connection, p: schemas.RtcSignal) -> Ack:
        live, me = self._live_participant(conn, p.session_id)
        if p.to is not None and (p.to == me.id or p.to not in live.participants):
            raise DomainError("not_in_session", "`to` is not another participant of the session")
        targets = [live.participants[p.to].sid] if p.to else self._other_sids(live, me.id)
        live.seq += 1
        message = {
            "session_id": live.id,
            "from": me.id,
            "seq": live.seq,
            "type": p.type,
            "data": p.data,
        }
        for sid in targets:
            if sid is not None:
                await self.sio.emit("rtc:signal", message, to=sid)
        return {"seq": live.seq}

    async def session_end(self, conn: Connection, p: schemas.SessionEnd) -> Ack:
        live, me = self._live_participant(conn, p.session_id)
        await self._end(live, p.reason or "hangup", "completed", me)
        return {}

    async def _end(
        self, live: LiveSession, reason: str, outcome: str, by: Participant | None
    ) -> None:
        if self.sessions.pop(live.id, None) is None:
            return
        for participant in live.participants.values():
            self.session_of.pop(participant.subject, None)
        actor = Actor(by.role, by.subject) if by else Actor("system", None)
        await self.records.ended(live.id, at(time.time()), outcome, reason, actor)
        await self.queue.session_ended(live.agent_id)
        sids = [p.sid for p in live.participants.values() if p.sid is not None]
        await self._send(
            "session:end",
            {"session_id": live.id, "reason": reason, "ended_by": by.id if by else None},
            sids,
        )

    async def session_summary(self, conn: Connection, p: schemas.SessionSummaryIn) -> Ack:
        known = self.catalog.items_by_category
        unknown = [i for i in p.items if not any(i in items for items in known.values())]
        if unknown:
            raise DomainError("invalid_payload", f"unknown catalog items: {', '.join(unknown)}")
        await self.records.save_summary(
            p.session_id,
            conn.principal.subject,
            at(time.time()),
            asked=p.asked,
            handled=p.handled,
            result=p.result,
            items=p.items,
        )
        return {}

    async def session_rate(self, conn: Connection, p: schemas.SessionRate) -> Ack:
        await self.records.rate(
            p.session_id, conn.principal.subject, at(time.time()), score=p.score, comment=p.comment
        )
        return {}
