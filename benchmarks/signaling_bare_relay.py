"""The floor for the signaling benchmark: a bare aiohttp WebSocket relay, nothing on top.

Same stack as the V-Tax node (CPython, asyncio, aiohttp, the stdlib json module) and the same
work as the PeerJS server: a client connects to `/ws?id=ID`, sends `{type, dst, payload}`
text frames; the relay parses each one, stamps `src` and sends it to `dst` if connected.
No auth, no rooms, no acks, no schema, no sequence numbers.

    python benchmarks/signaling_bare_relay.py --port 9001 [--host 127.0.0.1] [--uvloop]

Prints `listening on PORT` once bound; stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from aiohttp import WSMsgType, web

PEERS = web.AppKey("peers", dict)


async def relay(request: web.Request) -> web.WebSocketResponse:
    me = request.query.get("id", "")
    peers = request.app[PEERS]
    ws = web.WebSocketResponse(max_msg_size=256 * 1024)
    await ws.prepare(request)
    if not me or me in peers:
        await ws.close(message=b"id missing or taken")
        return ws
    peers[me] = ws
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                message = json.loads(msg.data)
                target = peers.get(message["dst"])
            except (ValueError, KeyError, TypeError):
                continue
            if target is not None:
                message["src"] = me
                await target.send_str(json.dumps(message))
    finally:
        if peers.get(me) is ws:
            del peers[me]
    return ws


async def main(host: str, port: int) -> None:
    app = web.Application()
    app[PEERS] = {}
    app.router.add_get("/ws", relay)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"listening on {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(main(args.host, args.port))
    else:
        asyncio.run(main(args.host, args.port))
