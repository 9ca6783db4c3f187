"""Live sessions: pairing at accept, the WebRTC signal relay (only inside a session), hang-up,
drops, and the agent's summary and the taxpayer's rating."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from signaling import schemas
from signaling.hub import Ack, Connection, Hub, at
from signaling.queueing import ticket_view
from vtax.errors import DomainError
from vtax.ice import ice_servers
from vtax.queue import Ticket
from vtax.review.records import Actor


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

    def other_sids(self, participant_id: str) -> list[str]:
        return [
            p.sid
            for p in self.participants.values()
            if p.id != participant_id and p.sid is not None
        ]


class SessionRelay:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.sessions: dict[str, LiveSession] = {}
        self.session_of: dict[str, str] = {}  # subject (taxpayer/agent id) -> live session id
        # Called with the agent id when a session ends (the queue puts the agent in wrap-up).
        self.on_ended: list[Callable[[str], Awaitable[None]]] = []
        # Called with the session once both sides got `session:start` (e.g. recording).
        self.on_started: list[Callable[[LiveSession], Awaitable[None]]] = []
        # Called with (session, reason) after a session ended (e.g. stop recording).
        self.on_session_ended: list[Callable[[LiveSession, str], Awaitable[None]]] = []
        hub.event(
            "rtc:signal", schemas.RtcSignal, ("taxpayer", "agent", "recorder"), self.rtc_signal
        )
        hub.event("session:end", schemas.SessionEnd, ("taxpayer", "agent"), self.session_end)
        hub.disconnect_hooks.append(self.on_disconnect)

    def live_session_of(self, subject: str) -> LiveSession | None:
        return self.sessions.get(self.session_of.get(subject, ""))

    async def start(self, ticket: Ticket, taxpayer_sid: str | None, agent_conn: Connection) -> str:
        """Pair the taxpayer and the agent who accepted; both get `session:start`."""
        agent_id = agent_conn.principal.subject
        now = time.time()
        await self.hub.records.answered(ticket.session_id, agent_id, at(now))
        staff = await self.hub.accounts.staff(agent_id)
        live = LiveSession(ticket.session_id, ticket, agent_id)
        taxpayer = Participant(
            "p-" + secrets.token_hex(6), "taxpayer", ticket.taxpayer_id, "", taxpayer_sid
        )
        agent = Participant(
            "p-" + secrets.token_hex(6),
            "agent",
            agent_id,
            staff.display_name if staff else "",
            agent_conn.sid,
        )
        live.participants = {taxpayer.id: taxpayer, agent.id: agent}
        self.sessions[live.id] = live
        self.session_of[ticket.taxpayer_id] = live.id
        self.session_of[agent_id] = live.id
        view = ticket_view(ticket, now)
        for me, peer in ((taxpayer, agent), (agent, taxpayer)):
            if me.sid is None:
                continue
            payload = {
                "session_id": live.id,
                "participant_id": me.id,
                "role": me.role,
                "polite": me.role == "taxpayer",
                "peer": {
                    "participant_id": peer.id,
                    "role": peer.role,
                    "display_name": peer.display_name,
                },
                "ice_servers": ice_servers(self.hub.settings, me.id),
                "ticket": view,
            }
            await self.hub.send("session:start", payload, [me.sid])
        if taxpayer_sid is None:  # the taxpayer vanished between offer and accept
            await self.end(live, "disconnected", "dropped", None)
        else:
            for started in self.on_started:
                await started(live)
        return live.id

    async def add_participant(
        self, session_id: str, role: str, subject: str, sid: str, display_name: str = ""
    ) -> Participant:
        """Add a hidden participant (the recorder) to a live session; the media participants
        get `session:participant {state: "joined"}` and open a peer connection to it."""
        live = self.sessions.get(session_id)
        if live is None:
            raise DomainError("not_found", "no such live session")
        participant = Participant("p-" + secrets.token_hex(6), role, subject, display_name, sid)
        live.participants[participant.id] = participant
        await self._announce(live, participant, "joined")
        return participant

    async def remove_participant(self, session_id: str, participant_id: str) -> None:
        live = self.sessions.get(session_id)
        participant = live.participants.pop(participant_id, None) if live else None
        if live is not None and participant is not None:
            await self._announce(live, participant, "left")

    async def _announce(self, live: LiveSession, participant: Participant, state: str) -> None:
        payload = {
            "session_id": live.id,
            "participant_id": participant.id,
            "role": participant.role,
            "state": state,
        }
        await self.hub.send("session:participant", payload, live.other_sids(participant.id))

    async def on_disconnect(self, conn: Connection) -> None:
        live = self.live_session_of(conn.principal.subject)
        if live is None:
            return
        me = live.participant_of(conn.principal.subject)
        if me is not None and me.sid == conn.sid:
            await self.hub.send(
                "session:peer", {"session_id": live.id, "state": "left"}, live.other_sids(me.id)
            )
            await self.end(live, "disconnected", "dropped", me)

    def _participant(self, conn: Connection, session_id: str) -> tuple[LiveSession, Participant]:
        live = self.sessions.get(session_id)
        me = live.participant_of(conn.principal.subject) if live else None
        if live is None or me is None or me.sid != conn.sid:
            raise DomainError("not_in_session", "you are not a participant of that live session")
        return live, me

    async def rtc_signal(self, conn: Connection, p: schemas.RtcSignal) -> Ack:
        live, me = self._participant(conn, p.session_id)
        if p.to is not None and (p.to == me.id or p.to not in live.participants):
            raise DomainError("not_in_session", "`to` is not another participant of the session")
        if p.to is not None:
            target = live.participants[p.to].sid
            targets = [target] if target is not None else []
        else:
            targets = live.other_sids(me.id)
        live.seq += 1
        message = {
            "session_id": live.id,
            "from": me.id,
            "seq": live.seq,
            "type": p.type,
            "data": p.data,
        }
        await self.hub.send("rtc:signal", message, targets)
        return {"seq": live.seq}

    async def session_end(self, conn: Connection, p: schemas.SessionEnd) -> Ack:
        live, me = self._participant(conn, p.session_id)
        await self.end(live, p.reason or "hangup", "completed", me)
        return {}

    async def end(
        self, live: LiveSession, reason: str, outcome: str, by: Participant | None
    ) -> None:
        if self.sessions.pop(live.id, None) is None:
            return
        for participant in live.participants.values():
            self.session_of.pop(participant.subject, None)
        actor = Actor(by.role, by.subject) if by else Actor("system", None)
        await self.hub.records.ended(live.id, at(time.time()), outcome, reason, actor)
        for callback in self.on_ended:
            await callback(live.agent_id)
        sids = [p.sid for p in live.participants.values() if p.sid is not None]
        payload = {"session_id": live.id, "reason": reason, "ended_by": by.id if by else None}
        await self.hub.send("session:end", payload, sids)
        for ended in self.on_session_ended:
            await ended(live, reason)
