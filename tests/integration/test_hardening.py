"""What an outside probe of a running node found (issue 12, section 9), each with a test that
failed before the fix: Socket.IO's own event names, input nested too deeply, control
characters in file names, sockets and requests that never finish, pages without a CSP,
/metrics for anyone, and a database that does not answer."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web

from signaling.app import create_app
from signaling.server import make_runner
from tests.conftest import test_settings
from tests.integration.test_loop import start_session
from vtax.logs import BadInputLogs

JOIN = {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "q"}


async def test_a_client_cannot_run_the_servers_connect_or_disconnect_handlers(server, clients):
    taxpayer = await clients(server, await server.taxpayer())
    other = await server.taxpayer("11010519491231002X", "resident_id")
    for name in ("connect", "disconnect", "connect_error", "message"):
        ack = await taxpayer.call(name, {"token": other})
        assert ack["ok"] is False and ack["error"]["code"] == "unknown_event", name
    # Still connected, still the same taxpayer: the join is the first one's.
    joined = await taxpayer.call("queue:join", JOIN)
    assert joined["ok"], joined
    assert len(server.ctx.hub.connections) == 1


async def test_json_nested_too_deeply_gets_an_error_not_a_crash(server):
    deep = "[" * 5000 + "]" * 5000
    async with server.http.post(
        f"{server.url}/api/auth/login",
        data=deep,
        headers={"Content-Type": "application/json"},
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_payload"
    # Over Socket.IO, on a raw WebSocket (the Python client itself cannot encode such a value).
    token = await server.taxpayer()
    async with server.http.ws_connect(f"{server.url}/socket.io/?EIO=4&transport=websocket") as ws:
        assert (await ws.receive_str(timeout=2)).startswith("0")
        await ws.send_str("40" + json.dumps({"token": token}))
        assert (await ws.receive_str(timeout=2)).startswith("40")
        await ws.send_str('4217["queue:join",' + "[" * 3000 + "]" * 3000 + "]")
        answer = await ws.receive_str(timeout=5)
        assert answer.startswith("4317")
        assert json.loads(answer[4:])[0]["error"]["code"] == "invalid_payload"
        await ws.send_str("4218" + json.dumps(["queue:join", JOIN]))  # the connection survived
        answer = await ws.receive_str(timeout=5)
        assert answer.startswith("4318") and json.loads(answer[4:])[0]["ok"]


async def test_a_control_character_in_an_upload_file_name_is_refused(server, clients):
    agent, _, start, _ = await start_session(server, clients)
    sid = start["session_id"]
    assert (await agent.call("session:end", {"session_id": sid}))["ok"]
    token = agent.token
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="bad\x00name.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
        "%PDF-1.4\n%%EOF\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    async with server.http.post(
        f"{server.url}/api/sessions/{sid}/deliveries",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    ) as r:
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["code"] == "invalid_payload"
    async with server.http.get(
        f"{server.url}/api/deliveries", headers={"Authorization": f"Bearer {token}"}
    ) as r:
        assert (await r.json())["deliveries"] == []  # nothing was stored


async def test_pages_are_served_with_a_csp_and_cannot_be_framed(server):
    for path in ("/", "/taxpayer", "/agent", "/supervisor"):
        async with server.http.get(server.url + path) as r:
            assert r.status == 200
            csp = r.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert r.headers["X-Frame-Options"] == "DENY"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
    async with server.http.get(server.url + "/api/catalog") as r:
        assert r.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": "m" * 32}])
async def test_metrics_need_the_token_where_one_is_set(server):
    async with server.http.get(server.url + "/metrics") as r:
        assert r.status == 401
    wrong = {"Authorization": "Bearer " + "x" * 32}
    async with server.http.get(server.url + "/metrics", headers=wrong) as r:
        assert r.status == 401
    right = {"Authorization": "Bearer " + "m" * 32}
    async with server.http.get(server.url + "/metrics", headers=right) as r:
        assert r.status == 200 and "vtax_connected_clients" in await r.text()


@pytest.mark.parametrize(
    "settings_overrides", [{"connect_timeout_s": 0.5, "http_idle_timeout_s": 0.5}]
)
async def test_sockets_that_never_sign_in_and_half_sent_requests_are_closed(server):
    host, port = server.url.removeprefix("http://").split(":")
    # An Engine.IO connection that never sends the Socket.IO CONNECT (with its token).
    async with server.http.ws_connect(f"{server.url}/socket.io/?EIO=4&transport=websocket") as ws:
        opened = await ws.receive(timeout=2)
        assert opened.data.startswith("0")  # the Engine.IO open packet
        closed_at = None
        for _ in range(20):
            msg = await ws.receive(timeout=3)
            closing = msg.type == aiohttp.WSMsgType.TEXT and msg.data == "1"  # Engine.IO close
            if closing or msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                closed_at = msg.type
                break
            if msg.data == "2":  # a ping: answer it, like a live client that never signs in
                await ws.send_str("3")
        assert closed_at is not None, "the silent socket was not closed"
        assert server.ctx.hub.sio.unauthenticated_closed == 1
    # An HTTP request whose headers never end.
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=5)  # EOF: the server closed it
    assert data == b""
    writer.close()
    await writer.wait_closed()


async def test_an_unreachable_database_is_503_and_readyz_says_why(tmp_path):
    url = "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere"  # nothing listens on port 9
    app = create_app(test_settings(url, tmp_path), migrate_on_start=False)
    runner = make_runner(app, test_settings(url, tmp_path))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http:
            body = {"phone": "+8613800138000"}
            async with http.post(f"{base}/api/auth/sms/code", json=body) as r:
                assert r.status == 503
                error = (await r.json())["error"]
                assert error["code"] == "unavailable" and "database" in error["message"]
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 503
                check = (await r.json())["checks"]["database"]
                assert check.startswith("failed: ") and "\n" not in check
    finally:
        await runner.cleanup()


def test_vtax_migrate_says_in_one_line_that_the_database_is_unreachable(tmp_path):
    env = {
        "VTAX_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/nowhere",
        "VTAX_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "vtax", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vtax: cannot reach the database at 127.0.0.1:9")


async def test_garbage_requests_cost_a_few_short_log_lines(server, caplog):
    """Each unreadable request used to log a traceback about twice its size, unthrottled."""
    host, port = server.url.removeprefix("http://").split(":")
    caplog.set_level(logging.INFO, logger="aiohttp.server")
    for throttle in logging.getLogger("aiohttp.server").filters:
        if isinstance(throttle, BadInputLogs):
            throttle.window = 0.0  # a fresh minute (the throttle is per process)
    for _ in range(40):
        reader, writer = await asyncio.open_connection(host, int(port))
        garbage = b"\x00" * 2000  # a header value no HTTP parser takes
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Probe: " + garbage + b"\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
        writer.close()
        await writer.wait_closed()
    lines = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert 1 <= len(lines) <= 10
    assert all(r.exc_info is None and len(r.getMessage()) <= 200 for r in lines)
    assert (await server.http.get(server.url + "/healthz")).status == 200
