"""Every event and endpoint refuses bad input with a clear code; the connection survives and
nothing stored changes."""

from __future__ import annotations

import json

import pytest
import socketio

from tests.conftest import Client
from vtax.auth import TokenIssuer
from vtax.contract import client_events as ce
from vtax.contract import http, identity

TAXPAYER_EVENTS = {
    "queue:join": (
        ce.QueueJoin,
        {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "q"},
    ),
    "queue:leave": (ce.QueueLeave, {"ticket_id": "t"}),
    "session:rate": (ce.SessionRate, {"session_id": "s", "score": 3, "comment": "c"}),
}
AGENT_EVENTS = {
    "agent:status": (ce.AgentStatusChange, {"status": "away", "reason": "lunch"}),
    "offer:accept": (ce.OfferAccept, {"offer_id": "o"}),
    "offer:reject": (ce.OfferReject, {"offer_id": "o", "reason": "r"}),
    "session:transfer": (
        ce.SessionTransfer,
        {"session_id": "s", "category": "invoices", "language": "yue", "note": "n"},
    ),
    "session:summary": (
        ce.SessionSummary,
        {"session_id": "s", "asked": "a", "handled": "h", "result": "resolved", "items": []},
    ),
}
PARTICIPANT_EVENTS = {
    "rtc:signal": (ce.RtcSignal, {"session_id": "s", "type": "candidate", "data": {}}),
    "session:end": (ce.SessionEnd, {"session_id": "s", "reason": "bye"}),
}
WRONG_TYPE = {str: 12345, int: "three", dict: "not an object", list: "not a list"}


def bad_payloads(schema, good):
    """(label, payload, expected code) for one event."""
    yield "string", "hello", "invalid_payload"
    yield "number", 42, "invalid_payload"
    yield "array", [1, 2], "invalid_payload"
    yield "null", None, "invalid_payload"
    yield "unknown field", {**good, "admin": True}, "invalid_payload"
    for name, field in schema.model_fields.items():
        if field.is_required():
            yield f"missing {name}", {k: v for k, v in good.items() if k != name}, "invalid_payload"
        wrong = WRONG_TYPE.get(type(good.get(name)), 12345)
        yield f"wrong type {name}", {**good, name: wrong}, "invalid_payload"
        if isinstance(good.get(name), str):
            yield f"too long {name}", {**good, name: "x" * 5000}, "invalid_payload"
    big_field = next(k for k, v in good.items() if isinstance(v, str))
    yield "oversize", {**good, big_field: "x" * 70_000}, "payload_too_large"


async def assert_still_usable(client: Client):
    ack = await client.call("no:such:event", {})
    assert ack["error"]["code"] == "unknown_event"
    assert client.sio.connected


async def check_all(client, event, events):
    """Every bad payload for `event` on one connection, which must stay usable throughout."""
    schema, good = events[event]
    for label, payload, code in bad_payloads(schema, good):
        ack = await client.sio.call(event, payload, timeout=5)
        assert ack["ok"] is False, (label, ack)
        assert ack["error"]["code"] == code, (label, ack)
        assert ack["error"]["message"], label
        await assert_still_usable(client)


@pytest.mark.parametrize("event", [*TAXPAYER_EVENTS, *PARTICIPANT_EVENTS])
async def test_taxpayer_event_refuses_bad_payloads(server, clients, event):
    client = await clients(server, await server.taxpayer())
    await check_all(client, event, TAXPAYER_EVENTS | PARTICIPANT_EVENTS)


@pytest.mark.parametrize("event", [*AGENT_EVENTS, *PARTICIPANT_EVENTS])
async def test_agent_event_refuses_bad_payloads(server, clients, event):
    client = await clients(server, await server.staff("agent1"))
    await check_all(client, event, AGENT_EVENTS | PARTICIPANT_EVENTS)


async def test_no_payload_and_extra_arguments_are_refused(server, clients):
    client = await clients(server, await server.taxpayer())
    assert (await client.sio.call("queue:join", timeout=5))["error"]["code"] == "invalid_payload"
    ack = await client.sio.call("queue:join", ({"a": 1}, {"b": 2}), timeout=5)
    assert ack["error"]["code"] == "invalid_payload"
    await assert_still_usable(client)


