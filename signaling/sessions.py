"""Live sessions: pairing at accept, the WebRTC signal relay (only inside a session), resume
after a drop with replay of missed signals, reconnect grace, node failure, hang-up.

State lives in a `LiveStore` (memory, or Redis when nodes scale out); what this module keeps
itself is only about connections on this node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from signaling import schemas
from signaling.hub import Ack, Connection, Hub, at
from signaling.queueing import ticket_view
from vtax.errors import DomainError
from vtax.ice import ice_servers
from vtax.live import LiveParticipant, LiveSession, LiveStore
from vtax.queue import Ticket
from vtax.review.records import Actor

log = logging.getLogger(__name__)
MEDIA_ROLES = ("taxpayer", "agent")


def new_participant_id() -> str:
    return "p-" + secrets.token_hex(6)


class SessionRelay:
    def __init__(self, hub: Hub, store: LiveStore, node_id: str) -> None:
        self.hub = hub
        self.store = store
        self.node_id = node_id
        # connection sid (on this node) -> {session id: participant id}
        self.bound: dict[str, dict[str, str]] = {}
        # Called with the agent id when a session ends (the queue puts the agent in wrap-up).
        self.on_ended: list[Callable[[str], Awaitable[None]]] = []
        # Called with the session once both sides got `session:start` (e.g. recording).
        self.on_started: list[Callable[[LiveSession], Awaitable[None]]] = []
        # Called with (session, reason) after a session ended (e.g. stop recording).
        self.on_session_ended: list[Callable[[LiveSession, str], Awaitable[None]]] = []
        # Counters for /metrics.
        self.signals_relayed = 0
        self.resumes = 0
        self._reaper: asyncio.Task[None] | None = None
        hub.event(
            "rtc:signal",
            schemas.RtcSignal,
            (*MEDIA_ROLES, "recorder"),
            self.rtc_signal,
            limit="signal",
        )
        hub.event("session:end", schemas.SessionEnd, MEDIA_ROLES, self.session_end)
        hub.event(
            "session:resume",
            schemas.SessionResume,
            MEDIA_ROLES,
            self.session_resume,
            limit="signal",
        )
        hub.connect_hooks.append(self.on_connect)
        hub.disconnect_hooks.append(self.on_disconnect)

    # ---- lifecycle ---------------------------------------------------------------------

    def start_background(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever(), name="session-reaper")

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.store.close()

    async def _reap_forever(self, interval_s: float = 0.5) -> None:
        while True:
            try:
                await self.reap(time.time())
            except Exception:
                log.exception("session reaper failed; retrying")
            await asyncio.sleep(interval_s)

    async def reap(self, now: float) -> None:
        """Heartbeat this node; end sessions whose participant did not come back in time;
        start the grace period for participants of nodes that died without a word."""
        settings = self.hub.settings
        await self.store.node_heartbeat(self.node_id, now)
        for session_id, participant_id in await self.store.claim_expired(now):
            await self._expired(session_id, participant_id)
        for node in await self.store.claim_dead_nodes(now, settings.node_timeout_s):
            log.warning("node %s is silent; its participants may resume elsewhere", node)
            for session_id, participant_id, sid in await self.store.participants_on_node(node):
                await self._reconnecting(session_id, participant_id, sid, now)

    async def _expired(self, session_id: str, participant_id: str) -> None:
        live = await self.store.get(session_id)
        if live is None or participant_id not in live.participants:
            return
        gone = live.participants[participant_id]
        if gone.role not in MEDIA_ROLES:
            await self.remove_participant(session_id, participant_id)
            return
        log.info("participant did not come back", extra={"session_id": session_id})
        await self._send_others(
            live,
            participant_id,
            "session:peer",
            {"participant_id": participant_id, "state": "left"},
        )
        await self.end(session_id, "peer_lost", "dropped", gone)

    # ---- queries -----------------------------------------------------------------------

    async def session_id_of(self, subject: str) -> str | None:
        return await self.store.session_of(subject)

    async def get(self, session_id: str) -> LiveSession | None:
        return await self.store.get(session_id)

    # ---- start, participants -----------------------------------------------------------

    async def start(self, ticket: Ticket, taxpayer_sid: str | None, agent_conn: Connection) -> str:
        """Pair the taxpayer and the agent who accepted; both get `session:start`."""
        agent_id = agent_conn.principal.subject
        now = time.time()
        await self.hub.records.answered(ticket.session_id, agent_id, at(now))
        staff = await self.hub.accounts.staff(agent_id)
        taxpayer_node = await self.store.node_of(taxpayer_sid) if taxpayer_sid else None
        taxpayer = LiveParticipant(
            new_participant_id(),
            "taxpayer",
            ticket.taxpayer_id,
            "",
            taxpayer_sid,
            taxpayer_node or "",
        )
        agent = LiveParticipant(
            new_participant_id(),
            "agent",
            agent_id,
            staff.display_name if staff else "",
            agent_conn.sid,
            self.node_id,
        )
        live = LiveSession(
            id=ticket.session_id,
            agent_id=agent_id,
            taxpayer_id=ticket.taxpayer_id,
            started_at=now,
            participants={taxpayer.id: taxpayer, agent.id: agent},
            info=ticket_view(ticket, now),
        )
        if taxpayer_sid is None:  # gone between offer and accept: give it the grace to return
            taxpayer.state, taxpayer.deadline = (
                "reconnecting",
                now + self.hub.settings.resume_grace_s,
            )
        await self.store.create(live)
        for me in (taxpayer, agent):
            if me.sid is not None:
                if me.sid in self.hub.connections:  # bindings are kept for local connections
                    self.bound.setdefault(me.sid, {})[live.id] = me.id
                await self.hub.send("session:start", self._start_payload(live, me), [me.sid])
        for started in self.on_started:
            await started(live)
        log.info("session started", extra={"session_id": live.id})
        return live.id

    def _start_payload(self, live: LiveSession, me: LiveParticipant) -> dict[str, Any]:
        peer = next(p for p in live.media_participants() if p.id != me.id)
        return {
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
            "ticket": live.info,
        }

    async def add_participant(
        self, session_id: str, role: str, subject: str, sid: str, display_name: str = ""
    ) -> LiveParticipant:
        """Add a hidden participant (the recorder) to a live session; the media participants
        get `session:participant {state: "joined"}` and open a peer connection to it."""
        participant = LiveParticipant(
            new_participant_id(), role, subject, display_name, sid, self.node_id
        )
        if not await self.store.add_participant(session_id, participant):
            raise DomainError("not_found", "no such live session")
        self.bound.setdefault(sid, {})[session_id] = participant.id
        live = await self.store.get(session_id)
        if live is not None:
            await self._announce(live, participant, "joined")
        return participant

    async def remove_participant(self, session_id: str, participant_id: str) -> None:
        live = await self.store.get(session_id)
        if live is None or participant_id not in live.participants:
            return
        participant = live.participants[participant_id]
        await self.store.remove_participant(session_id, participant_id)
        if participant.sid is not None:
            self.bound.get(participant.sid, {}).pop(session_id, None)
        await self._announce(live, participant, "left")

    async def _announce(self, live: LiveSession, participant: LiveParticipant, state: str) -> None:
        payload = {"participant_id": participant.id, "role": participant.role, "state": state}
        await self._send_others(live, participant.id, "session:participant", payload)

    async def _send_others(
        self, live: LiveSession, participant_id: str, event: str, payload: dict[str, Any]
    ) -> None:
        sids = [
            p.sid
            for p in live.participants.values()
            if p.id != participant_id and p.sid is not None and p.state == "connected"
        ]
        await self.hub.send(event, {"session_id": live.id, **payload}, sids)

    # ---- the relay ---------------------------------------------------------------------

    async def bound_participant(self, conn: Connection, session_id: str) -> str:
        """The participant this connection speaks for in the session. Bindings made on another
        node (the agent accepted there) are looked up in the store once and cached."""
        participant_id = self.bound.get(conn.sid, {}).get(session_id)
        if participant_id is None:
            live = await self.store.get(session_id)
            found = (
                next((p for p in live.participants.values() if p.sid == conn.sid), None)
                if live is not None
                else None
            )
            if found is None:
                raise DomainError(
                    "not_in_session", "you are not a participant of that live session"
                )
            participant_id = found.id
            self.bound.setdefault(conn.sid, {})[session_id] = participant_id
        return participant_id

    async def rtc_signal(self, conn: Connection, p: schemas.RtcSignal) -> Ack:
        sender = await self.bound_participant(conn, p.session_id)
        message = {"session_id": p.session_id, "from": sender, "type": p.type, "data": p.data}
        sent = await self.store.append_signal(p.session_id, sender, p.to, message)
        if sent is None:
            raise DomainError("not_in_session", "`to` is not another participant of the session")
        self.signals_relayed += 1
        await self.hub.send("rtc:signal", message, sent.sids)
        return {"seq": sent.seq}

    async def session_resume(self, conn: Connection, p: schemas.SessionResume) -> Ack:
        """Re-attach a participant to this (new) connection and hand it what it missed."""
        live = await self.store.get(p.session_id)
        if live is None:
            raise DomainError("session_ended", "the session is over or does not exist")
        me = live.participant_of(conn.principal.subject, conn.principal.role)
        if me is None:
            raise DomainError("not_in_session", "you are not a participant of that session")
        old_sid = me.sid
        if not await self.store.bind(live.id, me.id, conn.sid, self.node_id):
            raise DomainError("session_ended", "the session is over")
        self.bound.setdefault(conn.sid, {})[live.id] = me.id
        if old_sid is not None and old_sid != conn.sid:
            self.bound.get(old_sid, {}).pop(live.id, None)
            # A page reload can leave the old connection half-alive: one connection each.
            await self.hub.sio.disconnect(old_sid)
        replay = await self.store.replay(live.id, me.id, p.last_seq)
        self.resumes += 1
        await self._send_others(
            live,
            me.id,
            "session:peer",
            {"participant_id": me.id, "state": "back", "ice_restart": True},
        )
        log.info("participant resumed", extra={"session_id": live.id})
        me.sid = conn.sid
        return {**self._start_payload(live, me), "replay": replay, "ice_restart": True}

    async def on_connect(self, conn: Connection) -> None:
        if conn.principal.role in MEDIA_ROLES:
            await self.store.register_connection(conn.sid, self.node_id)

    async def on_disconnect(self, conn: Connection) -> None:
        if conn.principal.role in MEDIA_ROLES:
            await self.store.unregister_connection(conn.sid)
        bindings = self.bound.pop(conn.sid, {})
        if conn.principal.role in MEDIA_ROLES:
            # Bound on another node (where the agent accepted) and never used here: look it up.
            session_id = await self.store.session_of(conn.principal.subject)
            if session_id is not None and session_id not in bindings:
                live = await self.store.get(session_id)
                me = (
                    live.participant_of(conn.principal.subject, conn.principal.role)
                    if live
                    else None
                )
                if me is not None and me.sid == conn.sid:
                    bindings[session_id] = me.id
        for session_id, participant_id in bindings.items():
            await self._reconnecting(session_id, participant_id, conn.sid, time.time())

    async def _reconnecting(
        self, session_id: str, participant_id: str, sid: str, now: float
    ) -> None:
        deadline = now + self.hub.settings.resume_grace_s
        if not await self.store.mark_reconnecting(session_id, participant_id, sid, deadline):
            return  # already resumed on another connection, or the session is over
        live = await self.store.get(session_id)
        if live is not None and live.participants[participant_id].role in MEDIA_ROLES:
            await self._send_others(
                live,
                participant_id,
                "session:peer",
                {"participant_id": participant_id, "state": "reconnecting"},
            )

    async def session_end(self, conn: Connection, p: schemas.SessionEnd) -> Ack:
        participant_id = await self.bound_participant(conn, p.session_id)
        live = await self.store.get(p.session_id)
        by = live.participants.get(participant_id) if live else None
        await self.end(p.session_id, p.reason or "hangup", "completed", by)
        return {}

    async def end(
        self, session_id: str, reason: str, outcome: str, by: LiveParticipant | None
    ) -> None:
        """End a session once, whoever asks first (a hang-up, a grace expiry, on any node)."""
        live = await self.store.claim_end(session_id)
        if live is None:
            return
        for participant in live.participants.values():
            if participant.sid is not None:
                self.bound.get(participant.sid, {}).pop(session_id, None)
        actor = Actor(by.role, by.subject) if by else Actor("system", None)
        await self.hub.records.ended(session_id, at(time.time()), outcome, reason, actor)
        for callback in self.on_ended:
            await callback(live.agent_id)
        sids = [
            p.sid
            for p in live.participants.values()
            if p.sid is not None and p.state == "connected"
        ]
        payload = {"session_id": session_id, "reason": reason, "ended_by": by.id if by else None}
        await self.hub.send("session:end", payload, sids)
        for ended in self.on_session_ended:
            await ended(live, reason)
        log.info("session ended (%s, %s)", outcome, reason, extra={"session_id": session_id})
