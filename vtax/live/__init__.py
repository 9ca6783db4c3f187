"""Live-session state shared by signaling nodes: membership, where each participant is
connected, the per-session signal sequence and resume buffer, and reconnect deadlines.

One interface, two stores: in-memory for the embedded default, Redis when scaled out."""

from vtax.live.model import (
    AMBIGUOUS,
    VISIBLE_ROLES,
    LiveParticipant,
    LiveSession,
    LiveStore,
    SignalAppend,
)

__all__ = [
    "AMBIGUOUS",
    "VISIBLE_ROLES",
    "LiveParticipant",
    "LiveSession",
    "LiveStore",
    "SignalAppend",
]
