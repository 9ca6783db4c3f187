"""Load-client side of benchmarks/signaling_bench.py: light protocol clients over aiohttp
WebSockets and the closed-loop ping-pong driver.

- `SioConn` speaks Engine.IO 4 / Socket.IO 5 directly over one WebSocket (no polling, no
  python-socketio client): `0{open}` -> `40{auth}` -> `40{sid}`; events `42[id][name, data]`,
  acks `43id[data]`; it answers the server's Engine.IO ping `2` with `3`.
- `WsConn` is a plain WebSocket for the bare relay and PeerJS (`{type, dst, payload}`).

The relay hot path never parses JSON: a taxpayer-side frame that is an event is the pong (the
driver keeps one ping in flight per pair), an agent-side event is a ping to answer with a
pre-encoded pong. During set-up frames are parsed and dispatched normally.
"""

# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType

TEXT = WSMsgType.TEXT
ENDED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
perf = time.perf_counter

# An ICE candidate as browsers trickle it: the payload of every relayed message, all servers.
CANDIDATE = {
    "candidate": "candidate:842163049 1 udp 1677729535 192.0.2.3 46154 typ srflx raddr "
    "10.0.0.1 rport 46154 generation 0 ufrag EsAw network-cost 999",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "EsAw",
}


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Conn:
    """One client WebSocket with a reader task. `on_text(frame)` may return a frame to send."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.on_text: Callable[[str], str | None] = lambda _frame: None
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        ws = self.ws
        try:
            while True:
                msg = await ws.receive()
                if msg.type is TEXT:
                    out = self.on_text(msg.data)
                    if out is not None:
                        await ws.send_str(out)
                elif msg.type in ENDED:
                    break
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            pass
        finally:
            self.closed = True

    async def send(self, frame: str) -> None:
        await self.ws.send_str(frame)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        try:
            await asyncio.wait_for(self.ws.close(), 2)
        except (TimeoutError, aiohttp.ClientError, ConnectionError, RuntimeError):
            pass


class SioConn(Conn):
    """A Socket.IO client on the default namespace, WebSocket transport only."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__(ws)
        self.next_id = 0
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.inbox: dict[str, list[Any]] = defaultdict(list)
        self.waiters: dict[str, list[asyncio.Future[Any]]] = defaultdict(list)
        self.handlers: dict[str, Callable[[Any], None]] = {}
        self.on_text = self.generic

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, url: str, token: str) -> SioConn:
        ws = await http.ws_connect(
            f"{url}/socket.io/?EIO=4&transport=websocket", autoping=True, max_msg_size=0
        )
        opened = await ws.receive(timeout=10)
        if opened.type is not TEXT or not opened.data.startswith("0"):
            await ws.close()
            raise RuntimeError(f"no Engine.IO open packet: {opened.data!r}")
        await ws.send_str("40" + dumps({"token": token}))
        while True:
            reply = await ws.receive(timeout=10)
            if reply.type is not TEXT:
                raise RuntimeError(f"connection closed during connect: {reply!r}")
            if reply.data == "2":
                await ws.send_str("3")
                continue
            if reply.data.startswith("40"):
                break
            await ws.close()
            raise RuntimeError(f"Socket.IO connect refused: {reply.data[:200]}")
        conn = cls(ws)
        conn.start()
        return conn

    # ---- set-up mode: parse and dispatch ----------------------------------------------

    def generic(self, frame: str) -> str | None:
        if frame == "2":
            return "3"
        if frame.startswith("42"):
            event, *args = json.loads(frame[2 + _digits(frame, 2) :])
            payload = args[0] if args else None
            handler = self.handlers.get(event)
            if handler is not None:
                handler(payload)
            elif self.waiters[event]:
                self.waiters[event].pop(0).set_result(payload)
            else:
                self.inbox[event].append(payload)
        elif frame.startswith("43"):
            n = _digits(frame, 2)
            fut = self.acks.pop(int(frame[2 : 2 + n]), None)
            if fut is not None and not fut.done():
                data = json.loads(frame[2 + n :])
                fut.set_result(data[0] if data else None)
        return None

    async def call(self, event: str, payload: Any, timeout: float = 30) -> Any:
        self.next_id += 1
        ack_id = self.next_id
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = fut
        await self.ws.send_str(f"42{ack_id}" + dumps([event, payload]))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.acks.pop(ack_id, None)

    async def wait_event(self, event: str, timeout: float = 30) -> Any:
        if self.inbox[event]:
            return self.inbox[event].pop(0)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters[event].append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            if fut in self.waiters[event]:
                self.waiters[event].remove(fut)


