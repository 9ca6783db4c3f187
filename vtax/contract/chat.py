"""Messages of the in-call chat: text between the participants of a live session.

A message is sent with `chat:send` (a client-made `client_id` makes a re-send idempotent),
stored with the session record under a per-session `seq` the database assigns, pushed to the
other participants as `chat:message`, and read back with `chat:history` (after a resume or a
page reload) or, by supervisors and the session's own people, `GET /api/sessions/{id}/messages`.
The Socket.IO events are in client_events.py (`chat:*`), the REST route in endpoints.py
(`# ---- chat`); docs/protocol.md, "In-call chat", tells the rules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from vtax.contract.base import Id, Message, Out, Query, ServerEvent, Timestamp, Whole

# The contract's ceiling on one message's text; `VTAX_CHAT_MAX_CHARS` (default 2,000) is the
# limit in force, refused as `message_too_long` (a text over this ceiling: invalid_payload).
CHAT_TEXT_CEILING = 10_000
HISTORY_PAGE = 200
ChatText = Annotated[str, StringConstraints(max_length=CHAT_TEXT_CEILING)]
ClientMessageId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
Seq = Annotated[int, Field(ge=0, le=2_147_483_647, strict=True), Whole]
SenderRole = Literal["taxpayer", "agent", "supervisor", "expert", "interpreter"]


class ChatSendIn(Message):
    session_id: Id
    client_id: ClientMessageId = Field(
        description="made by the page for this message (e.g. a UUID); the same id again is "
        "the same message: answered with the stored one, never stored twice"
    )
    text: ChatText = Field(
        description="plain text; control characters except line breaks are removed; "
        "empty after that: `message_empty`; over VTAX_CHAT_MAX_CHARS: `message_too_long`"
    )


class ChatHistoryIn(Message):
    session_id: Id
    after_seq: Seq = Field(0, description="the highest `seq` the page holds; 0 for all")
    # not `limit`: a client event's `limit` names its rate-limit bucket
    max_messages: Annotated[int, Field(ge=1, le=HISTORY_PAGE, strict=True), Whole] = HISTORY_PAGE


class ChatMessageFields(Out):
    session_id: str
    seq: int = Field(description="the session's message order, from 1, assigned when stored")
    client_id: str
    from_: str = Field(
        alias="from",
        serialization_alias="from",
        description="the sender's participant id in the live session",
    )
    role: SenderRole = Field(description="the sender's role")
    name: str = Field(description="the sender's display name (staff); empty for taxpayers")
    text: str
    sent_at: Timestamp


class ChatMessage(ServerEvent, ChatMessageFields):
    """A new message of the session (also sent again when its sender re-sends it after a
    reconnect: a page keeps each `seq` once)."""

    event = "chat:message"
    to = "the session's other participants"


class ChatMessageView(ChatMessageFields):
    """One stored message (history, REST)."""


class ChatSent(Out):
    message: ChatMessageView
    duplicate: bool = Field(description="true when `client_id` was already stored")


class ChatHistoryView(Out):
    messages: list[ChatMessageView] = Field(description="seq > after_seq, in order")
    more: bool = Field(description="more messages follow: ask again after the last seq")


class ChatMessagesQuery(Query):
    after_seq: Annotated[int, Field(ge=0, le=2_147_483_647)] = 0
    limit: Annotated[int, Field(ge=1, le=HISTORY_PAGE)] = HISTORY_PAGE


class ChatTranscript(Out):
    session_id: str
    messages: list[ChatMessageView]
    more: bool
