"""Three or more people in one live call: the session's agent invites a colleague (by skill or
by name) who accepts or declines; the agent hands the session over and leaves (warm transfer);
a supervisor barges in visibly and may take the session over (docs/protocol.md, "Three or more
participants"; docs/architecture.md, "Participants and the mesh").

Over the live calls (vtax/app/calls.py: membership, the relay, resume, grace, the end) and the
queue engine (who is available, eligible, busy, in wrap-up). Every participant is kept in the
record (vtax/review/participants.py); the review loop credits whoever owns the session at its
end, as `service_sessions.agent_id` follows the hand-overs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

from vtax.accounts import Accounts
from vtax.app.calls import Calls, new_participant_id
from vtax.app.ports import Caller, Notifier, at
from vtax.config import Settings
from vtax.contract import client_events as ce
from vtax.contract import multiparty as mp
from vtax.contract import server_events as se
from vtax.errors import DomainError
from vtax.ice import ice_servers
from vtax.live import VISIBLE_ROLES, LiveParticipant, LiveSession
from vtax.queue import AgentState, QueueEngine, Ticket
from vtax.queue.policy import eligible
from vtax.review.audit import Actor
from vtax.review.participants import Joined, ParticipantRecords

log = logging.getLogger(__name__)
STAFF = ("agent", "supervisor")


def part_of(live: LiveSession, p: LiveParticipant) -> str:
    """The record's role: taxpayer; agent (owns the session now); supervisor; invitee."""
    if p.role == "taxpayer":
        return "taxpayer"
    if p.subject == live.agent_id:
        return "agent"
    return "supervisor" if p.role == "supervisor" else "invitee"


def roster(live: LiveSession) -> tuple[str, list[mp.RosterEntry]]:
    """(owner participant id, the visible participants in the order they joined)."""
    owner = live.owner()
    entries = [
        mp.RosterEntry(
            participant_id=p.id,
            role=p.role,  # type: ignore[arg-type]
            part=part_of(live, p),  # type: ignore[arg-type]
            display_name=p.display_name if p.role != "taxpayer" else "",
            label=p.label,
            state=p.state,
        )
        for p in sorted(
            live.media_participants(), key=lambda x: (x.joined_at, x.role != "taxpayer")
        )
    ]
    return (owner.id if owner else ""), entries


