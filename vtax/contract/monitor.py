"""Monitor and whisper (docs/protocol.md, "Monitor and whisper"): the payloads and answers.

A supervisor monitors a live call through a server media leg (a worker role of `vtax
recorder`): the AGENT's page sends the leg its own camera and microphone and the taxpayer's
tracks it receives; the leg forwards them to each monitoring supervisor and carries a
whispering supervisor's voice back to the agent's page only. None of these messages ever
reaches a taxpayer's connection; the only thing a taxpayer hears of monitoring is the notice
that calls may be monitored (`session:notice`), sent on every call, monitored or not.

The events themselves (roles, answers) are declared at the end of client_events.py and
server_events.py, as the consultation's are; the models are here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from vtax.contract.base import Id, Message, Out, Whole
from vtax.contract.server_events import IceServer

MonitorSignalType = Literal["offer", "answer", "candidate", "restart"]


class MonitorStartIn(Message):
    session_id: Id


class MonitorStopIn(Message):
    session_id: Id


class MonitorWhisperIn(Message):
    session_id: Id
    on: Annotated[bool, Field(strict=True)]


class MonitorSignalIn(Message):
    session_id: Id
    to: Id = Field(description="the leg's id; the leg: a monitor's id or the agent's")
    type: MonitorSignalType
    data: dict[str, Any] | None = None


class LegHelloIn(Message):
    worker: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    capacity: Annotated[int, Field(ge=1, le=500, strict=True), Whole]


class LegJoinIn(Message):
    session_id: Id
    job_id: Id


class MonitorView(Out):
    """The supervisor's monitoring of one session."""

    session_id: str
    monitor_id: str = Field(description="this supervisor's id towards the leg")
    state: Literal["connecting", "live"] = Field(
        description="connecting: the leg has not joined yet (`monitor:state` says when)"
    )
    leg_id: str | None = Field(description="where to send the offer (`monitor:signal`)")
    whisper: bool = Field(description="this supervisor is whispering to the agent")
    ice_servers: list[IceServer] = Field(description="for the connection to the leg")


class LegJoined(Out):
    """What the leg needs: its id, the agent's, the monitors and who whispers."""

    leg_id: str
    agent_id: str = Field(description="the agent's participant id in the session")
    monitors: list[str]
    whisper_from: str | None


__all__ = [
    "LegHelloIn",
    "LegJoinIn",
    "LegJoined",
    "MonitorSignalIn",
    "MonitorSignalType",
    "MonitorStartIn",
    "MonitorStopIn",
    "MonitorView",
    "MonitorWhisperIn",
]
