"""Live-session records and the store interface. Times are Unix seconds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

ParticipantState = Literal["connected", "reconnecting"]
# Participants the others see and hear (a peer connection each way, a tile on the pages);
# the recorder (and any other hidden participant) is not one of them.
VISIBLE_ROLES: tuple[str, ...] = ("taxpayer", "agent", "supervisor")


@dataclass(slots=True)
class LiveParticipant:
    id: str
    role: str  # taxpayer | agent | supervisor | recorder
    subject: str  # taxpayer or user id (never sent by the client)
    display_name: str = ""
    sid: str | None = None  # the Socket.IO connection it is bound to
    node: str = ""  # the node holding that connection
    state: ParticipantState = "connected"
    deadline: float = 0.0  # while reconnecting: when the grace period ends
    part: str = ""  # the record's role: taxpayer | agent | invitee | supervisor ("" hidden)
    joined_at: float = 0.0
    label: str = ""  # what an invitee is there for, e.g. "interpreter: yue"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class LiveSession:
    id: str
    agent_id: str
    taxpayer_id: str
    started_at: float
    participants: dict[str, LiveParticipant] = field(default_factory=dict)
    seq: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # the ticket view for session:start

    def participant_of(self, subject: str, role: str | None = None) -> LiveParticipant | None:
        return next(
            (
                p
                for p in self.participants.values()
                if p.subject == subject and (role is None or p.role == role)
            ),
            None,
        )

    def media_participants(self) -> list[LiveParticipant]:
        """The visible participants (taxpayer, agents, barging supervisors), joined order."""
        return [p for p in self.participants.values() if p.role in VISIBLE_ROLES]

    def owner(self) -> LiveParticipant | None:
        """The participant who owns the session now (its agent; a supervisor after a
        take-over)."""
        return next(
            (
                p
                for p in self.participants.values()
                if p.subject == self.agent_id and p.role in ("agent", "supervisor")
            ),
            None,
        )


@dataclass(frozen=True, slots=True)
class SignalAppend:
    """The result of appending a signal: its sequence number and the connections to send to.
    `seq` 0 (`AMBIGUOUS`): no `to` and not exactly one other visible participant; nothing
    was stored."""

    seq: int
    sids: list[str]


AMBIGUOUS = SignalAppend(0, [])


class LiveStore(Protocol):
    """Storage and atomicity only; the relay decides what to do."""

    async def create(self, session: LiveSession) -> None: ...

    async def get(self, session_id: str) -> LiveSession | None: ...

    async def session_of(self, subject: str) -> str | None:
        """The live session a visible participant is in (recorders are not indexed)."""
        ...

    async def add_participant(self, session_id: str, participant: LiveParticipant) -> bool:
        """Add a participant; a visible one is indexed by subject (`session_of`)."""
        ...

    async def remove_participant(self, session_id: str, participant_id: str) -> bool: ...

    async def set_owner(self, session_id: str, agent_id: str) -> bool:
        """The session's agent changes (warm transfer, take-over)."""
        ...

    async def put_invite(self, invite_id: str, invite: dict[str, Any], expires_at: float) -> None:
        """Keep an open invitation until it is answered or `expires_at`."""
        ...

    async def get_invite(self, invite_id: str) -> dict[str, Any] | None: ...

    async def take_invite(self, invite_id: str) -> dict[str, Any] | None:
        """Remove and return an open invitation; only the first caller gets it."""
        ...

    async def claim_expired_invites(self, now: float) -> list[dict[str, Any]]:
        """Take the invitations whose time ran out; each is taken once."""
        ...

    async def take_session_invites(self, session_id: str) -> list[dict[str, Any]]:
        """Take the open invitations into a session (it ended); each is taken once."""
        ...

    async def append_signal(
        self, session_id: str, sender_id: str, to: str | None, message: dict[str, Any]
    ) -> SignalAppend | None:
        """Stamp the next seq on `message` (adds "seq"), keep it in the bounded resume buffer
        addressed to its targets, and return the targets' connections; None if the sender is
        not a participant or `to` is not another participant. Without `to` the target is the
        one other visible participant (a two-party call of an old page); with none or several
        the result is `AMBIGUOUS`."""
        ...

    async def replay(
        self, session_id: str, participant_id: str, after_seq: int
    ) -> list[dict[str, Any]]:
        """Buffered messages addressed to the participant with seq > after_seq, in order."""
        ...

    async def bind(self, session_id: str, participant_id: str, sid: str, node: str) -> bool:
        """Attach a participant to a (new) connection: connected again, deadline cleared."""
        ...

    async def mark_reconnecting(
        self, session_id: str, participant_id: str, sid: str, deadline: float
    ) -> bool:
        """If the participant is still bound to `sid`, start its grace period."""
        ...

    async def claim_expired(self, now: float) -> list[tuple[str, str]]:
        """Take (session_id, participant_id) pairs whose grace ran out; each is taken once."""
        ...

    async def claim_end(self, session_id: str) -> LiveSession | None:
        """Remove the session; only the first caller gets it (ends happen once)."""
        ...

    async def register_connection(self, sid: str, node: str) -> None:
        """Remember which node holds a connection (so a session started elsewhere knows)."""
        ...

    async def unregister_connection(self, sid: str) -> None: ...

    async def node_of(self, sid: str) -> str | None: ...

    async def node_heartbeat(self, node: str, now: float) -> None: ...

    async def epoch(self, proposal: str) -> tuple[str, bool]:
        """The store's generation marker: set it to `proposal` if it has none; returns (the
        marker now, whether `proposal` became it). A marker other than the one a node saw
        before means the store lost its data since (vtax/app/calls.py, state loss)."""
        ...

    async def claim_dead_nodes(self, now: float, timeout_s: float) -> list[str]:
        """Nodes silent for longer than timeout_s; each is claimed by one node only."""
        ...

    async def participants_on_node(self, node: str) -> list[tuple[str, str, str]]:
        """(session_id, participant_id, sid) bound to connections on that node."""
        ...

    async def close(self) -> None: ...
