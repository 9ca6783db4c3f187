"""Screen share and the pointer inside a call (docs/protocol.md, "Screen share").

The media of a shared screen travels on the call's second video transceiver, negotiated once
at the start (web/src/core/rtc.ts); these events only say who shares and where the viewer
points. Both are relayed by the server to the other media participants of the session (never
to the recorder, never outside the session), after the same checks as every client event:
role, the per-connection token bucket (`pointer` for the pointer), size, this schema.

The pointer goes over Socket.IO rather than a WebRTC data channel: it crosses nodes like any
other event, is validated and rate-limited here, keeps working through a socket resume, and
adds no m-line to the call (the m-line set stays fixed). A click is a few dozen bytes; at the
pointer bucket's 10 a second it is far below the signal relay's load."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from vtax.contract.base import Id, Message, ServerEvent

# A coordinate over the shared picture: 0 is the left (top) edge, 1 the right (bottom) edge.
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]


class ScreenShareIn(Message):
    """This participant starts (`sharing: true`) or stops sharing its screen. Sent again after
    a resume (the peer came back, or this page reloaded: then `false`, a reload ends a
    capture), so both pages agree on who shares."""

    session_id: Id
    sharing: Annotated[bool, Field(strict=True)]
    surface: Literal["monitor", "window", "browser", "unknown"] = "unknown"


class ScreenPointerIn(Message):
    """The viewer points at a place of the shared screen (`point`), or takes the marker
    away (`clear`): normalized coordinates over the shared picture, so the sharer's preview
    of any size shows the marker at the same place."""

    session_id: Id
    x: Unit = 0.0
    y: Unit = 0.0
    kind: Literal["point", "clear"] = "point"


class ScreenState(ServerEvent):
    """Who shares: a media participant started or stopped sharing its screen."""

    event = "screen:state"
    to = "the other media participants"

    session_id: str
    participant_id: str
    role: Literal["taxpayer", "agent"]
    sharing: bool
    surface: Literal["monitor", "window", "browser", "unknown"]


class ScreenPointed(ServerEvent):
    """The other side points at (x, y) of the shared screen, or cleared its marker."""

    event = "screen:pointer"
    to = "the other media participants"

    session_id: str
    participant_id: str = Field(description="who points")
    x: float
    y: float
    kind: Literal["point", "clear"]