async def test_values_outside_the_catalog_are_refused(server, clients):
    client = await clients(server, await server.taxpayer())
    good = TAXPAYER_EVENTS["queue:join"][1]
    ack = await client.call("queue:join", {**good, "category": "astrology"})
    assert ack["error"]["code"] == "unknown_category"
    ack = await client.call("queue:join", {**good, "language": "fr"})
    assert ack["error"]["code"] == "unknown_language"  # a catalog value: its own code
    ack = await client.call("queue:join", {**good, "channel": "fax"})
    assert ack["error"]["code"] == "unknown_channel"
    ack = await client.call("session:rate", {"session_id": "s", "score": 6})
    assert ack["error"]["code"] == "invalid_payload"
    ack = await client.call("session:rate", {"session_id": "s", "score": True})
    assert ack["error"]["code"] == "invalid_payload"
    # The bad calls left nothing behind: a good join still works and is position 1.
    joined = await client.call("queue:join", good)
    assert joined["ok"] and joined["position"] == 1


async def test_values_only_the_standard_json_parser_takes_are_validation_errors(server, clients):
    """orjson parses the wire (signaling/wire.py); what it refuses falls back to the standard
    library, so a huge integer, NaN or a binary attachment is a wrong type, not a dropped
    connection."""
    client = await clients(server, await server.taxpayer())
    good = TAXPAYER_EVENTS["queue:join"][1]
    for label, value in [
        ("2**70", 2**70),
        ("NaN", float("nan")),
        ("-Infinity", float("-inf")),
        ("bytes", b"\x00binary"),
    ]:
        ack = await client.sio.call("queue:join", {**good, "question": value}, timeout=5)
        assert ack["error"]["code"] == "invalid_payload", (label, ack)
        ack = await client.call("session:rate", {"session_id": "s", "score": value})
        assert ack["error"]["code"] == "invalid_payload", (label, ack)
        await assert_still_usable(client)
    joined = await client.call("queue:join", {**good, "question": "税务问题 " * 100})
    assert joined["ok"] and joined["position"] == 1


