"""Multiparty calls: more than two people in one live session (docs/protocol.md, "Three or
more participants"). The session's agent invites a colleague (by skill: a category, a language,
so an interpreter is an agent with that language; or by name); the invitee accepts or
declines; the agent hands the session over and leaves (warm transfer). A supervisor barges in
(visible to all) and may take the session over.

The event models are in client_events.py (the `ClientEvent` base lives there, and the join
answer, which carries its ICE servers and ticket view); their payloads and answers, and the
pushes, are here. What the taxpayer receives names people by display
name and role only, never by user id."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vtax.contract.base import Category, Id, Language, Message, Out, ServerEvent, Timestamp

StaffPart = Literal["agent", "invitee", "supervisor"]
Purpose = Literal["interpreter", "expert", "colleague"]

# ---- what everyone in the call sees ------------------------------------------------------------


class RosterEntry(Out):
    participant_id: str
    role: Literal["taxpayer", "agent", "supervisor"]
    part: Literal["taxpayer", "agent", "invitee", "supervisor"] = Field(
        description="the part in the session: `agent` is the one who owns it now"
    )
    display_name: str = Field(description="staff's display name; empty for the taxpayer")
    label: str = Field(description="what an invitee is there for, e.g. `interpreter: yue`")
    state: Literal["connected", "reconnecting"]


class SessionRoster(ServerEvent):
    """Who is in the call now (visible participants only), sent to each of them whenever it
    changes. A page keeps one peer connection per other entry (a mesh): it opens one for an
    entry it does not have and closes the ones no longer listed. Politeness per pair: the
    taxpayer is polite to everyone; between staff, the one who joined later is polite."""

    event = "session:roster"
    to = "the visible participants"

    session_id: str
    owner: str = Field(description="participant id of the session's agent now")
    participants: list[RosterEntry]


# ---- the agent's colleagues ---------------------------------------------------------------------


class ColleaguesQuery(Message):
    session_id: Id
    category: Category | None = None
    language: Language | None = None


class Colleague(Out):
    user_id: str
    display_name: str
    languages: list[str]
    categories: dict[str, int] = Field(description="business category -> proficiency 1..5")
    status: str = Field(description="the queue's agent status; only `available` can be invited")
    eligible: bool = Field(description="speaks the language and has the category asked for")


class Colleagues(Out):
    colleagues: list[Colleague]


# ---- invitations -------------------------------------------------------------------------------


class InviteIn(Message):
    """By name (`user_id`) or by skill (`category` and/or `language`; the best available
    eligible agent, longest idle first)."""

    session_id: Id
    user_id: Id | None = None
    category: Category | None = None
    language: Language | None = None
    purpose: Purpose | None = Field(
        None, description="default: interpreter when a language other than the session's is asked"
    )
    note: str = Field("", max_length=300)

    @model_validator(mode="after")
    def _one_way(self) -> InviteIn:
        if self.user_id is None and self.category is None and self.language is None:
            raise ValueError("give user_id, or a category and/or a language")
        return self


class Invitee(Out):
    user_id: str
    display_name: str


class Invited(Out):
    invite_id: str
    invitee: Invitee
    expires_in_s: float


class InviteAnswer(Message):
    invite_id: Id
    reason: str = Field("", max_length=200)


class InviteNew(ServerEvent):
    """A colleague asks you into their live call; answer with `invite:accept` or
    `invite:decline` before it expires."""

    event = "invite:new"
    to = "the invited agent"

    invite_id: str
    session_id: str
    inviter: str = Field(description="the inviting agent's display name")
    purpose: Purpose
    label: str
    category: str
    language: str
    question: str
    note: str
    expires_in_s: float


class InviteUpdate(ServerEvent):
    """An invitation was answered, expired or withdrawn (the call ended first)."""

    event = "invite:update"
    to = "the inviting agent and the invited one"

    invite_id: str
    session_id: str
    state: Literal["accepted", "declined", "expired", "cancelled"]
    invitee: str = Field(description="the invited agent's display name")
    reason: str


# ---- barge, hand-over, leave ---------------------------------------------------------------------


class SessionRef(Message):
    session_id: Id


class HandoverIn(Message):
    session_id: Id
    to: Id = Field(description="participant id of the staff member who takes the session")


class HandedOver(Out):
    session_id: str
    owner: str = Field(description="participant id of the session's agent now")


# ---- the record -----------------------------------------------------------------------------------


class ParticipantView(Out):
    """One participant of a session in its record (`GET /api/review/sessions/{id}`)."""

    participant_id: str
    role: Literal["taxpayer", "agent", "supervisor", "invitee"]
    user_id: str
    display_name: str
    part: str = Field(description="e.g. `interpreter: yue`, `expert: cross_border`")
    joined_at: Timestamp | None
    left_at: Timestamp | None
    handled_from: Timestamp | None = Field(description="owned the session from (agents)")
    handled_to: Timestamp | None
