"""Every Redis key of the live-session store, with its shape. `p` is the deployment prefix
(VTAX_REDIS_PREFIX, default "vtax:"), so tests and tenants never collide."""

from __future__ import annotations


def session(p: str, session_id: str) -> str:
    """HASH: id, agent_id, taxpayer_id, started_at, seq (INCR'd per signal), info (JSON)."""
    return f"{p}live:s:{session_id}"


def participants(p: str, session_id: str) -> str:
    """HASH: participant id -> JSON LiveParticipant (role, subject, sid, node, state, deadline)."""
    return f"{p}live:s:{session_id}:parts"


def buffer(p: str, session_id: str) -> str:
    """LIST of JSON {t: [target participant ids], s: seq, m: message JSON}; trimmed to the
    resume buffer size (newest last)."""
    return f"{p}live:s:{session_id}:buf"


def subject(p: str, subject_id: str) -> str:
    """STRING: the live session id a taxpayer or agent is in."""
    return f"{p}live:subject:{subject_id}"


def deadlines(p: str) -> str:
    """ZSET: "<session id>|<participant id>" scored by the end of its reconnect grace."""
    return f"{p}live:deadlines"


def nodes(p: str) -> str:
    """ZSET: node id scored by its last heartbeat (Unix seconds)."""
    return f"{p}live:nodes"


def node_participants(p: str, node: str) -> str:
    """SET: "<session id>|<participant id>" bound to connections on that node."""
    return f"{p}live:node:{node}"


def epoch(p: str) -> str:
    """STRING: a random token the first node sets (SET NX); its disappearance means Redis lost
    its data (restarted without persistence, flushed, failed over to an empty replica)."""
    return f"{p}live:epoch"


def connections(p: str) -> str:
    """HASH: Socket.IO sid -> the node holding that connection."""
    return f"{p}live:conns"


def invite(p: str, invite_id: str) -> str:
    """STRING: JSON of an open invitation to join a live session (docs/protocol.md,
    multiparty): session, inviter, invitee, purpose; deleted when answered or expired."""
    return f"{p}live:invite:{invite_id}"


def session_invites(p: str, session_id: str) -> str:
    """SET: the ids of a session's open invitations, withdrawn when the session ends."""
    return f"{p}live:session_invites:{session_id}"


def invite_deadlines(p: str) -> str:
    """ZSET: open invitation id scored by when it expires."""
    return f"{p}live:invites"
