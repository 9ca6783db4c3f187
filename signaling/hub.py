"""The Socket.IO transport: authenticates connections, validates every client event against
its contract model (vtax/contract/client_events.py), answers every event with an `{ok, ...}`
ack, and hands it to a use case of the application layer (signaling/events.py maps them).
It is also the application's `Notifier` (vtax/app/ports.py): pushes reach a connection on
whichever node it is, through the Socket.IO manager.

With `VTAX_VALIDATE_OUTGOING` on (the test suite), every event the server sends and every
ack answer is checked against its model first; a mismatch is a bug and raises."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError

from signaling.wire import UNREADABLE, encoded_size
from vtax.app.ports import Caller
from vtax.auth import Principal, Unauthorized
from vtax.config import Settings
from vtax.contract.base import CODED_ERRORS, Out
from vtax.contract.client_events import CLIENT_EVENTS, AuthRenew, ClientEvent
from vtax.contract.errors import validation_details
from vtax.contract.server_events import SERVER_EVENTS, ServerDraining, ServerEvent
from vtax.errors import DomainError
from vtax.unreachable import backend_of, exc_line, is_unreachable

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=ClientEvent)
Ack = dict[str, Any]
# Socket.IO's own events: a client may never emit them (they would run the server's
# connection handlers: a zombie socket, or a socket's identity swapped without a handshake).
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "message", "*"})
SUPERVISORS_ROOM = "role:supervisor"
# Events that re-check the connection's token first.
RECHECKED = frozenset({"session:resume"})
# Never sent to a client: the managers turn an emit of it to a user room into disconnects.
CUT_EVENT = "vtax:cut"


def error(code: str, message: str, **extra: Any) -> Ack:
    return {"ok": False, "error": {"code": code, "message": message, **extra}}


def payload_error(name: str, exc: ValidationError) -> Ack:
    """`invalid_payload` with details; a catalog value the service does not offer gets its own
    code (`unknown_category`, `unknown_language`, `unknown_channel`), as over REST."""
    for e in exc.errors():
        if e["type"] in CODED_ERRORS:
            return error(e["type"], e["msg"])
    return error(
        "invalid_payload", f"{name}: the payload is not valid", details=validation_details(exc)
    )


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Server(socketio.AsyncServer):
    """python-socketio's server, dispatching only the contract's events: a client event named
    like one of Socket.IO's own (`connect`, `disconnect`, ...) is answered `unknown_event`
    and never reaches their handlers. An Engine.IO connection that has not connected to the
    Socket.IO namespace (with a token) within `connect_timeout_s` is closed: a socket that
    never authenticates is not held forever."""

    def __init__(self, *args: Any, connect_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connect_timeout_s = connect_timeout_s
        self.unauthenticated_closed = 0  # for /metrics
        self._pending: set[asyncio.Task[None]] = set()
        # connections to close once the event being handled has its answer
        self.cut_after_answer: set[str] = set()

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        await super()._handle_eio_connect(eio_sid, environ)
        task = asyncio.create_task(self._close_if_silent(eio_sid))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _close_if_silent(self, eio_sid: str) -> None:
        await asyncio.sleep(self.connect_timeout_s)
        if eio_sid in self.environ and self.manager.sid_from_eio_sid(eio_sid, "/") is None:
            self.unauthenticated_closed += 1
            await self.eio.disconnect(eio_sid)

    def cancel_pending(self) -> None:
        for task in self._pending:
            task.cancel()

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        name = data[0] if isinstance(data, list) and data else None
        if not isinstance(name, str) or name in RESERVED_EVENTS or data == UNREADABLE:
            if id is not None:
                shown = name[:64] if isinstance(name, str) else type(name).__name__
                answer = (
                    error(
                        "invalid_payload",
                        "the payload is not JSON this server reads (nested too deeply?)",
                    )
                    if data == UNREADABLE
                    else error("unknown_event", f"there is no event {shown!r}")
                )
                await self._send_packet(
                    eio_sid,
                    self.packet_class(
                        socketio.packet.ACK, namespace=namespace or "/", id=id, data=[answer]
                    ),
                )
            return
        await super()._handle_event(eio_sid, namespace, id, data)
        if self.cut_after_answer:  # refused by a re-check: the answer is out, now cut it
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace or "/")
            if sid in self.cut_after_answer:
                self.cut_after_answer.discard(sid)
                await self.disconnect(sid, ignore_queue=True)


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
    token: str = ""  # re-checked on `session:resume`
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    expiry: asyncio.TimerHandle | None = None  # cuts the socket when its token expires


# Events refused while the node drains (SIGTERM): nothing new starts here.
DRAIN_REFUSED = frozenset({"queue:join", "offer:accept"})


OUTGOING = {model.event: model for model in SERVER_EVENTS}
CLIENT = {model.event: model for model in CLIENT_EVENTS}


def caller_of(conn: Connection) -> Caller:
    p = conn.principal
    return Caller(
        p.subject,
        p.role,  # type: ignore[arg-type]
        conn.sid,
        expires_at=p.expires_at,
        acting_for=p.acting_for,
        acting_role=p.acting_role,
        acr=p.acr,
        auth_time=p.auth_time,
    )


def check_outgoing(event: str, data: dict[str, Any]) -> None:
    """Raise if `data` is not what the model of `event` sends (the test suite's switch)."""
    model = OUTGOING.get(event)
    if model is None:
        raise AssertionError(f"the server sent {event!r}, which has no model in the contract")
    dumped = model.model_validate(data).model_dump(mode="json", by_alias=True)
    if dumped != data:
        raise AssertionError(f"{event}: sent {data!r}, the model says {dumped!r}")


class Hub:
    """Connections and event dispatch. The application's use cases are registered on it
    (signaling/events.py) and get `connect` / `disconnect` callbacks."""

    # Set by `authenticate_with` once the services exist (they need the hub as notifier).
    authenticate: Callable[[object], Awaitable[Principal]]

    def __init__(self, sio: socketio.AsyncServer, settings: Settings) -> None:
        self.sio = sio
        self.settings = settings
        self.validate_outgoing = settings.validate_outgoing
        self.connections: dict[str, Connection] = {}
        self.draining = False
        self.limits = {
            "signal": (settings.signal_rate, settings.signal_burst),
            "join": (settings.join_rate, settings.join_burst),
            "consult": (settings.assistant_rate, settings.assistant_burst),
            "form": (settings.form_rate, settings.form_burst),  # the confirmation form
            "chat": (settings.chat_rate, settings.chat_burst),
            # screen share and call quality (vtax/contract/screen.py, quality.py)
            "quality": (settings.quality_rate, settings.quality_burst),
            "pointer": (settings.pointer_rate, settings.pointer_burst),
        }
        self.rate_limited = 0  # for /metrics
        self.expired_cut = 0  # sockets cut when their token expired
        self.revoked_cut = 0  # sockets cut by the re-check: their token no longer holds
        self._recheck: asyncio.Task[None] | None = None
        self._cuts: set[asyncio.Task[None]] = set()
        self.events_handled = 0
        self.connect_hooks: list[Callable[[Connection], Awaitable[None]]] = []
        self.disconnect_hooks: list[Callable[[Connection], Awaitable[None]]] = []
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        sio.on("*", self.on_unknown)
        self.event(AuthRenew.event, AuthRenew, AuthRenew.roles, self._renew, AuthRenew.limit)

    def authenticate_with(self, authenticate: Callable[[object], Awaitable[Principal]]) -> None:
        """Connections are verified with this (vtax.compose `Services.authenticate`: staff
        accounts checked live, taxpayer tokens against their sign-in), at connect and again
        on `session:resume`."""
        self.authenticate = authenticate

    def use_case(self, model: type[E], fn: Callable[[Caller, E], Awaitable[Out]]) -> None:
        """Register a contract event onto a use case: the model names the event, who may
        send it, its rate limit and its answer."""
        answer = model.answer

        async def call(conn: Connection, payload: E) -> Ack:
            result = await fn(caller_of(conn), payload)
            if self.validate_outgoing and not isinstance(result, answer):
                raise AssertionError(f"{model.event} answered {type(result).__name__}")
            return result.model_dump(mode="json", by_alias=True)

        self.event(model.event, model, model.roles, call, model.limit)

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
        contract = CLIENT.get(name)
        answer_model = contract.answer if contract is not None else None

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
            if name in RECHECKED and not await self._still_valid(conn):
                return error("unauthorized", "the sign-in has ended; sign in again")
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
                return payload_error(name, exc)
            try:
                answer = await fn(conn, payload)
            except DomainError as exc:
                return {"ok": False, "error": exc.as_dict()}
            except Exception as exc:
                if is_unreachable(exc):  # an answer at once, not a hang nor a traceback
                    what = backend_of(exc)
                    log.warning("event %s: %s", name, exc_line(exc), extra={"outage": what})
                    return error("unavailable", f"the {what} is unreachable; retry shortly")
                incident = uuid.uuid4().hex[:12]
                log.exception("event %s failed (incident %s)", name, incident)
                return error("internal", f"internal error, incident {incident}")
            if self.validate_outgoing and answer_model is not None:
                dumped = answer_model.model_validate(answer).model_dump(mode="json", by_alias=True)
                if dumped != answer:
                    raise AssertionError(f"{name} answered {answer!r}, the model says {dumped!r}")
            return {"ok": True, **answer}

        self.sio.on(name, handler)

    async def _still_valid(self, conn: Connection) -> bool:
        """The connection's token still holds (a resume must not outlive a sign-out, a
        disabled person, a revoked kiosk or an ended grant); if not, the socket is cut."""
        try:
            await self.authenticate(conn.token)
        except Unauthorized:
            if isinstance(self.sio, Server):
                self.sio.cut_after_answer.add(conn.sid)  # after the `unauthorized` answer
            else:
                await self.sio.disconnect(conn.sid)
            return False
        return True

    async def _renew(self, conn: Connection, payload: AuthRenew) -> Ack:
        """`auth:renew`: the connection takes a refreshed token of the same account."""
        try:
            principal = await self.authenticate(payload.token)
        except Unauthorized as exc:
            raise DomainError("unauthorized", str(exc)) from None
        if (principal.subject, principal.role) != (conn.principal.subject, conn.principal.role):
            raise DomainError("forbidden", "only a token of the same account renews a connection")
        conn.principal, conn.token = principal, payload.token
        self._arm_expiry(conn)
        return {}

    def _arm_expiry(self, conn: Connection) -> None:
        if conn.expiry is not None:
            conn.expiry.cancel()
            conn.expiry = None
        if conn.principal.expires_at != float("inf"):  # an expired token receives nothing more
            delay = max(0.0, conn.principal.expires_at - time.time())
            conn.expiry = asyncio.get_running_loop().call_later(delay, self._expire, conn)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = await self.authenticate(token)
        except Unauthorized as exc:
            refusal = socketio.exceptions.ConnectionRefusedError(str(exc))
            # Top-level `code` for Python clients, `data.code` for the JS client's err.data.
            refusal.error_args = {
                "message": str(exc),
                "code": "unauthorized",
                "data": {"code": "unauthorized", "message": str(exc)},
            }
            raise refusal from None
        conn = Connection(sid, principal, token if isinstance(token, str) else "")
        self.connections[sid] = conn
        self._arm_expiry(conn)
        await self.sio.enter_room(sid, self.user_room(principal.subject))
        if principal.role == "supervisor":
            await self.sio.enter_room(sid, SUPERVISORS_ROOM)
        for hook in self.connect_hooks:
            await hook(conn)

    # ---- the re-check of open sockets -------------------------------------------------------

    def start_recheck(self, every_s: float) -> None:
        """Check every open socket's token again every `every_s` (0: never): what revokes a
        token in another process (the CLI on the embedded default) reaches the sockets here."""
        if every_s > 0 and self._recheck is None:
            self._recheck = asyncio.create_task(self._recheck_forever(every_s))

    async def stop_recheck(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recheck
            self._recheck = None

    async def _recheck_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.recheck()
            except Exception:
                log.exception("socket re-check failed")

    async def recheck(self) -> int:
        """Cut the sockets whose token no longer holds (the person disabled, signed out
        everywhere, the kiosk revoked, the grant ended, the staff account disabled). A check
        that cannot be made (the database or Redis down) cuts nothing. Returns how many."""
        cut = 0
        for conn in list(self.connections.values()):
            if self.connections.get(conn.sid) is not conn or not conn.token:
                continue
            try:
                await self.authenticate(conn.token)
            except Unauthorized:
                if self.connections.get(conn.sid) is conn:
                    self.revoked_cut += 1
                    cut += 1
                    log.info("socket cut: its token no longer holds", extra={"sid": conn.sid})
                    await self.sio.disconnect(conn.sid)
            except Exception as exc:  # an outage: the next round tries again
                log.warning("socket re-check skipped: %s", exc_line(exc))
                return cut
            await asyncio.sleep(0)  # one socket at a time: the events go on between
        return cut

    def _expire(self, conn: Connection) -> None:
        if self.connections.get(conn.sid) is conn:
            self.expired_cut += 1
            task = asyncio.create_task(self.sio.disconnect(conn.sid))
            self._cuts.add(task)
            task.add_done_callback(self._cuts.discard)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self.connections.pop(sid, None)
        if conn is None:
            return
        if conn.expiry is not None:
            conn.expiry.cancel()
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

    # ---- sending (the Notifier) --------------------------------------------------------------

    async def send(self, event: str, data: dict[str, Any], sids: Sequence[str]) -> None:
        """Emit to exactly these connections. (python-socketio broadcasts on `to=[]`.)

        The hot path of the relay: a connection on this node gets the packet directly (one
        encode, no task per recipient, no pub/sub round trip with Redis); others go through
        the manager, which publishes them to their node. Measured in docs/benchmarks.md."""
        if not sids:
            return
        if self.validate_outgoing:
            check_outgoing(event, data)
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

    @staticmethod
    def _wire(message: ServerEvent) -> dict[str, Any]:
        return message.model_dump(mode="json", by_alias=True)

    async def to_user(self, subject: str, message: ServerEvent) -> None:
        await self.sio.emit(message.event, self._wire(message), room=self.user_room(subject))

    async def to_connections(self, sids: Sequence[str], message: ServerEvent) -> None:
        await self.send(message.event, self._wire(message), sids)

    async def relay(self, sids: Sequence[str], signal: dict[str, Any]) -> None:
        await self.send("rtc:signal", signal, sids)

    async def to_role(self, role: str, message: ServerEvent) -> None:
        if role != "supervisor":
            raise ValueError(f"no room for role {role!r}")
        await self.sio.emit(message.event, self._wire(message), room=SUPERVISORS_ROOM)

    async def to_everyone_here(self, message: ServerEvent) -> None:
        await self.send(message.event, self._wire(message), list(self.connections))

    async def disconnect(self, sid: str) -> None:
        await self.sio.disconnect(sid)

    async def disconnect_user(self, subject: str) -> None:
        """Cut every connection of an account, on every node (its tokens were revoked).
        Scaled out, the cut travels as an emit to the account's room that each node's manager
        turns into disconnects of its own members (signaling/app.py `RedisManager`)."""
        room = self.user_room(subject)
        if getattr(self.sio.manager, "cuts_rooms", False):
            await self.sio.manager.emit(CUT_EVENT, None, namespace="/", room=room)
        else:
            await self.cut_here(room)

    async def cut_here(self, room: str) -> None:
        """Disconnect this node's connections in a user room."""
        sids = [
            c.sid for c in self.connections.values() if self.user_room(c.principal.subject) == room
        ]
        for sid in sids:
            await self.sio.disconnect(sid, ignore_queue=True)

    def is_here(self, sid: str) -> bool:
        return sid in self.connections

    def has_connection_here(self, subject: str) -> bool:
        return any(c.principal.subject == subject for c in self.connections.values())

    # ---- the node --------------------------------------------------------------------------

    def count_by_role(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for conn in self.connections.values():
            counts[conn.principal.role] = counts.get(conn.principal.role, 0) + 1
        return counts

    async def drain(self, grace_s: float) -> None:
        """SIGTERM: refuse new work, tell every client to move, then let them go; sessions
        stay resumable (their participants get the reconnect grace)."""
        self.draining = True
        await self.to_everyone_here(ServerDraining(reconnect=True, within_s=grace_s))
        if grace_s > 0:
            deadline = time.monotonic() + grace_s
            while self.connections and time.monotonic() < deadline:  # noqa: ASYNC110 - clients leave on their own
                await asyncio.sleep(0.1)
        for sid in list(self.connections):
            await self.sio.disconnect(sid)