async def test_the_payload_limit_counts_utf8_bytes(server, clients):
    client = await clients(server, await server.taxpayer())
    limit = server.ctx.settings.max_event_bytes
    # 3 bytes a character in UTF-8: over the limit in bytes, under it in characters.
    text = "税" * (limit // 3 + 10)
    ack = await client.call("session:rate", {"session_id": "s", "score": 3, "comment": text})
    assert ack["error"]["code"] == "payload_too_large", ack
    await assert_still_usable(client)


@pytest.mark.parametrize(
    ("role", "events"),
    [
        ("taxpayer", list(AGENT_EVENTS)),
        ("agent", list(TAXPAYER_EVENTS)),
        # A supervisor who barged in signals, ends and (after a take-over) summarises: those
        # are refused by the session (not_in_session), not by role (tests/integration/
        # test_multiparty.py).
        ("supervisor", [*TAXPAYER_EVENTS, *(e for e in AGENT_EVENTS if e != "session:summary")]),
    ],
)
async def test_wrong_role_is_forbidden_on_every_event(server, clients, role, events):
    token = await server.taxpayer() if role == "taxpayer" else await server.staff("u1", role)
    client = await clients(server, token)
    all_events = TAXPAYER_EVENTS | AGENT_EVENTS | PARTICIPANT_EVENTS
    for event in events:
        ack = await client.call(event, all_events[event][1])
        assert ack["error"]["code"] == "forbidden", (event, ack)
    await assert_still_usable(client)


@pytest.mark.parametrize("kind", ["missing", "garbage", "forged", "expired", "not a string"])
async def test_connections_without_a_valid_token_are_refused(server, kind):
    issuer = server.ctx.issuer
    token = {
        "missing": None,
        "garbage": "abc.def.ghi",
        "not a string": 12345,
        "forged": TokenIssuer("another-key-" * 3, 60).issue("x", "supervisor"),
        "expired": issuer.issue("x", "taxpayer", now=1_000_000),
    }[kind]
    client = Client(server.url, token)  # type: ignore[arg-type]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()
    assert client.connect_error["code"] == "unauthorized"
    assert client.connect_error["data"]["code"] == "unauthorized"
    assert client.connect_error["message"]


async def test_a_disabled_agent_account_cannot_connect(server):
    token = await server.staff("gone")
    staff = await server.ctx.accounts.authenticate("gone", "x")
    assert staff is None
    from sqlalchemy import update

    from vtax.models import User

    async with server.ctx.engine.begin() as conn:
        await conn.execute(update(User).where(User.username == "gone").values(disabled=True))
    client = Client(server.url, token)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect()
    assert client.connect_error["code"] == "unauthorized"


# ---- HTTP -------------------------------------------------------------------------------

HTTP_BODIES = {
    "/api/auth/sms/code": {"phone": "+8613800138000"},
    "/api/auth/login": {"username": "nobody", "password": "whatever1"},
}


def http_cases(path):
    schema = {"/api/auth/sms/code": identity.SmsCodeRequest, "/api/auth/login": http.Login}[path]
    good = HTTP_BODIES[path]
    yield "malformed", b"{not json", 400, "invalid_payload"
    yield "array", b"[1,2]", 400, "invalid_payload"
    yield "empty", b"", 400, "invalid_payload"
    yield "not utf-8", b"\xff\xfe", 400, "invalid_payload"
    for name in schema.model_fields:
        if name in good:
            missing = json.dumps({k: v for k, v in good.items() if k != name}).encode()
            yield f"missing {name}", missing, 400, "invalid_payload"
            yield (
                f"wrong type {name}",
                json.dumps({**good, name: 123}).encode(),
                400,
                "invalid_payload",
            )
            yield (
                f"too long {name}",
                json.dumps({**good, name: "9" * 300}).encode(),
                400,
                "invalid_payload",
            )
    big = json.dumps({**good, "name": "x" * 70_000}).encode()
    yield "oversize", big, 413, "payload_too_large"


@pytest.mark.parametrize("path", list(HTTP_BODIES))
async def test_http_bodies_are_validated(server, path):
    for label, raw, status, code in http_cases(path):
        async with server.http.post(
            server.url + path, data=raw, headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == status, (label, await r.text())
            err = (await r.json())["error"]
            assert err["code"] == code and err["message"], label
    async with server.http.get(server.url + "/healthz") as r:  # the server is fine
        assert r.status == 200


@pytest.mark.parametrize(
    ("id_type", "number"),
    [
        ("uscc", "91350100M000100Y43"),
        ("uscc", "91350100M000100Y44"),
        ("resident_id", "11010519491231002X"),
        ("resident_id", "abc"),
    ],
)
async def test_an_identity_number_alone_is_no_sign_in(server, id_type, number):
    """The identity step that turned a bare number into a token is gone (docs/identity.md)."""
    async with server.http.post(
        server.url + "/api/auth/taxpayer", json={"id_type": id_type, "id_number": number}
    ) as r:
        assert r.status in (404, 405)
        assert "token" not in await r.text()


@pytest.mark.parametrize("phone", ["12345", "+8612800128000", "+85211234567", "+1 555 0100"])
async def test_numbers_no_code_goes_to_get_invalid_phone(server, phone):
    async with server.http.post(server.url + "/api/auth/sms/code", json={"phone": phone}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid_phone"


async def test_wrong_password_is_invalid_credentials(server):
    await server.staff("agent1")
    async with server.http.post(
        server.url + "/api/auth/login", json={"username": "agent1", "password": "wrong-password"}
    ) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "invalid_credentials"


@pytest.mark.parametrize(
    ("path", "headers", "status", "code"),
    [
        ("/api/sessions", {}, 401, "unauthorized"),
        ("/api/sessions", {"Authorization": "Bearer nope"}, 401, "unauthorized"),
        ("/api/sessions", {"Authorization": "Basic abc"}, 401, "unauthorized"),
        ("/api/sessions/abc", {}, 401, "unauthorized"),
        ("/api/sessions?limit=0", "sup", 400, "invalid_payload"),
        ("/api/sessions?limit=x", "sup", 400, "invalid_payload"),
        ("/api/sessions?limit=1000", "sup", 400, "invalid_payload"),
        ("/api/sessions?before=%%%", "sup", 400, "invalid_payload"),
        ("/api/sessions?before=" + "A" * 300, "sup", 400, "invalid_payload"),
        ("/api/sessions/" + "x" * 100, "sup", 404, "not_found"),
        ("/api/sessions/no-such", "sup", 404, "not_found"),
        ("/api/nothing-here", {}, 404, "not_found"),
    ],
)
async def test_http_queries_are_validated(server, path, headers, status, code):
    if headers == "sup":
        headers = {"Authorization": f"Bearer {await server.staff('boss', 'supervisor')}"}
    async with server.http.get(server.url + path, headers=headers) as r:
        assert r.status == status, await r.text()
        assert (await r.json())["error"]["code"] == code


async def test_an_expired_token_is_refused_over_http(server):
    expired = server.ctx.issuer.issue("x", "supervisor", now=1_000_000)
    async with server.http.get(
        server.url + "/api/sessions", headers={"Authorization": f"Bearer {expired}"}
    ) as r:
        assert r.status == 401
        assert "expired" in (await r.json())["error"]["message"]