class Multiparty:
    def __init__(
        self,
        settings: Settings,
        calls: Calls,
        engine: QueueEngine,
        accounts: Accounts,
        participants: ParticipantRecords,
        notifier: Notifier,
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.engine = engine
        self.accounts = accounts
        self.participants = participants
        self.notifier = notifier
        self._expirer: asyncio.Task[None] | None = None
        calls.on_started.append(self._started)
        calls.on_left.append(self._left)
        calls.on_resumed.append(self._resumed)
        calls.on_session_ended.append(self._ended)

    # ---- lifecycle ---------------------------------------------------------------------

    def start_background(self) -> None:
        self._expirer = asyncio.create_task(self._expire_forever(), name="invite-expirer")

    async def close(self) -> None:
        if self._expirer is not None:
            self._expirer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expirer

    async def _expire_forever(self, interval_s: float = 0.5) -> None:
        while True:
            try:
                await self.expire(time.time())
            except Exception:
                log.exception("invite expiry failed; retrying")
            await asyncio.sleep(interval_s)

    async def expire(self, now: float) -> None:
        """Tell both sides of each invitation whose time ran out (taken once, on any node)."""
        for invite in await self.calls.store.claim_expired_invites(now):
            await self._invite_news(invite, "expired", "")

    # ---- hooks on the live calls ---------------------------------------------------------

    async def _started(self, live: LiveSession) -> None:
        when = at(live.started_at)
        for p in live.media_participants():
            who = Joined(
                live.id, p.id, p.role, p.subject, p.display_name, p.role, handles=p.role == "agent"
            )
            await self.participants.joined(who, when, Actor("system", None))
        await self.send_roster(live)

    async def _left(self, live: LiveSession, gone: LiveParticipant, reason: str) -> None:
        await self.participants.left(live.id, gone.id, at(time.time()))
        if gone.role == "agent":
            await self.engine.session_ended(gone.subject)  # wrap-up, then available
        await self.send_roster(live)

    async def _resumed(self, live: LiveSession, me: LiveParticipant) -> None:
        if len(live.media_participants()) > 2:
            await self.send_roster(live)

    async def _ended(self, live: LiveSession, reason: str) -> None:
        await self.participants.session_over(live.id, at(time.time()))
        # An invitation still open into the call is withdrawn: the invitee's offer closes at
        # once instead of counting down to an `invite_expired` answer.
        for invite in await self.calls.store.take_session_invites(live.id):
            await self._invite_news(invite, "cancelled", "session_ended")

    async def send_roster(self, live: LiveSession) -> None:
        owner, entries = roster(live)
        message = mp.SessionRoster(session_id=live.id, owner=owner, participants=entries)
        sids = [
            p.sid for p in live.media_participants() if p.sid is not None and p.state == "connected"
        ]
        await self.notifier.to_connections(sids, message)

    # ---- who owns what -----------------------------------------------------------------------

    async def _mine(self, caller: Caller, session_id: str) -> tuple[LiveSession, LiveParticipant]:
        participant_id = await self.calls.bound_participant(caller, session_id)
        live = await self.calls.get(session_id)
        me = live.participants.get(participant_id) if live else None
        if live is None or me is None:
            raise DomainError("not_in_session", "that session is over")
        return live, me

    async def _owned(self, caller: Caller, session_id: str) -> tuple[LiveSession, LiveParticipant]:
        live, me = await self._mine(caller, session_id)
        if me.role not in STAFF or live.agent_id != caller.subject:
            raise DomainError("forbidden", "only the session's agent may do this")
        return live, me

    # ---- colleagues and invitations ------------------------------------------------------------

    @staticmethod
    def _wanted(live: LiveSession, category: str | None, language: str | None) -> Ticket:
        """A ticket-shaped question for the queue's eligibility rule."""
        info = live.info
        return Ticket(
            id="",
            session_id=live.id,
            taxpayer_id="",
            category=category or str(info.get("category", "")),
            language=language or str(info.get("language", "")),
            channel="",
            question="",
            joined_at=0.0,
        )

    async def _agents(self) -> list[tuple[Any, AgentState | None]]:
        staff = [s for s in await self.accounts.staff_list("agent")]
        states = [await self.engine.agent(s.id) for s in staff]
        return list(zip(staff, states, strict=True))

    async def colleagues(self, caller: Caller, p: ce.SessionColleagues) -> mp.Colleagues:
        live, _ = await self._owned(caller, p.session_id)
        wanted = self._wanted(live, p.category, p.language)
        level = 1 if p.category else 0
        out = []
        for staff, state in await self._agents():
            if staff.id == caller.subject:
                continue
            profile = state or AgentState(
                staff.id, staff.display_name, dict(staff.skills), frozenset(staff.languages)
            )
            out.append(
                mp.Colleague(
                    user_id=staff.id,
                    display_name=staff.display_name,
                    languages=sorted(staff.languages),
                    categories=dict(staff.skills),
                    status=state.status if state else "offline",
                    eligible=eligible(profile, wanted, level),
                )
            )
        out.sort(key=lambda c: (not c.eligible, c.status != "available", c.display_name))
        return mp.Colleagues(colleagues=out)

    async def invite(self, caller: Caller, p: ce.SessionInvite) -> mp.Invited:
        """The session's agent asks a colleague in; the colleague gets `invite:new`."""
        live, me = await self._owned(caller, p.session_id)
        info = live.info
        if p.user_id is not None:
            staff = await self.accounts.staff(p.user_id)
            if staff is None or staff.role != "agent" or staff.id == caller.subject:
                raise DomainError("not_found", "no such colleague")
            state = await self.engine.agent(staff.id)
            if state is None or state.status == "offline":
                raise DomainError("invitee_offline", "that colleague is not signed in")
            if state.status != "available" or live.participant_of(staff.id) is not None:
                raise DomainError("invitee_busy", "that colleague is busy now")
            invitee_id, invitee_name = staff.id, staff.display_name
        else:
            wanted = self._wanted(live, p.category, p.language)
            level = 1 if p.category else 0
            ready = [
                s
                for _, s in await self._agents()
                if s is not None
                and s.id != caller.subject
                and s.status == "available"
                and live.participant_of(s.id) is None
                and eligible(s, wanted, level)
            ]
            if not ready:
                raise DomainError(
                    "no_colleague", "no colleague with that skill or language is free now"
                )
            chosen = min(ready, key=lambda s: (s.idle_since, s.id))  # longest idle first
            invitee_id, invitee_name = chosen.id, chosen.name
        language = p.language or str(info.get("language", ""))
        category = p.category or str(info.get("category", ""))
        purpose = p.purpose or (
            "interpreter"
            if p.language and p.language != info.get("language")
            else "expert"
            if p.category
            else "colleague"
        )
        label = {"interpreter": f"interpreter: {language}", "expert": f"expert: {category}"}.get(
            purpose, "colleague"
        )
        now = time.time()
        ttl = self.settings.invite_timeout_s
        invite = {
            "id": "inv-" + secrets.token_hex(8),
            "session_id": live.id,
            "inviter_id": caller.subject,
            "inviter_name": me.display_name,
            "invitee_id": invitee_id,
            "invitee_name": invitee_name,
            "purpose": purpose,
            "label": label,
            "category": category,
            "language": language,
        }
        await self.calls.store.put_invite(invite["id"], invite, now + ttl)
        news = mp.InviteNew(
            invite_id=invite["id"],
            session_id=live.id,
            inviter=me.display_name,
            purpose=purpose,  # type: ignore[arg-type]
            label=label,
            category=category,
            language=language,
            question=str(info.get("question", "")),
            note=p.note,
            expires_in_s=ttl,
        )
        await self.notifier.to_user(invitee_id, news)
        log.info("invited a colleague (%s)", purpose, extra={"session_id": live.id})
        return mp.Invited(
            invite_id=invite["id"],
            invitee=mp.Invitee(user_id=invitee_id, display_name=invitee_name),
            expires_in_s=ttl,
        )

    async def _my_invite(self, caller: Caller, invite_id: str) -> dict[str, Any]:
        invite = await self.calls.store.get_invite(invite_id)
        if invite is None:
            raise DomainError("invite_expired", "that invitation is no longer open")
        if invite["invitee_id"] != caller.subject:
            raise DomainError("forbidden", "that invitation is not yours")
        taken = await self.calls.store.take_invite(invite_id)
        if taken is None:
            raise DomainError("invite_expired", "that invitation is no longer open")
        return taken

    async def _invite_news(self, invite: dict[str, Any], state: str, reason: str) -> None:
        news = mp.InviteUpdate(
            invite_id=invite["id"],
            session_id=invite["session_id"],
            state=state,  # type: ignore[arg-type]
            invitee=invite["invitee_name"],
            reason=reason,
        )
        for user in dict.fromkeys((invite["inviter_id"], invite["invitee_id"])):
            await self.notifier.to_user(user, news)

    async def decline(self, caller: Caller, p: ce.InviteDecline) -> ce.Done:
        invite = await self._my_invite(caller, p.invite_id)
        await self._invite_news(invite, "declined", p.reason)
        return ce.Done()

    async def accept(self, caller: Caller, p: ce.InviteAccept) -> ce.SessionJoined:
        """The invitee joins the call: busy in it (the queue engine), a participant of it."""
        invite = await self._my_invite(caller, p.invite_id)
        live = await self.calls.get(invite["session_id"])
        if live is None:
            await self._invite_news(invite, "cancelled", "session_ended")
            raise DomainError("invite_expired", "that call is over")
        await self.engine.join_session(caller.subject, live.id, invite["category"])
        try:
            joined = await self._join(caller, live.id, "agent", invite["label"])
        except DomainError:
            await self.engine.session_ended(caller.subject)
            raise
        await self._invite_news(invite, "accepted", "")
        return joined

    # ---- barge ---------------------------------------------------------------------------------

    async def barge(self, caller: Caller, p: ce.SessionBarge) -> ce.SessionJoined:
        """A supervisor joins the call visibly."""
        live = await self.calls.get(p.session_id)
        if live is None:
            raise DomainError("not_found", "no such live session")
        return await self._join(caller, live.id, "supervisor", "")

    async def _join(
        self, caller: Caller, session_id: str, role: str, label: str
    ) -> ce.SessionJoined:
        assert caller.conn is not None
        live = await self.calls.get(session_id)
        if live is None:
            raise DomainError("invite_expired", "that call is over")
        if live.participant_of(caller.subject) is not None:
            raise DomainError("invalid_state", "you are in that call already")
        if await self.calls.store.session_of(caller.subject) is not None:
            raise DomainError("invitee_busy", "you are in another call")
        staff = await self.accounts.staff(caller.subject)
        now = time.time()
        me = LiveParticipant(
            new_participant_id(), role, caller.subject, staff.display_name if staff else "",
            caller.conn, self.calls.node_id, part="invitee" if role == "agent" else role,
            joined_at=now, label=label,
        )  # fmt: skip
        if not await self.calls.store.add_participant(session_id, me):
            raise DomainError("invite_expired", "that call is over")
        self.calls.bound.setdefault(caller.conn, {})[session_id] = me.id
        live = await self.calls.get(session_id)
        if live is None:
            raise DomainError("invite_expired", "that call is over")
        await self.calls.announce(live, me, "joined")
        part = "supervisor" if role == "supervisor" else "invitee"
        await self.participants.joined(
            Joined(session_id, me.id, part, caller.subject, me.display_name, label or part),
            at(now),
            caller.actor,
        )
        await self.send_roster(live)
        # The recorder (hidden) is in already: this page opens its send-only connection too.
        for hidden in live.participants.values():
            if hidden.role == "recorder":
                note = se.SessionParticipant(
                    session_id=session_id, participant_id=hidden.id, role="recorder", state="joined"
                )
                await self.notifier.to_connections([caller.conn], note)
        owner, entries = roster(live)
        log.info("a %s joined the call", part, extra={"session_id": session_id})
        return ce.SessionJoined(
            session_id=session_id,
            participant_id=me.id,
            role=role,  # type: ignore[arg-type]
            ice_servers=[se.IceServer.model_validate(s) for s in ice_servers(self.settings, me.id)],
            ticket=se.TicketView.model_validate(live.info),
            owner=owner,
            participants=entries,
        )

    # ---- hand-over and leave ---------------------------------------------------------------------

    async def handover(self, caller: Caller, p: ce.SessionHandover) -> mp.HandedOver:
        """Warm transfer (to an invitee) or take-over (by a barging supervisor): the target owns
        the session from now on; the caller leaves (wrap-up as after any call)."""
        live, me = await self._owned(caller, p.session_id)
        target = live.participants.get(p.to)
        if (
            target is None
            or target.id == me.id
            or target.role not in STAFF
            or target.role not in VISIBLE_ROLES
            or target.state != "connected"
        ):
            raise DomainError("invalid_state", "hand over to a colleague who is in the call")
        now = time.time()
        if not await self.calls.store.set_owner(live.id, target.subject):
            raise DomainError("not_in_session", "that session is over")
        await self.participants.handed_over(
            live.id, me.id, target.id, target.subject, at(now), caller.actor
        )
        await self.calls.leave(live.id, me.id, "handed_over")
        log.info("session handed over (%s)", target.role, extra={"session_id": live.id})
        return mp.HandedOver(session_id=live.id, owner=target.id)

    async def leave(self, caller: Caller, p: ce.SessionLeave) -> ce.Done:
        live, me = await self._mine(caller, p.session_id)
        if me.role not in STAFF:
            raise DomainError("forbidden", "only staff may leave a call that goes on")
        if live.agent_id == caller.subject:
            raise DomainError("invalid_state", "hand the session over first, or end it")
        await self.calls.leave(live.id, me.id, "left")
        return ce.Done()