def _digits(frame: str, start: int) -> int:
    n = 0
    while start + n < len(frame) and frame[start + n].isdigit():
        n += 1
    return n


async def ws_connect(http: aiohttp.ClientSession, url: str, expect_open: bool) -> Conn:
    """A plain WebSocket (bare relay; PeerJS sends `{"type":"OPEN"}` first)."""
    ws = await http.ws_connect(url, autoping=True, max_msg_size=0)
    if expect_open:
        first = await ws.receive(timeout=10)
        if first.type is not TEXT or '"OPEN"' not in first.data:
            await ws.close()
            raise RuntimeError(f"PeerJS did not open: {first.data!r}")
    conn = Conn(ws)
    conn.start()
    return conn


# ---- the closed-loop ping-pong ----------------------------------------------------------


@dataclass
class Load:
    """Counters shared by every pair of one server under load."""

    running: bool = False
    recording: bool = False
    round_trips: int = 0
    ack_errors: int = 0
    dead_pairs: int = 0  # pairs found closed when a window starts
    rtts: list[float] = field(default_factory=list)


class Pair:
    """A taxpayer-side and an agent-side connection of one session (or one peer pair)."""

    def __init__(
        self,
        load: Load,
        caller: Conn,
        callee: Conn,
        ping: Callable[[int], str],
        pong: Callable[[int], str],
        sio: bool,
    ) -> None:
        self.load, self.caller, self.callee = load, caller, callee
        self.ping, self.pong = ping, pong
        self.n = 0
        self.t0 = 0.0
        self.busy = False
        if sio:
            caller.on_text = self._caller_sio
            callee.on_text = self._callee_sio
        else:
            caller.on_text = self._caller_ws
            callee.on_text = self._callee_ws

    async def kick(self) -> None:
        if self.caller.closed or self.callee.closed:
            self.load.dead_pairs += 1
            return
        self.busy = True
        self.n += 1
        self.t0 = perf()
        try:
            await self.caller.send(self.ping(self.n))
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            self.busy = False
            self.load.dead_pairs += 1

    def _pong_arrived(self) -> str | None:
        now = perf()
        load = self.load
        load.round_trips += 1
        if load.recording:
            load.rtts.append(now - self.t0)
        if load.running:
            self.n += 1
            self.t0 = now
            return self.ping(self.n)
        self.busy = False
        return None

    # Socket.IO: `42...` is an event (the relayed signal), `43...` an ack, `2` a ping.
    def _caller_sio(self, frame: str) -> str | None:
        if frame.startswith("42"):
            return self._pong_arrived()
        if frame == "2":
            return "3"
        if '"ok":false' in frame:
            self.load.ack_errors += 1
        return None

    def _callee_sio(self, frame: str) -> str | None:
        if frame.startswith("42"):
            self.n += 1
            return self.pong(self.n)
        if frame == "2":
            return "3"
        if '"ok":false' in frame:
            self.load.ack_errors += 1
        return None

    # Bare relay / PeerJS: every text frame is the relayed message.
    def _caller_ws(self, frame: str) -> str | None:
        return self._pong_arrived()

    def _callee_ws(self, frame: str) -> str | None:
        return self.pong(0)


def sio_frames(
    session_id: str, ack: bool = True
) -> tuple[Callable[[int], str], Callable[[int], str]]:
    """rtc:signal ping (taxpayer) and pong (agent), each with an ack id as the pages send
    (`ack=False`: without, so the server sends no ack packet)."""
    body = dumps(["rtc:signal", {"session_id": session_id, "type": "candidate", "data": CANDIDATE}])
    if not ack:
        return (lambda n: "42" + body), (lambda n: "42" + body)
    return (lambda n: f"42{n}{body}"), (lambda n: f"42{n}{body}")


def peer_frames(
    caller_id: str, callee_id: str
) -> tuple[Callable[[int], str], Callable[[int], str]]:
    ping = dumps({"type": "CANDIDATE", "dst": callee_id, "payload": CANDIDATE})
    pong = dumps({"type": "CANDIDATE", "dst": caller_id, "payload": CANDIDATE})
    return (lambda n: ping), (lambda n: pong)
