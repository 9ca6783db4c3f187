"""Every error code of the contract, where it occurs, its HTTP status, what it means.

One registry: the REST layer maps a code to its status from here, docs/protocol.md's table
and the pages' `ErrorCode` type (which they translate) are generated from it, and a test
checks that every code the server raises is listed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

Where = Literal["both", "HTTP", "Socket.IO"]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    where: Where
    status: int  # the HTTP status (Socket.IO acks carry only the code)
    meaning: str


ERROR_CODES: dict[str, ErrorCode] = {
    "invalid_payload": ErrorCode(
        "both",
        400,
        "the body or event payload is not JSON/an object, misses a field, has a wrong type, an "
        "unknown field, or a value out of range (`details` names each bad field)",
    ),
    "payload_too_large": ErrorCode(
        "both", 413, "body or event payload larger than the limit (64 KiB each; documents 10 MiB)"
    ),
    "invalid_id": ErrorCode("HTTP", 400, "identity number has a wrong format or check digit"),
    "invalid_credentials": ErrorCode("HTTP", 401, "wrong username or password"),
    "unauthorized": ErrorCode("both", 401, "missing, malformed, forged or expired token or link"),
    "forbidden": ErrorCode("both", 403, "the caller's role may not do this"),
    "not_found": ErrorCode(
        "both", 404, "unknown session, offer, ticket or document (or not visible to the caller)"
    ),
    "method_not_allowed": ErrorCode(
        "HTTP", 405, "the path exists but not with this method (`Allow` lists the methods)"
    ),
    "unknown_event": ErrorCode("Socket.IO", 400, "no such client event"),
    "unknown_category": ErrorCode("both", 400, "not a business category of the catalog"),
    "unknown_language": ErrorCode("both", 400, "not a service language of the catalog"),
    "unknown_channel": ErrorCode("both", 400, "not a channel of the catalog"),
    "already_queued": ErrorCode(
        "Socket.IO",
        409,
        "the taxpayer already has a waiting ticket (take it up with `queue:rejoin`)",
    ),
    "queue_closed": ErrorCode(
        "Socket.IO",
        409,
        "`queue:join` outside the queue's opening hours; the error has `next_open_at`",
    ),
    "queue_full": ErrorCode(
        "Socket.IO", 409, "`queue:join` when the queue holds its maximum number of tickets"
    ),
    "wait_too_long": ErrorCode(
        "Socket.IO", 409, "`queue:join` when the estimated wait exceeds the queue's maximum wait"
    ),
    "no_agents": ErrorCode(
        "Socket.IO",
        409,
        "`queue:join` to a queue set to refuse joins while nobody with the skill is on duty",
    ),
    "in_session": ErrorCode("Socket.IO", 409, "the caller is already in a live session"),
    "offer_expired": ErrorCode(
        "Socket.IO", 409, "the offer was revoked or expired before the accept arrived"
    ),
    "invalid_state": ErrorCode(
        "both",
        409,
        "the step is not allowed now (e.g. rating a session that has not ended, accepting "
        "while away, confirming a summary twice)",
    ),
    "already_rated": ErrorCode(
        "both", 409, "a different rating was already stored for this session"
    ),
    "not_in_session": ErrorCode(
        "both", 403, "the caller is not a participant of that (live) session"
    ),
    "peer_away": ErrorCode(
        "Socket.IO", 409, "`session:transfer` while the taxpayer is reconnecting"
    ),
    "session_ended": ErrorCode(
        "Socket.IO", 409, "`session:resume` for a session that is over (or never existed)"
    ),
    "unsupported_media_type": ErrorCode(
        "HTTP", 415, "an uploaded document is not a PDF, PNG, JPEG or WebP by its content"
    ),
    "hash_mismatch": ErrorCode(
        "HTTP", 409, "the SHA-256 sent with an acknowledgement is not the document's"
    ),
    "document_corrupted": ErrorCode(
        "HTTP", 500, "a stored document no longer matches its SHA-256; it is not served"
    ),
    # ---- appointments (docs/appointments.md) ----
    "slot_full": ErrorCode("HTTP", 409, "every seat of that appointment slot is taken"),
    "slot_unavailable": ErrorCode(
        "HTTP",
        409,
        "not a bookable slot now: outside the lead time and horizon, started, not staffed, or "
        "on a day off",
    ),
    "booking_blocked": ErrorCode(
        "HTTP",
        403,
        "booking is blocked after too many missed appointments this month, until staff lift it",
    ),
    "one_booking_a_day": ErrorCode(
        "HTTP", 409, "the taxpayer already has an active appointment on that day"
    ),
    "cancellation_closed": ErrorCode(
        "HTTP", 409, "too close to the appointment's time to cancel or move it"
    ),
    "too_early": ErrorCode("both", 409, "check-in is not open yet (it opens shortly before T)"),
    "no_show": ErrorCode("both", 409, "the time to check in for that appointment is over"),
    "too_many_materials": ErrorCode("HTTP", 409, "the booking holds its maximum of materials"),
    "materials_need_replacing": ErrorCode(
        "HTTP", 409, "a booking is not approved while a material is marked needs_replacing"
    ),
    "invalid_calendar": ErrorCode(
        "HTTP", 400, "an imported calendar file is not valid (the message says where and why)"
    ),
    "invalid_setting": ErrorCode("both", 500, "a server setting cannot be used (e.g. time zone)"),
    # Identity (docs/identity.md)
    "invalid_phone": ErrorCode(
        "HTTP", 400, "not a mobile number sign-in codes go to (+86, +852 or +853 mobiles)"
    ),
    "invalid_code": ErrorCode(
        "HTTP",
        401,
        "the sign-in code is wrong, expired or used (the same answer whether the number is "
        "registered or not)",
    ),
    "too_many_attempts": ErrorCode(
        "HTTP", 429, "too many tries at one sign-in code: it is void, ask for a new one"
    ),
    "act_for_denied": ErrorCode(
        "both", 403, "no grant in force lets the person act for that enterprise in that role"
    ),
    "step_up_required": ErrorCode(
        "both",
        401,
        "the item needs a recent sign-in at a higher level (`acr`, `auth_time`): sign in again",
    ),
    "step_up_refused": ErrorCode(
        "HTTP",
        403,
        "a step-up (a fresh sign-in started with `step_up=true`) came back as another person: "
        "refused and audited, the session stays as it was",
    ),
    "refresh_reused": ErrorCode(
        "HTTP", 401, "a refresh token was used twice: its whole family is revoked, sign in again"
    ),
    "sign_in_failed": ErrorCode(
        "HTTP",
        401,
        "the identity provider's answer did not validate (state, nonce, issuer, audience, "
        "expiry, signature) or names no registered person",
    ),
    "unknown_provider": ErrorCode("HTTP", 404, "that sign-in method is not enabled here"),
    "account_locked": ErrorCode(
        "HTTP",
        423,
        "too many failed staff sign-ins: locked for a while or until a supervisor unlocks",
    ),
    "second_factor_required": ErrorCode(
        "both",
        401,
        "the authenticator's code is needed (at sign-in, or for recordings and exports)",
    ),
    "kb_entry_exists": ErrorCode(
        "HTTP", 409, "a knowledge-base entry with that key exists already (edit it instead)"
    ),
    "kb_version_conflict": ErrorCode(
        "HTTP",
        409,
        "the knowledge-base entry changed since the version the edit started from: reload it",
    ),
    "kb_file_invalid": ErrorCode(
        "HTTP",
        400,
        "an imported knowledge-base file is not valid; `details` lists each problem with its "
        "line, entry and field",
    ),
    "category_required": ErrorCode(
        "both",
        400,
        "a hand-off whose business category the conversation did not show: the taxpayer "
        "chooses one (`category`)",
    ),
    "rate_limited": ErrorCode(
        "both", 429, "too many requests or events of a kind (docs/protocol.md, Limits)"
    ),
    "draining": ErrorCode(
        "Socket.IO", 503, "the node is shutting down: reconnect (to another node) and retry"
    ),
    "unavailable": ErrorCode(
        "both",
        503,
        "a backend (the database, Redis) is unreachable; retry (`/readyz` says which). Also "
        "the KPIs while the stored days are another zone's than the service zone (an operator "
        "runs `vtax kpi rezone`)",
    ),
    "internal": ErrorCode("both", 500, "an unexpected server error (logged with an incident id)"),
    # ---- the confirmation form
    "form_invalid": ErrorCode(
        "Socket.IO",
        400,
        "a proposed form's values or material links do not fit its items (`details` names each "
        "problem: `items.N.values.FIELD` or `items.N.materials.REQUIREMENT`)",
    ),
    "form_version_stale": ErrorCode(
        "Socket.IO",
        409,
        "a confirmation or refusal of a form version that is not the latest: read the latest "
        "(`confirmation:get`) and decide on it",
    ),
    "form_hash_mismatch": ErrorCode(
        "Socket.IO", 409, "the `sha256` sent is not the hash of that form version's content"
    ),
    "form_already_decided": ErrorCode(
        "Socket.IO",
        409,
        "that form version was confirmed or refused already (a decision never changes)",
    ),
    "form_not_confirmed": ErrorCode(
        "both",
        409,
        "a `resolved` summary of a session whose confirmation form's latest version the "
        "taxpayer has not confirmed",
    ),
    # multiparty (docs/protocol.md, three or more participants)
    "to_required": ErrorCode(
        "Socket.IO", 409, "`rtc:signal` without `to` while the call has more than two people"
    ),
    "invitee_busy": ErrorCode(
        "Socket.IO", 409, "the invited agent is in a call, reserved, in wrap-up or away"
    ),
    "invitee_offline": ErrorCode("Socket.IO", 409, "the invited agent is not signed in"),
    "no_colleague": ErrorCode(
        "Socket.IO", 409, "no available agent has the category or language asked for"
    ),
    "invite_expired": ErrorCode(
        "Socket.IO", 409, "the invitation timed out, was answered, or its call ended"
    ),
    # ---- materials (docs/protocol.md, "Materials") ----
    "materials_full": ErrorCode(
        "HTTP", 409, "the session holds its maximum of materials (`VTAX_MATERIALS_MAX`)"
    ),
    # in-call chat (docs/protocol.md, "In-call chat")
    "message_empty": ErrorCode(
        "Socket.IO", 400, "a chat message with no text left once control characters are removed"
    ),
    "message_too_long": ErrorCode(
        "Socket.IO", 413, "a chat message longer than VTAX_CHAT_MAX_CHARS characters (2,000)"
    ),
    "chat_id_reused": ErrorCode(
        "Socket.IO", 409, "the message's `client_id` was already used for another text"
    ),
    # monitor and whisper (vtax/app/monitor.py)
    "monitor_disabled": ErrorCode(
        "Socket.IO", 403, "this service does not allow monitoring (`VTAX_MONITOR_ALLOWED`)"
    ),
    "monitor_unavailable": ErrorCode(
        "Socket.IO", 503, "no media-leg worker is connected to take the monitoring; retry"
    ),
    "monitor_full": ErrorCode(
        "Socket.IO", 409, "as many supervisors as allowed already monitor that session"
    ),
    "not_monitoring": ErrorCode(
        "Socket.IO", 403, "the caller does not monitor that session (or is not its agent or leg)"
    ),
    "whisper_busy": ErrorCode("Socket.IO", 409, "another supervisor is whispering to the agent"),
}


def http_status(code: str) -> int:
    """The HTTP status of an error code (409 for a refusal the registry does not know)."""
    known = ERROR_CODES.get(code)
    return known.status if known is not None else 409


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """Where and what, for each problem of a refused payload (`error.details`), the same over
    REST and Socket.IO."""
    return [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()]
