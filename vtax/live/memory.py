"""In-memory live-session store: one process, no services (the embedded default)."""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import orjson

from vtax.live.model import AMBIGUOUS, VISIBLE_ROLES, LiveParticipant, LiveSession, SignalAppend


class MemoryLiveStore:
    def __init__(self, buffer_size: int = 256, buffer_bytes: int = 256 * 1024) -> None:
        self.buffer_size = buffer_size
        self.buffer_bytes = buffer_bytes
        self._buffer_bytes: dict[str, int] = {}
        self._sessions: dict[str, LiveSession] = {}
        self._buffers: dict[str, deque[tuple[list[str], dict[str, Any], int]]] = {}
        self._by_subject: dict[str, str] = {}
        self._epoch: str | None = None
        self._conn_nodes: dict[str, str] = {}
        self._invites: dict[str, tuple[dict[str, Any], float]] = {}

    async def create(self, session: LiveSession) -> None:
        self._sessions[session.id] = session
        self._buffers[session.id] = deque()
        for p in session.media_participants():
            self._by_subject[p.subject] = session.id

    async def get(self, session_id: str) -> LiveSession | None:
        session = self._sessions.get(session_id)
        return copy.deepcopy(session) if session is not None else None

    async def session_of(self, subject: str) -> str | None:
        return self._by_subject.get(subject)

    async def add_participant(self, session_id: str, participant: LiveParticipant) -> bool:
        session = self._sessions.get(session_id)
        if session is None:
            return False
        session.participants[participant.id] = participant
        if participant.role in VISIBLE_ROLES:
            self._by_subject[participant.subject] = session_id
        return True

    async def remove_participant(self, session_id: str, participant_id: str) -> bool:
        session = self._sessions.get(session_id)
        gone = session.participants.pop(participant_id, None) if session else None
        if gone is None:
            return False
        if gone.role in VISIBLE_ROLES and self._by_subject.get(gone.subject) == session_id:
            del self._by_subject[gone.subject]
        return True

    async def set_owner(self, session_id: str, agent_id: str) -> bool:
        session = self._sessions.get(session_id)
        if session is None:
            return False
        session.agent_id = agent_id
        return True

    async def put_invite(self, invite_id: str, invite: dict[str, Any], expires_at: float) -> None:
        self._invites[invite_id] = (dict(invite), expires_at)

    async def get_invite(self, invite_id: str) -> dict[str, Any] | None:
        found = self._invites.get(invite_id)
        return dict(found[0]) if found else None

    async def take_invite(self, invite_id: str) -> dict[str, Any] | None:
        found = self._invites.pop(invite_id, None)
        return found[0] if found else None

    async def claim_expired_invites(self, now: float) -> list[dict[str, Any]]:
        due = [i for i, (_, expires) in self._invites.items() if expires <= now]
        return [self._invites.pop(i)[0] for i in due]

    async def take_session_invites(self, session_id: str) -> list[dict[str, Any]]:
        mine = [i for i, (inv, _) in self._invites.items() if inv.get("session_id") == session_id]
        return [self._invites.pop(i)[0] for i in mine]

    async def append_signal(
        self, session_id: str, sender_id: str, to: str | None, message: dict[str, Any]
    ) -> SignalAppend | None:
        session = self._sessions.get(session_id)
        if session is None or sender_id not in session.participants:
            return None
        if to is not None:
            if to == sender_id or to not in session.participants:
                return None
            targets = [to]
        else:
            targets = [
                pid
                for pid, p in session.participants.items()
                if pid != sender_id and p.role in VISIBLE_ROLES
            ]
            if len(targets) != 1:
                return AMBIGUOUS
        session.seq += 1
        message["seq"] = session.seq
        # Bounded in count and in bytes (as JSON): drop the oldest; the newest stays.
        buffer = self._buffers[session_id]
        size = len(orjson.dumps(message))
        total = self._buffer_bytes.get(session_id, 0) + size
        buffer.append((targets, message, size))
        while len(buffer) > 1 and (len(buffer) > self.buffer_size or total > self.buffer_bytes):
            total -= buffer.popleft()[2]
        self._buffer_bytes[session_id] = total
        sids = [
            p.sid
            for pid in targets
            if (p := session.participants[pid]).sid is not None and p.state == "connected"
        ]
        return SignalAppend(session.seq, sids)

    async def replay(
        self, session_id: str, participant_id: str, after_seq: int
    ) -> list[dict[str, Any]]:
        buffer = self._buffers.get(session_id, ())
        return [m for targets, m, _ in buffer if participant_id in targets and m["seq"] > after_seq]

    async def bind(self, session_id: str, participant_id: str, sid: str, node: str) -> bool:
        session = self._sessions.get(session_id)
        participant = session.participants.get(participant_id) if session else None
        if participant is None:
            return False
        participant.sid, participant.node = sid, node
        participant.state, participant.deadline = "connected", 0.0
        return True

    async def mark_reconnecting(
        self, session_id: str, participant_id: str, sid: str, deadline: float
    ) -> bool:
        session = self._sessions.get(session_id)
        participant = session.participants.get(participant_id) if session else None
        if participant is None or participant.sid != sid:
            return False
        participant.state, participant.deadline = "reconnecting", deadline
        return True

    async def claim_expired(self, now: float) -> list[tuple[str, str]]:
        expired = []
        for session in self._sessions.values():
            for p in session.participants.values():
                if p.state == "reconnecting" and p.deadline <= now:
                    p.deadline = float("inf")  # claimed: never again
                    expired.append((session.id, p.id))
        return expired

    async def claim_end(self, session_id: str) -> LiveSession | None:
        session = self._sessions.pop(session_id, None)
        self._buffers.pop(session_id, None)
        self._buffer_bytes.pop(session_id, None)
        if session is not None:
            for p in session.media_participants():
                if self._by_subject.get(p.subject) == session_id:
                    del self._by_subject[p.subject]
        return session

    async def register_connection(self, sid: str, node: str) -> None:
        self._conn_nodes[sid] = node

    async def unregister_connection(self, sid: str) -> None:
        self._conn_nodes.pop(sid, None)

    async def node_of(self, sid: str) -> str | None:
        return self._conn_nodes.get(sid)

    async def node_heartbeat(self, node: str, now: float) -> None:
        return None

    async def epoch(self, proposal: str) -> tuple[str, bool]:
        created = self._epoch is None
        if self._epoch is None:
            self._epoch = proposal
        return self._epoch, created

    async def claim_dead_nodes(self, now: float, timeout_s: float) -> list[str]:
        return []  # one process: if this node is dead, so is its memory

    async def participants_on_node(self, node: str) -> list[tuple[str, str, str]]:
        return [
            (s.id, p.id, p.sid)
            for s in self._sessions.values()
            for p in s.participants.values()
            if p.node == node and p.sid is not None
        ]

    async def close(self) -> None:
        return None
