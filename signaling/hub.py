"""Socket.IO plumbing: authenticates connections, validates every event against its schema,
answers every event with an `{ok, ...}` ack and routes it to a feature module
(`signaling.queueing` for the queue, `signaling.sessions` for live sessions)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError

from signaling.wire import encoded_size
from vtax.accounts import Accounts
from vtax.auth import Principal, TokenIssuer, Unauthorized
from vtax.catalog import Catalog
from vtax.config import Settings
from vtax.errors import DomainError
from vtax.review.records import SessionRecords
from vtax.review.service_loop import Parties

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
Ack = dict[str, Any]


def error(code: str, message: str, **extra: Any) -> Ack:
    return {"ok": False, "error": {"code": code, "message": message, **extra}}


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()]


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class TokenBucket:
    """`rate` tokens per second up to `burst`; one token per event."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class Connection:
    sid: str
    principal: Principal
    buckets: dict[str, TokenBucket] = field(default_factory=dict)


# Events refused while the node drains (SIGTERM): nothing new starts here.
DRAIN_REFUSED = frozenset({"queue:join", "offer:accept"})


class Hub:
    """Connections and event dispatch. Feature modules register their events on it and get
    `on_connect` / `on_disconnect` callbacks."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        settings: Settings,
        issuer: TokenIssuer,
        accounts: Accounts,
        records: SessionRecords,
        catalog: Catalog,
    ) -> None:
        self.sio = sio
        self.settings = settings
        self.issuer = issuer
        self.accounts = accounts
        self.records = records
        self.catalog = catalog
        self.connections: dict[str, Connection] = {}
        self.draining = False
        self.limits = {
            "signal": (settings.signal_rate, settings.signal_burst),
            "join": (settings.join_rate, settings.join_burst),
        }
        self.rate_limited = 0  # for /metrics
        self.events_handled = 0
        self.connect_hooks: list[Callable[[Connection], Awaitable[None]]] = []
        self.disconnect_hooks: list[Callable[[Connection], Awaitable[None]]] = []
        # Called on every agent state change: (agent_id, status, reason, at) — the review
        # module keeps the history for occupancy.
        self.agent_state_hooks: list[Callable[[str, str, str, datetime], Awaitable[None]]] = []
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        sio.on("*", self.on_unknown)

    def event(
        self,
        name: str,
        schema: type[M],
        roles: tuple[str, ...],
        fn: Callable[[Connection, M], Awaitable[Ack]],
        limit: str | None = None,
    ) -> None:
        """Register a client event: role check, rate limit, size check, schema validation,
        error mapping. `limit` names a token bucket in `self.limits` shared by such events."""
        max_bytes = self.settings.max_event_bytes
        refused_while_draining = name in DRAIN_REFUSED

        async def handler(sid: str, *args: Any) -> Ack:
            conn = self.connections.get(sid)
            if conn is None:
                return error("unauthorized", "not connected")
            if conn.principal.expires_at < time.time():
                return error("unauthorized", "the token has expired; sign in again")
            if conn.principal.role not in roles:
                return error("forbidden", f"{name} is not allowed for role {conn.principal.role}")
            self.events_handled += 1
            if limit is not None:
                bucket = conn.buckets.get(limit)
                if bucket is None:
                    bucket = conn.buckets[limit] = TokenBucket(*self.limits[limit])
                if not bucket.take():
                    self.rate_limited += 1
                    return error("rate_limited", f"too many {name} events; slow down")
            if refused_while_draining and self.draining:
                return error("draining", "this node is shutting down; reconnect to continue")
            if len(args) != 1:
                return error("invalid_payload", f"{name} takes exactly one payload object")
            size = encoded_size(args[0])
            if size is None:
                return error("invalid_payload", f"{name}: binary data is not accepted (JSON only)")
            if size > max_bytes:
                return error("payload_too_large", f"the payload is larger than {max_bytes} bytes")
            try:
                payload = schema.model_validate(args[0])
            except ValidationError as exc:
                return error(
                    "invalid_payload",
                    f"{name}: the payload is not valid",
                    details=validation_details(exc),
                )
            try:
                return {"ok": True, **await fn(conn, payload)}
            except DomainError as exc:
                return {"ok": False, "error": exc.as_dict()}
            except Exception:
                incident = uuid.uuid4().hex[:12]
                log.exception("event %s failed (incident %s)", name, incident)
                return error("internal", f"internal error, incident {incident}")

        self.sio.on(name, handler)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = self.issuer.verify(token)
            if principal.role in ("agent", "supervisor"):
                staff = await self.accounts.staff(principal.subject)
                if staff is None or staff.role != principal.role:
                    raise Unauthorized("the account is disabled")
        except Unauthorized as exc:
            refusal = socketio.exceptions.ConnectionRefusedError(str(exc))
            # Top-level `code` for Python clients, `data.code` for the JS client's err.data.
            refusal.error_args = {
                "message": str(exc),
                "code": "unauthorized",
                "data": {"code": "unauthorized", "message": str(exc)},
            }
            raise refusal from None
        conn = Connection(sid, principal)
        self.connections[sid] = conn
        await self.sio.enter_room(sid, self.user_room(principal.subject))
        for hook in self.connect_hooks:
            await hook(conn)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self.connections.pop(sid, None)
        if conn is None:
            return
        for hook in self.disconnect_hooks:
            try:
                await hook(conn)
            except Exception:
                log.exception("disconnect hook failed for %s", sid)

    async def on_unknown(self, event: str, sid: str, *args: Any) -> Ack:
        return error("unknown_event", f"there is no event {event[:64]!r}")

    @staticmethod
    def user_room(subject: str) -> str:
        return f"user:{subject}"

    async def send(self, event: str, data: dict[str, Any], sids: list[str]) -> None:
        """Emit to exactly these connections. (python-socketio broadcasts on `to=[]`.)

        The hot path of the relay: a connection on this node gets the packet directly (one
        encode, no task per recipient, no pub/sub round trip with Redis); others go through
        the manager, which publishes them to their node. Measured in docs/benchmarks.md."""
        if not sids:
            return
        remote = []
        packet = None
        for sid in sids:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            if eio_sid is None:
                remote.append(sid)
                continue
            if packet is None:  # one packet object for every local recipient
                packet = self.sio.packet_class(
                    socketio.packet.EVENT, namespace="/", data=[event, data]
                )
            await self.sio._send_packet(eio_sid, packet)  # pinned python-socketio 5.18
        if remote:
            await self.sio.emit(event, data, to=remote)

    async def send_user(self, event: str, data: dict[str, Any], subject: str) -> None:
        await self.sio.emit(event, data, room=self.user_room(subject))

    async def loop_changed(self, session_id: str, step: str, parties: Parties, *to: str) -> None:
        """`session:loop {session_id, step}` to the session's taxpayer and/or agent (`to`):
        a step of the review loop changed, so their page refreshes at once instead of waiting
        for its next poll. `parties` are the ones the step read under its lock (its
        `StepResult`), so announcing costs no query. Never fails the step that caused it."""
        try:
            payload = {"session_id": session_id, "step": step}
            for role, subject in zip(("taxpayer", "agent"), parties, strict=True):
                if role in to and subject:
                    await self.send_user("session:loop", payload, subject)
        except Exception:
            log.exception("could not announce %s of session %s", step, session_id)

    def count_by_role(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for conn in self.connections.values():
            counts[conn.principal.role] = counts.get(conn.principal.role, 0) + 1
        return counts

    async def drain(self, grace_s: float) -> None:
        """SIGTERM: refuse new work, tell every client to move, then let them go; sessions
        stay resumable (their participants get the reconnect grace)."""
        self.draining = True
        await self.sio.emit("server:draining", {"reconnect": True, "within_s": grace_s})
        if grace_s > 0:
            deadline = time.monotonic() + grace_s
            while self.connections and time.monotonic() < deadline:  # noqa: ASYNC110 - clients leave on their own
                await asyncio.sleep(0.1)
        for sid in list(self.connections):
            await self.sio.disconnect(sid)

    def has_connection(self, subject: str) -> bool:
        return any(c.principal.subject == subject for c in self.connections.values())
