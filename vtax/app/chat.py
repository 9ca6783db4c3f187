"""In-call chat: text messages between the participants of a live session.

Who may write or read is whoever is a participant of the live session now (the connection
bound to a participant in the live store, `Calls.bound_participant`), whatever their role and
however many they are; the recorder is a participant but no reader. A message is cleaned (no
control characters), bounded (`VTAX_CHAT_MAX_CHARS`), stored with the session record under
the session's next `seq` (vtax/review/chat_log.py), then pushed as `chat:message` to the
other participants' connections on whichever node they are. A participant who was away asks
for what it missed with `chat:history` (docs/protocol.md, "In-call chat")."""

from __future__ import annotations

import time
import unicodedata

from vtax.app.calls import Calls
from vtax.app.ports import Caller, Notifier, at
from vtax.config import Settings
from vtax.contract import chat as ct
from vtax.contract import client_events as ce
from vtax.errors import DomainError
from vtax.live import LiveSession
from vtax.review.chat_log import ChatLog, Sender

NOT_READERS = frozenset({"recorder"})
# Format characters a message may not carry: bidirectional embeddings, overrides and isolates
# (text that reads otherwise than it is stored), zero-width space, byte order mark. Joiners
# (U+200C, U+200D) stay: emoji and some scripts need them.
DROPPED_FORMAT = frozenset(
    "\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
LINE_BREAKS = str.maketrans({"\r": "\n", "\u2028": "\n", "\u2029": "\n", "\t": " "})


def clean_text(raw: str) -> str:
    """The text as stored: NFC, line breaks as `\\n`, no control, surrogate or dropped format
    characters, at most one empty line in a row, no blank lines at either end."""
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n").translate(LINE_BREAKS))
    kept = "".join(
        ch
        for ch in text
        if ch == "\n" or (unicodedata.category(ch) not in ("Cc", "Cs") and ch not in DROPPED_FORMAT)
    )
    while "\n\n\n" in kept:
        kept = kept.replace("\n\n\n", "\n\n")
    return kept.strip()


class Chat:
    def __init__(self, settings: Settings, calls: Calls, log: ChatLog, notifier: Notifier) -> None:
        self.settings = settings
        self.calls = calls
        self.log = log
        self.notifier = notifier
        self.sent = 0  # messages stored by this node, for /metrics (vtax_chat_messages)

    async def _participant(self, caller: Caller, session_id: str) -> tuple[LiveSession, str]:
        participant_id = await self.calls.bound_participant(caller, session_id)
        live = await self.calls.get(session_id)
        if live is None:
            raise DomainError("session_ended", "the session is over")
        me = live.participants.get(participant_id)
        if me is None or me.role in NOT_READERS:
            raise DomainError("not_in_session", "you are not a participant of that live session")
        return live, participant_id

    async def send(self, caller: Caller, p: ce.ChatSend) -> ct.ChatSent:
        """Store the message (once per client id) and push it to the other participants; a
        re-send of a stored message is pushed again (pages keep each seq once)."""
        live, participant_id = await self._participant(caller, p.session_id)
        text = clean_text(p.text)
        if not text:
            raise DomainError("message_empty", "the message has no text")
        limit = self.settings.chat_max_chars
        if len(text) > limit:
            raise DomainError("message_too_long", f"a message has at most {limit} characters")
        me = live.participants[participant_id]
        sender = Sender(participant_id, me.role, me.subject, me.display_name)
        stored, duplicate = await self.log.append(
            live.id, p.client_id, sender, text, at(time.time())
        )
        if duplicate and stored["text"] != text:
            raise DomainError("chat_id_reused", "that client_id names another message")
        others = [
            q.sid
            for q in live.participants.values()
            if q.id != participant_id
            and q.sid is not None
            and q.state == "connected"
            and q.role not in NOT_READERS
        ]
        await self.notifier.to_connections(others, ct.ChatMessage.model_validate(stored))
        self.sent += 0 if duplicate else 1
        return ct.ChatSent(message=ct.ChatMessageView.model_validate(stored), duplicate=duplicate)

    async def history(self, caller: Caller, p: ce.ChatHistory) -> ct.ChatHistoryView:
        """The session's messages after `after_seq`, for a participant of the live session."""
        live, _ = await self._participant(caller, p.session_id)
        messages, more = await self.log.after(live.id, p.after_seq, p.max_messages)
        return ct.ChatHistoryView.model_validate({"messages": messages, "more": more})

    async def transcript(self, session_id: str, after_seq: int, limit: int) -> ct.ChatTranscript:
        """A session's messages over REST (the route checks the caller may see the session)."""
        messages, more = await self.log.after(session_id, after_seq, limit)
        return ct.ChatTranscript.model_validate(
            {"session_id": session_id, "messages": messages, "more": more}
        )
