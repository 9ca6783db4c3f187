"""Screen share inside a call: who shares (`screen:share` -> `screen:state`) and the viewer's
pointer (`screen:pointer`), relayed to the other media participants of the caller's live
session only (docs/protocol.md, "Screen share"). The media itself never passes the server."""

from __future__ import annotations

from vtax.app.calls import MEDIA_ROLES, Calls
from vtax.app.ports import Caller, Notifier
from vtax.contract import client_events as ce
from vtax.contract.screen import ScreenPointed, ScreenState
from vtax.contract.server_events import ServerEvent
from vtax.errors import DomainError
from vtax.live import LiveParticipant, LiveSession


class ScreenShare:
    def __init__(self, calls: Calls, notifier: Notifier) -> None:
        self.calls = calls
        self.notifier = notifier

    async def _me(self, caller: Caller, session_id: str) -> tuple[LiveSession, LiveParticipant]:
        """The caller's media participant in its live session (bound to this connection)."""
        participant_id = await self.calls.bound_participant(caller, session_id)
        live = await self.calls.get(session_id)
        me = live.participants.get(participant_id) if live is not None else None
        if live is None or me is None or me.role not in MEDIA_ROLES:
            raise DomainError("not_in_session", "you are not a participant of that live session")
        return live, me

    async def _to_others(self, live: LiveSession, me: LiveParticipant, msg: ServerEvent) -> None:
        sids = [
            p.sid
            for p in live.media_participants()
            if p.id != me.id and p.sid is not None and p.state == "connected"
        ]
        await self.notifier.to_connections(sids, msg)

    async def share(self, caller: Caller, p: ce.ScreenShare) -> ce.Done:
        live, me = await self._me(caller, p.session_id)
        state = ScreenState(
            session_id=live.id,
            participant_id=me.id,
            role=me.role,  # type: ignore[arg-type]
            sharing=p.sharing,
            surface=p.surface,
        )
        await self._to_others(live, me, state)
        return ce.Done()

    async def point(self, caller: Caller, p: ce.ScreenPointer) -> ce.Done:
        live, me = await self._me(caller, p.session_id)
        pointed = ScreenPointed(session_id=live.id, participant_id=me.id, x=p.x, y=p.y, kind=p.kind)
        await self._to_others(live, me, pointed)
        return ce.Done()
