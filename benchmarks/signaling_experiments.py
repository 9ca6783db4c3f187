"""What-if patches for estimating relay optimisations of the V-Tax node WITHOUT changing it.

benchmarks/signaling_bench.py applies these in a server it starts when that server's
environment names them in `VTAX_X` (`+`-separated), e.g.

    python benchmarks/signaling_bench.py --only a --pairs 50,200 --repeats 7 \\
        --skip-memory --skip-setups --x-site /tmp/xsite \\
        --a-variant "uvloop:VTAX_X=uvloop" --a-variant "all:VTAX_X=uvloop+jsononly+eio+direct+gc"

runs the node as is (a) side by side with patched copies (a:uvloop, a:all), windows interleaved.
`--x-site DIR` is a folder with uvloop and orjson (`pip install --target DIR uvloop orjson`;
they are not project dependencies). The patches monkeypatch library internals: they are
measuring devices, not the way to ship the change (see each one for the real change).

- uvloop:   the uvloop event loop (real change: `uvloop.run(...)` in signaling/server.py).
- orjson:   orjson as the JSON module of python-socketio and python-engineio (real change:
            `socketio.AsyncServer(json=...)`).
- jsononly: orjson plus no binary-attachment scan of every packet (real change: a JSON-only
            `serializer=` Packet subclass with `uses_binary_events = False`).
- eio:      engine.io's WebSocket loop without a task + `wait_for` per received frame and per
            sent packet (`asyncio.timeout` instead; an upstream python-engineio change, or
            Python >= 3.12 where `wait_for` no longer wraps the awaitable in a task).
- direct:   `Hub.send` to connections of this node: encode the packet once and hand it to
            engine.io, instead of `sio.emit(to=...)` (a task per recipient + `asyncio.wait`).
- gc:       gen-0 GC threshold 50,000 instead of 700 (real change: `gc.freeze()` after start-up
            and a higher threshold, or keep the resume buffer as encoded strings).
"""

from __future__ import annotations

import os
import re
from typing import Any


def apply(names: set[str]) -> None:
    if "uvloop" in names:
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if "gc" in names:
        import gc

        gc.set_threshold(50_000, 20, 100)
    if names & {"orjson", "jsononly"}:
        _orjson(jsononly="jsononly" in names)
    if "eio" in names:
        _lean_engineio()
    if "direct" in names:
        _direct_send()


def _orjson(jsononly: bool) -> None:
    import engineio.packet
    import orjson
    import socketio.packet

    class OrJson:
        @staticmethod
        def dumps(obj: Any, **_kw: Any) -> str:
            return orjson.dumps(obj).decode()

        @staticmethod
        def loads(s: str | bytes, **_kw: Any) -> Any:
            return orjson.loads(s)

    socketio.packet.Packet.json = OrJson
    engineio.packet.Packet.json = OrJson
    if jsononly:
        socketio.packet.Packet.uses_binary_events = False


def _lean_engineio() -> None:
    import asyncio

    from engineio import async_socket, exceptions, packet

    async def poll(self: Any) -> list[Any]:
        try:
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                packets = [await self.queue.get()]
            self.queue.task_done()
        except (TimeoutError, asyncio.CancelledError):
            raise exceptions.QueueEmpty() from None
        if packets == [None]:
            return []
        while True:
            try:
                pkt = self.queue.get_nowait()
                self.queue.task_done()
                if pkt is None:
                    self.queue.put_nowait(None)
                    break
                packets.append(pkt)
            except asyncio.QueueEmpty:
                break
        return packets

    original = async_socket.AsyncSocket._websocket_handler

    async def websocket_handler(self: Any, ws: Any) -> None:
        if self.connected:  # an upgrade from polling: leave it to engine.io
            return await original(self, ws)
        self.connected = self.upgraded = True

        async def writer() -> None:
            while True:
                try:
                    packets = await self.poll()
                except exceptions.QueueEmpty:
                    break
                if not packets:
                    break
                try:
                    for pkt in packets:
                        await ws.send(pkt.encode())
                except Exception:
                    break
            await ws.close()

        writer_task = asyncio.ensure_future(writer())
        timeout = self.server.ping_interval + self.server.ping_timeout
        while True:
            try:
                async with asyncio.timeout(timeout):
                    p = await ws.wait()
            except Exception:
                break
            if p is None or len(p) > self.server.max_http_buffer_size:
                break
            try:
                await self.receive(packet.Packet(encoded_packet=p))
            except exceptions.SocketIsClosedError:
                break
            except Exception:
                self.server.logger.exception("Unknown receive error")
        await self.queue.put(None)
        await writer_task
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async_socket.AsyncSocket.poll = poll
    async_socket.AsyncSocket._websocket_handler = websocket_handler


def _direct_send() -> None:
    import socketio
    from socketio import packet as sio_packet

    import signaling.hub as hub_module

    async def send(self: Any, event: str, data: dict[str, Any], sids: list[str]) -> None:
        if not sids:
            return
        sio = self.sio
        manager = sio.manager
        if type(manager) is not socketio.AsyncManager:  # Redis: keep the pub/sub path
            await sio.emit(event, data, to=sids)
            return
        encoded = sio.packet_class(sio_packet.EVENT, namespace="/", data=[event, data]).encode()
        for sid in sids:
            eio_sid = manager.eio_sid_from_sid(sid, "/")
            if eio_sid is not None:
                await sio.eio.send(eio_sid, encoded)

    hub_module.Hub.send = send


SITECUSTOMIZE = """\
import os, sys
sys.path[:0] = [p for p in os.environ.get("VTAX_X_PATH", "").split(os.pathsep) if p]
import signaling_experiments
signaling_experiments.apply_from_env()
"""


def apply_from_env() -> None:
    names = {n for n in re.split(r"[+,]", os.environ.get("VTAX_X", "")) if n}
    if names:
        apply(names)
