"""Live calls: pairing at accept, the WebRTC signal relay (only inside a session), resume after
a drop with replay of missed signals, reconnect grace, node failure, hidden participants (the
recorder), hang-up.

State lives in a `LiveStore` (memory, or Redis when nodes scale out); what this keeps itself
is only about connections on this node (`bound`, a cache of who speaks for whom)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from vtax.accounts import Accounts
from vtax.app.ports import Caller, Notifier, at
from vtax.config import Settings
from vtax.contract import client_events as ce
from vtax.contract import server_events as se
from vtax.errors import DomainError
from vtax.ice import ice_servers
from vtax.live import AMBIGUOUS, VISIBLE_ROLES, LiveParticipant, LiveSession, LiveStore
from vtax.queue import Ticket
from vtax.review.audit import Actor
from vtax.review.records import SessionRecords

log = logging.getLogger(__name__)
# The visible participants: a drop gives them the reconnect grace (vtax/live VISIBLE_ROLES).
MEDIA_ROLES = VISIBLE_ROLES


def new_participant_id() -> str:
    return "p-" + secrets.token_hex(6)


def ticket_view(ticket: Ticket, now: float) -> se.TicketView:
    return se.TicketView(
        ticket_id=ticket.id,
        category=ticket.category,
        language=ticket.language,
        channel=ticket.channel,
        question=ticket.question,
        waited_s=round(max(now - ticket.joined_at, 0.0), 1),
        booking_id=ticket.booking_id or None,
        consultation_id=ticket.consultation_id,
    )


class Calls:
    def __init__(
        self,
        settings: Settings,
        store: LiveStore,
        records: SessionRecords,
        accounts: Accounts,
        notifier: Notifier,
        node_id: str,
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = records
        self.accounts = accounts
        self.notifier = notifier
        self.node_id = node_id
        # connection id (on this node) -> {session id: participant id}
        self.bound: dict[str, dict[str, str]] = {}
        # Called with the agent id when a session ends (the queue puts the agent in wrap-up).
        self.on_ended: list[Callable[[str], Awaitable[None]]] = []
        # Called with the session once both sides got `session:start` (e.g. recording).
        self.on_started: list[Callable[[LiveSession], Awaitable[None]]] = []
        # Called with (session, reason) after a session ended (e.g. stop recording).
        self.on_session_ended: list[Callable[[LiveSession, str], Awaitable[None]]] = []
        # Called with (session after, participant, reason) when a visible participant who does
        # not own the session left it while it goes on (vtax/app/multiparty.py).
        self.on_left: list[Callable[[LiveSession, LiveParticipant, str], Awaitable[None]]] = []
        # Called with (session, participant) after a participant resumed.
        self.on_resumed: list[Callable[[LiveSession, LiveParticipant], Awaitable[None]]] = []
        # Counters for /metrics.
        self.signals_relayed = 0
        self.resumes = 0
        self._reaper: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None
        self._beating_since: float | None = None  # heartbeats going through since (reap)
        # The store's generation marker as this node last saw it, and the one it would set.
        self._epoch: str | None = None
        self._epoch_proposal = secrets.token_hex(8)
        # Called with `winner` when the store lost its data (vtax/app/state_loss.py).
        self.on_state_lost: list[Callable[[bool], Awaitable[None]]] = []
        # Called with a node's id once this node found it dead (e.g. its media-leg workers).
        self.on_node_dead: list[Callable[[str], Awaitable[None]]] = []

    # ---- lifecycle ---------------------------------------------------------------------

    def start_background(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever(), name="session-reaper")
        self._beater = asyncio.create_task(self._beat_forever(), name="node-heartbeat")

    async def close(self) -> None:
        for task in (self._reaper, self._beater):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.store.close()

    async def _beat_forever(self, interval_s: float = 0.5) -> None:
        """The node's heartbeat, on its own: a reap that takes long (the state-loss hooks
        closing records in the database on a loaded machine) must not make the other nodes
        judge this one silent and forget the connections it has just registered again."""
        while True:
            # Failures are the reaper's to report (one line per outage, signaling/app.py).
            with contextlib.suppress(Exception):
                await self.store.node_heartbeat(self.node_id, time.time())
            await asyncio.sleep(interval_s)

    async def _reap_forever(self, interval_s: float = 0.5) -> None:
        while True:
            try:
                await self.reap(time.time())
            except Exception:
                self._beating_since = None  # cut off from the store: see reap()
                log.exception("session reaper failed; retrying")
            await asyncio.sleep(interval_s)

    async def reap(self, now: float) -> None:
        """Heartbeat this node; end sessions whose participant did not come back in time;
        start the grace period for participants of nodes that died without a word.

        Another node's heartbeat is judged only once this node's own heartbeats have gone
        through for a whole `node_timeout_s`: when the store itself was unreachable (a Redis
        restart), every node's heartbeat is equally stale, and the first node back would
        otherwise declare all the others dead and put their live calls into the grace period
        (ending them `peer_lost` while both sides were still connected)."""
        await self.store.node_heartbeat(self.node_id, now)
        if self._beating_since is None:
            self._beating_since = now
        await self._check_epoch()
        for session_id, participant_id in await self.store.claim_expired(now):
            await self._expired(session_id, participant_id)
        if now - self._beating_since < self.settings.node_timeout_s:
            return
        for node in await self.store.claim_dead_nodes(now, self.settings.node_timeout_s):
            log.warning("node %s is silent; its participants may resume elsewhere", node)
            for session_id, participant_id, sid in await self.store.participants_on_node(node):
                await self._reconnecting(session_id, participant_id, sid, now)
            for hook in self.on_node_dead:
                try:
                    await hook(node)
                except Exception:
                    log.exception("node-dead hook failed")

    async def _check_epoch(self) -> None:
        """The store's generation marker changed since this node last saw it: the store lost
        its data. The node whose new marker won reconciles the records; every node
        re-registers its connections (the hooks, vtax/app/state_loss.py)."""
        current, created = await self.store.epoch(self._epoch_proposal)
        if created:  # never propose a marker twice: the next one must differ from this one
            self._epoch_proposal = secrets.token_hex(8)
        if self._epoch is None or current == self._epoch:
            self._epoch = current
            return
        self._epoch = current
        self.bound.clear()  # the bindings it caches are gone from the store
        log.error("the live-session store lost its data (Redis restarted empty?): reconciling")
        for hook in self.on_state_lost:
            try:
                await hook(created)
            except Exception:
                log.exception("state-loss hook failed")

    async def resync_here(self, gap_s: float) -> int:
        """This node's fan-out had a gap of `gap_s` (signaling/app.py RedisManager): tell each
        live-session participant connected here to resume, so the replay gives it whatever the
        other nodes sent it meanwhile. Returns how many were told."""
        told = 0
        for session_id, _participant_id, sid in await self.store.participants_on_node(self.node_id):
            if self.notifier.is_here(sid):
                msg = se.SessionResync(session_id=session_id, gap_s=round(gap_s, 3))
                await self.notifier.to_connections([sid], msg)
                told += 1
        return told

    async def _expired(self, session_id: str, participant_id: str) -> None:
        live = await self.store.get(session_id)
        if live is None or participant_id not in live.participants:
            return
        gone = live.participants[participant_id]
        if gone.role not in MEDIA_ROLES:
            await self.remove_participant(session_id, participant_id)
            return
        if gone.role != "taxpayer" and gone.subject != live.agent_id:
            # A third party (an invitee, a barging supervisor) did not come back: the call
            # goes on without them.
            await self.leave(session_id, participant_id, "dropped")
            return
        log.info("participant did not come back", extra={"session_id": session_id})
        await self._send_others(
            live,
            participant_id,
            se.SessionPeer(
                session_id=live.id, participant_id=participant_id, state="left", ice_restart=None
            ),
        )
        await self.end(session_id, "peer_lost", "dropped", gone)

    # ---- queries -----------------------------------------------------------------------

    async def session_id_of(self, subject: str) -> str | None:
        return await self.store.session_of(subject)

    async def get(self, session_id: str) -> LiveSession | None:
        return await self.store.get(session_id)

    # ---- start, participants -----------------------------------------------------------

    async def start(self, ticket: Ticket, agent: Caller) -> str:
        """Pair the ticket's taxpayer and the agent who accepted; both get `session:start`."""
        assert agent.conn is not None
        now = time.time()
        await self.records.answered(ticket.session_id, agent.subject, at(now))
        staff = await self.accounts.staff(agent.subject)
        taxpayer_sid = ticket.conn_id
        taxpayer_node = await self.store.node_of(taxpayer_sid) if taxpayer_sid else None
        taxpayer = LiveParticipant(
            new_participant_id(), "taxpayer", ticket.taxpayer_id, "", taxpayer_sid,
            taxpayer_node or "", part="taxpayer", joined_at=now,
        )  # fmt: skip
        agent_p = LiveParticipant(
            new_participant_id(), "agent", agent.subject, staff.display_name if staff else "",
            agent.conn, self.node_id, part="agent", joined_at=now,
        )  # fmt: skip
        live = LiveSession(
            id=ticket.session_id,
            agent_id=agent.subject,
            taxpayer_id=ticket.taxpayer_id,
            started_at=now,
            participants={taxpayer.id: taxpayer, agent_p.id: agent_p},
            info=ticket_view(ticket, now).model_dump(),
        )
        if taxpayer_sid is None:  # gone between offer and accept: give it the grace to return
            taxpayer.state, taxpayer.deadline = "reconnecting", now + self.settings.resume_grace_s
        await self.store.create(live)
        for me in (taxpayer, agent_p):
            if me.sid is not None:
                if self.notifier.is_here(me.sid):  # bindings are kept for local connections
                    self.bound.setdefault(me.sid, {})[live.id] = me.id
                await self.notifier.to_connections([me.sid], self.start_message(live, me))
        for started in self.on_started:
            await started(live)
        log.info("session started", extra={"session_id": live.id})
        return live.id

    def _start_fields(self, live: LiveSession, me: LiveParticipant) -> dict[str, object]:
        # The peer of `session:start`: the session's agent for the taxpayer, the taxpayer for
        # staff (a page of three or more people learns the rest from `session:roster`).
        others = [p for p in live.media_participants() if p.id != me.id]
        owner = live.owner()
        preferred = owner if me.role == "taxpayer" else None
        if preferred is None or preferred.id == me.id:
            preferred = next((p for p in others if p.role == "taxpayer"), None)
        peer = preferred or others[0]
        return {
            "session_id": live.id,
            "participant_id": me.id,
            "role": me.role,
            "polite": me.role == "taxpayer",
            "peer": se.Peer(
                participant_id=peer.id,
                role=peer.role,  # type: ignore[arg-type]
                display_name=peer.display_name,
            ),
            "ice_servers": ice_servers(self.settings, me.id),
            "ticket": live.info,
        }

    def start_message(self, live: LiveSession, me: LiveParticipant) -> se.SessionStart:
        return se.SessionStart.model_validate(self._start_fields(live, me))

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
            await self.announce(live, participant, "joined")
        return participant

    async def remove_participant(self, session_id: str, participant_id: str) -> None:
        live = await self.store.get(session_id)
        if live is None or participant_id not in live.participants:
            return
        participant = live.participants[participant_id]
        await self.store.remove_participant(session_id, participant_id)
        if participant.sid is not None:
            self.bound.get(participant.sid, {}).pop(session_id, None)
        await self.announce(live, participant, "left")

    async def leave(self, session_id: str, participant_id: str, reason: str) -> None:
        """A visible participant who does not own the session leaves; the call goes on."""
        live = await self.store.get(session_id)
        if live is None or participant_id not in live.participants:
            return
        participant = live.participants[participant_id]
        await self.remove_participant(session_id, participant_id)
        after = await self.store.get(session_id)
        if after is not None:
            for left in self.on_left:
                await left(after, participant, reason)
        log.info(
            "participant left (%s, %s)", participant.role, reason, extra={"session_id": session_id}
        )

    async def announce(self, live: LiveSession, participant: LiveParticipant, state: str) -> None:
        message = se.SessionParticipant(
            session_id=live.id,
            participant_id=participant.id,
            role=participant.role,  # type: ignore[arg-type]
            state=state,  # type: ignore[arg-type]
        )
        await self._send_others(live, participant.id, message)

    async def _send_others(
        self, live: LiveSession, participant_id: str, message: se.ServerEvent
    ) -> None:
        sids = [
            p.sid
            for p in live.participants.values()
            if p.id != participant_id and p.sid is not None and p.state == "connected"
        ]
        await self.notifier.to_connections(sids, message)

    # ---- the relay ---------------------------------------------------------------------

    async def bound_participant(self, caller: Caller, session_id: str) -> str:
        """The participant this connection speaks for in the session. Bindings made on another
        node (the agent accepted there) are looked up in the store once and cached."""
        sid = caller.conn
        participant_id = self.bound.get(sid, {}).get(session_id) if sid else None
        if participant_id is None:
            live = await self.store.get(session_id)
            found = (
                next((p for p in live.participants.values() if p.sid == sid), None)
                if live is not None and sid is not None
                else None
            )
            if found is None or sid is None:
                raise DomainError(
                    "not_in_session", "you are not a participant of that live session"
                )
            participant_id = found.id
            self.bound.setdefault(sid, {})[session_id] = participant_id
        return participant_id

    async def signal(self, caller: Caller, p: ce.RtcSignal) -> ce.SignalSent:
        sender = await self.bound_participant(caller, p.session_id)
        message = {"session_id": p.session_id, "from": sender, "type": p.type, "data": p.data}
        sent = await self.store.append_signal(p.session_id, sender, p.to, message)
        if sent is None:
            raise DomainError("not_in_session", "`to` is not another participant of the session")
        if sent is AMBIGUOUS:
            raise DomainError("to_required", "this call has several people: say `to` whom")
        self.signals_relayed += 1
        await self.notifier.relay(sent.sids, message)
        return ce.SignalSent(seq=sent.seq)

    async def resume(self, caller: Caller, p: ce.SessionResume) -> ce.Resumed:
        """Re-attach a participant to this (new) connection and hand it what it missed."""
        assert caller.conn is not None
        live = await self.store.get(p.session_id)
        if live is None:
            raise DomainError("session_ended", "the session is over or does not exist")
        me = live.participant_of(caller.subject, caller.role)
        if me is None:
            raise DomainError("not_in_session", "you are not a participant of that session")
        old_sid = me.sid
        if not await self.store.bind(live.id, me.id, caller.conn, self.node_id):
            raise DomainError("session_ended", "the session is over")
        self.bound.setdefault(caller.conn, {})[live.id] = me.id
        if old_sid is not None and old_sid != caller.conn:
            self.bound.get(old_sid, {}).pop(live.id, None)
            # A page reload can leave the old connection half-alive: one connection each.
            await self.notifier.disconnect(old_sid)
        replay = await self.store.replay(live.id, me.id, p.last_seq)
        self.resumes += 1
        await self._send_others(
            live,
            me.id,
            se.SessionPeer(
                session_id=live.id, participant_id=me.id, state="back", ice_restart=True
            ),
        )
        log.info("participant resumed (%s)", me.role, extra={"session_id": live.id})
        me.sid, me.state = caller.conn, "connected"
        for resumed in self.on_resumed:
            await resumed(live, me)
        return ce.Resumed.model_validate(
            {**self._start_fields(live, me), "replay": replay, "ice_restart": True}
        )

    async def connected(self, caller: Caller) -> None:
        if caller.role in MEDIA_ROLES and caller.conn is not None:
            await self.store.register_connection(caller.conn, self.node_id)

    async def disconnected(self, caller: Caller) -> None:
        sid = caller.conn
        if sid is None:
            return
        if caller.role in MEDIA_ROLES:
            await self.store.unregister_connection(sid)
        bindings = self.bound.pop(sid, {})
        if caller.role in MEDIA_ROLES:
            # Bound on another node (where the agent accepted) and never used here: look it up.
            session_id = await self.store.session_of(caller.subject)
            if session_id is not None and session_id not in bindings:
                live = await self.store.get(session_id)
                me = live.participant_of(caller.subject, caller.role) if live else None
                if me is not None and me.sid == sid:
                    bindings[session_id] = me.id
        for session_id, participant_id in bindings.items():
            await self._reconnecting(session_id, participant_id, sid, time.time())

    async def _reconnecting(
        self, session_id: str, participant_id: str, sid: str, now: float
    ) -> None:
        deadline = now + self.settings.resume_grace_s
        if not await self.store.mark_reconnecting(session_id, participant_id, sid, deadline):
            return  # already resumed on another connection, or the session is over
        live = await self.store.get(session_id)
        if live is not None and live.participants[participant_id].role in MEDIA_ROLES:
            await self._send_others(
                live,
                participant_id,
                se.SessionPeer(
                    session_id=session_id,
                    participant_id=participant_id,
                    state="reconnecting",
                    ice_restart=None,
                ),
            )

    async def hang_up(self, caller: Caller, p: ce.SessionEnd) -> ce.Done:
        participant_id = await self.bound_participant(caller, p.session_id)
        live = await self.store.get(p.session_id)
        by = live.participants.get(participant_id) if live else None
        if live is not None and by is not None and by.role != "taxpayer":
            if by.subject != live.agent_id:
                # A third party hanging up leaves; the taxpayer's call goes on.
                await self.leave(p.session_id, participant_id, "left")
                return ce.Done()
        await self.end(p.session_id, p.reason or "hangup", "completed", by)
        return ce.Done()

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
        await self.records.ended(session_id, at(time.time()), outcome, reason, actor)
        # The owner and every other agent still in the call go to wrap-up.
        agents = dict.fromkeys(
            [live.agent_id] + [p.subject for p in live.participants.values() if p.role == "agent"]
        )
        for agent_id in agents:
            for callback in self.on_ended:
                await callback(agent_id)
        sids = [
            p.sid
            for p in live.participants.values()
            if p.sid is not None and p.state == "connected"
        ]
        message = se.SessionEnded(
            session_id=session_id, reason=reason, ended_by=by.id if by else None
        )
        await self.notifier.to_connections(sids, message)
        for ended in self.on_session_ended:
            await ended(live, reason)
        log.info("session ended (%s, %s)", outcome, reason, extra={"session_id": session_id})
