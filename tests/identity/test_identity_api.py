"""The identity endpoints through the real HTTP interface of a running node (SQLite and
PostgreSQL): the SMS sign-in end to end with the code read from the log sender, act-for,
refresh rotation and reuse, sign-out (here and everywhere: the person's sockets are cut and
`session:resume` re-checks the token), kiosks, the staff second factor, lockout and unlock,
bad input and who may call what."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
import socketio

from tests.conftest import RunningServer, poll_until
from tests.identity.test_kiosk import Device, public
from tests.queue import test_two_nodes
from vtax.app.identity_wiring import import_registry
from vtax.sms import LogSmsSender

nodes = test_two_nodes.nodes  # the fixture: two nodes over one Redis prefix
DEMO = Path(__file__).resolve().parents[2] / "examples" / "registry-demo.csv"
PHONE = "+86 138 0013 8000"  # Wang Fang: legal representative of Demo Tech, handler of another
LEGAL_REP_USCC = "91350100M000100Y43"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # the SMS limits at their defaults (tests/conftest.py relaxes them for the other tests)
    return {
        "identity_providers": ["sms", "kiosk"],
        "sign_in_code_resend_s": 60.0,
        "sign_in_code_per_number": 5,
        "sign_in_code_per_address": 20,
        "sign_in_code_tries_per_address": 50,
    }


def auth(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


async def post(
    server: RunningServer, path: str, json: Any = None, token: str | None = None, **kw: Any
) -> tuple[int, Any, Any]:
    async with server.http.post(server.url + path, json=json, headers=auth(token), **kw) as r:
        data = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, data, r.headers


async def get(server: RunningServer, path: str, token: str | None) -> int:
    async with server.http.get(server.url + path, headers=auth(token)) as r:
        await r.read()
        return r.status


async def imported(server: RunningServer) -> None:
    report = await import_registry(server.ctx.settings, DEMO)
    assert not report.errors and report.people_created == 4


def sender(server: RunningServer) -> LogSmsSender:
    sms = server.ctx.services.identity.sms
    assert sms is not None and isinstance(sms.sender, LogSmsSender)
    return sms.sender


async def last_code(server: RunningServer, phone: str = "+8613800138000") -> str:
    sms = server.ctx.services.identity.sms
    assert sms is not None
    await sms.drain()
    texts = [t for p, t in sender(server).sent if p == phone]
    assert texts, "no code was sent"
    found = re.search(r"\b(\d{6})\b", texts[-1])
    assert found, texts[-1]
    return found.group(1)


async def sign_in(server: RunningServer, phone: str) -> dict[str, Any]:
    """Sign in by SMS code (`phone` in E.164), reading the code from the log sender."""
    status, sent, headers = await post(server, "/api/auth/sms/code", {"phone": phone})
    assert status == 200, sent
    code = await last_code(server, phone)
    status, session, headers = await post(
        server, "/api/auth/sms/verify", {"phone": phone, "code": code}
    )
    assert status == 200, session
    assert headers["Cache-Control"] == "no-store"
    return session


async def test_sms_sign_in_act_for_refresh_and_sign_out(server: RunningServer, clients: Any):
    await imported(server)
    # the code: the same answer for a registered and an unknown number; only one is sent
    status, sent, headers = await post(
        server, "/api/auth/sms/code", {"phone": PHONE, "language": "en"}
    )
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert sent["expires_in_s"] == 300 and sent["resend_in_s"] == 60
    assert "0013" not in sent["phone"] and sent["phone"].endswith("8000")
    status, other, _ = await post(server, "/api/auth/sms/code", {"phone": "+8613700137000"})
    assert status == 200 and other.keys() == sent.keys()
    code = await last_code(server)
    assert [p for p, _ in sender(server).sent] == ["+8613800138000"]
    # asked again at once: throttled, with Retry-After
    status, err, headers = await post(server, "/api/auth/sms/code", {"phone": PHONE})
    assert status == 429 and err["error"]["code"] == "rate_limited"
    assert 1 <= int(headers["Retry-After"]) <= 60
    # a wrong code, then the right one; a used code does not work twice
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    status, err, _ = await post(server, "/api/auth/sms/verify", {"phone": PHONE, "code": wrong})
    assert status == 401 and err["error"]["code"] == "invalid_code"
    status, session, _ = await post(server, "/api/auth/sms/verify", {"phone": PHONE, "code": code})
    assert status == 200, session
    assert session["method"] == "sms" and session["acr"] == 3 and session["acting"] is None
    assert session["person"]["name"] == "王芳 Wang Fang"
    assert "19491231" not in session["person"]["document"]
    assert {o["role"] for o in session["options"]} == {"legal_representative", "tax_handler"}
    status, err, _ = await post(server, "/api/auth/sms/verify", {"phone": PHONE, "code": code})
    assert status == 401 and err["error"]["code"] == "invalid_code"

    # the access token opens the taxpayer's REST endpoints
    assert await get(server, "/api/sessions", session["access_token"]) == 200
    assert await get(server, "/api/review/agents", session["access_token"]) == 403

    # act for the enterprise of a grant; a made-up or another enterprise gives nothing
    rep = next(o for o in session["options"] if o["uscc"] == LEGAL_REP_USCC)
    status, err, _ = await post(
        server,
        "/api/auth/act-for",
        {
            "refresh_token": session["refresh_token"],
            "enterprise_id": rep["enterprise_id"],
            "role": "finance_officer",
        },
    )
    assert status == 403 and err["error"]["code"] == "act_for_denied"
    status, acting, _ = await post(
        server,
        "/api/auth/act-for",
        {
            "refresh_token": session["refresh_token"],
            "enterprise_id": rep["enterprise_id"],
            "role": "legal_representative",
        },
    )
    assert status == 200, acting
    assert acting["acting"]["uscc"] == LEGAL_REP_USCC
    assert acting["refresh_token"] != session["refresh_token"]
    principal = await server.ctx.services.authenticate(acting["access_token"])
    assert principal.acting_for == rep["enterprise_id"]
    assert principal.acting_role == "legal_representative"

    # refresh rotates; the old refresh token used again revokes the whole family
    status, fresh, _ = await post(
        server, "/api/auth/refresh", {"refresh_token": acting["refresh_token"]}
    )
    assert status == 200 and fresh["acting"]["uscc"] == LEGAL_REP_USCC
    status, err, _ = await post(
        server, "/api/auth/refresh", {"refresh_token": acting["refresh_token"]}
    )
    assert status == 401 and err["error"]["code"] == "refresh_reused"
    assert await get(server, "/api/sessions", fresh["access_token"]) == 401

    # a new sign-in; a socket with its token; signing out this sign-in: a resume re-checks
    # the token and the socket is cut
    second = await sign_in(server, "+85366123456")  # Leong Mei, a Macau mobile
    socket = await clients(server, second["access_token"])
    status, out, _ = await post(
        server,
        "/api/auth/logout",
        {"refresh_token": second["refresh_token"]},
        token=second["access_token"],
    )
    assert status == 200 and out == {"everywhere": False, "provider_logout_url": None}
    answer = await socket.call("session:resume", {"session_id": "s-1", "last_seq": 0})
    assert answer["ok"] is False and answer["error"]["code"] == "unauthorized"
    await poll_until(lambda: not socket.sio.connected)
    assert await get(server, "/api/sessions", second["access_token"]) == 401

    # sign out everywhere: every token of the person dies and their sockets are cut
    third = await sign_in(server, "+8613900139000")  # John Smith, a passport
    sockets = [await clients(server, third["access_token"]) for _ in range(2)]
    status, out, _ = await post(
        server, "/api/auth/logout", {"everywhere": True}, token=third["access_token"]
    )
    assert status == 200 and out["everywhere"] is True
    await poll_until(lambda: not any(s.sio.connected for s in sockets))
    assert await get(server, "/api/sessions", third["access_token"]) == 401
    status, err, _ = await post(
        server, "/api/auth/refresh", {"refresh_token": third["refresh_token"]}
    )
    assert status == 401
    late = type(sockets[0])(server.url, third["access_token"])
    with pytest.raises(socketio.exceptions.ConnectionError):
        await late.connect()
    assert late.connect_error is not None


async def test_bad_input_and_who_may_call(server: RunningServer):
    taxpayer = await server.taxpayer()
    # what the removed POST /api/auth/taxpayer gave: a taxpayer token with no sign-in behind it
    legacy = server.ctx.issuer.issue("tp-legacy", "taxpayer", "")
    agent = await server.staff("ann")
    cases: list[tuple[str, Any, str | None, int, str]] = [
        ("/api/auth/sms/code", {"phone": "12345"}, None, 400, "invalid_phone"),
        ("/api/auth/sms/code", {"phone": PHONE, "x": 1}, None, 400, "invalid_payload"),
        ("/api/auth/sms/code", {"phone": PHONE, "language": "fr"}, None, 400, "invalid_payload"),
        ("/api/auth/sms/verify", {"phone": PHONE, "code": "12ab56"}, None, 400, "invalid_payload"),
        ("/api/auth/sms/verify", {"phone": PHONE, "code": "123456"}, None, 401, "invalid_code"),
        ("/api/auth/oidc/start", {}, None, 404, "unknown_provider"),
        (
            "/api/auth/oidc/callback",
            {"code": "c", "state": "s" * 20},
            None,
            404,
            "unknown_provider",
        ),
        ("/api/auth/refresh", {"refresh_token": "x" * 40}, None, 401, "unauthorized"),
        ("/api/auth/refresh", {}, None, 400, "invalid_payload"),
        (
            "/api/auth/act-for",
            {"refresh_token": "x" * 40, "enterprise_id": "ab-12"},
            None,
            400,
            "invalid_payload",
        ),
        ("/api/auth/act-for", {"refresh_token": "x" * 40}, None, 401, "unauthorized"),
        ("/api/auth/logout", {}, None, 401, "unauthorized"),
        ("/api/auth/logout", {}, agent, 403, "forbidden"),
        ("/api/auth/logout", {"everywhere": True}, legacy, 401, "unauthorized"),
        ("/api/auth/kiosk/challenge", {"kiosk_id": "0" * 36}, None, 401, "unauthorized"),
        ("/api/auth/kiosk/challenge", {"kiosk_id": "ZZ"}, None, 400, "invalid_payload"),
        ("/api/auth/kiosk", {"assertion": "a.b.c" * 10}, None, 401, "sign_in_failed"),
        ("/api/staff/totp", None, taxpayer, 403, "forbidden"),
        ("/api/staff/totp", None, None, 401, "unauthorized"),
        ("/api/staff/unlock", {"user_id": "abc"}, agent, 403, "forbidden"),
        ("/api/kiosks", {}, agent, 403, "forbidden"),
        ("/api/kiosks/abc/revoke", None, taxpayer, 403, "forbidden"),
        (
            "/api/auth/login",
            {"username": "ann", "password": "wrong"},
            None,
            401,
            "invalid_credentials",
        ),
        ("/api/auth/login", {"username": "ann"}, None, 400, "invalid_payload"),
    ]
    wrong = []
    for path, body, token, want, code in cases:
        status, data, _ = await post(server, path, body, token)
        got = data["error"]["code"] if isinstance(data, dict) and "error" in data else data
        if (status, got) != (want, code):
            wrong.append((path, body, want, code, status, got))
    assert wrong == []
    # the back-channel logout is a form, and the provider is off here
    status, data, _ = await post(
        server, "/api/auth/oidc/backchannel-logout", data={"logout_token": "x" * 40}
    )
    assert status == 404 and data["error"]["code"] == "unknown_provider"


async def test_kiosks_over_http(server: RunningServer):
    await imported(server)
    boss = await server.staff("boss", "supervisor")
    agent = await server.staff("ann")
    device = Device()
    body = {
        "name": "Kiosk 3",
        "branch": "Shunde tax office",
        "location": "Lecong village",
        "public_key": public(device.key),
    }
    status, err, _ = await post(server, "/api/kiosks", body, agent)
    assert status == 403
    status, err, _ = await post(server, "/api/kiosks", body | {"public_key": "short"}, boss)
    assert status == 400 and err["error"]["code"] == "invalid_payload"
    status, kiosk, headers = await post(server, "/api/kiosks", body, boss)
    assert status == 201, kiosk
    assert kiosk["revoked_at"] is None and headers["Cache-Control"] == "no-store"
    device.id = kiosk["kiosk_id"]

    status, challenge, _ = await post(server, "/api/auth/kiosk/challenge", {"kiosk_id": device.id})
    assert status == 200 and challenge["expires_in_s"] > 0
    assertion = device.sign(challenge["nonce"])
    status, session, _ = await post(server, "/api/auth/kiosk", {"assertion": assertion})
    assert status == 200, session
    assert session["method"] == "kiosk" and session["acr"] == 4
    assert session["kiosk"]["branch"] == "Shunde tax office"
    assert await get(server, "/api/sessions", session["access_token"]) == 200
    # replayed: the nonce is used
    status, err, _ = await post(server, "/api/auth/kiosk", {"assertion": assertion})
    assert status == 401 and err["error"]["code"] == "sign_in_failed"
    # forged: another key over a fresh nonce
    status, challenge, _ = await post(server, "/api/auth/kiosk/challenge", {"kiosk_id": device.id})
    forged = device.sign(challenge["nonce"], key=Device().key)
    status, err, _ = await post(server, "/api/auth/kiosk", {"assertion": forged})
    assert status == 401 and err["error"]["code"] == "sign_in_failed"

    # revoked: its sign-ins end at once, its nonces stop; twice is 404
    status, err, _ = await post(server, f"/api/kiosks/{device.id}/revoke", None, agent)
    assert status == 403
    status, revoked, _ = await post(server, f"/api/kiosks/{device.id}/revoke", None, boss)
    assert status == 200 and revoked["revoked_at"] is not None
    assert await get(server, "/api/sessions", session["access_token"]) == 401
    status, err, _ = await post(server, "/api/auth/kiosk/challenge", {"kiosk_id": device.id})
    assert status == 401
    status, err, _ = await post(server, f"/api/kiosks/{device.id}/revoke", None, boss)
    assert status == 404
    status, err, _ = await post(server, "/api/kiosks/NOT-A-KIOSK/revoke", None, boss)
    assert status == 404
    status, err, _ = await post(server, f"/api/kiosks/{'0' * 36}/revoke", None, boss)
    assert status == 404


async def test_staff_second_factor_lockout_and_unlock(server: RunningServer):
    boss = await server.staff("boss", "supervisor")
    password = "ann-secret-password"
    member = await server.ctx.accounts.add_user(
        "ann2", "agent", password, display_name="Ann", skills={"invoices": 3}
    )
    login = {"username": "ann2", "password": password}
    status, signed, headers = await post(server, "/api/auth/login", login)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    token = signed["token"]
    assert server.ctx.issuer.verify(token).method == "pwd"

    status, enrolment, _ = await post(server, "/api/staff/totp", None, token)
    assert status == 200 and enrolment["provisioning_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrolment["secret"])
    now = int(time.time())
    bad = f"{(int(totp.at(now)) + 1) % 10**6:06d}"
    status, err, _ = await post(server, "/api/staff/totp/confirm", {"code": bad}, token)
    assert status == 401 and err["error"]["code"] == "invalid_code"
    status, _, _ = await post(server, "/api/staff/totp/confirm", {"code": "12"}, token)
    assert status == 400
    status, done, _ = await post(server, "/api/staff/totp/confirm", {"code": totp.at(now)}, token)
    assert status == 204 and done == ""

    # now the code is needed
    status, err, _ = await post(server, "/api/auth/login", login)
    assert status == 401 and err["error"]["code"] == "second_factor_required"
    # failures of either kind lock the account
    for _ in range(5):
        status, err, _ = await post(server, "/api/auth/login", login | {"password": "nope"})
        assert status == 401 and err["error"]["code"] == "invalid_credentials"
    status, err, headers = await post(server, "/api/auth/login", login)
    assert status == 423 and err["error"]["code"] == "account_locked"
    assert 800 <= int(headers["Retry-After"]) <= 900
    # only a supervisor unlocks, an existing account
    status, _, _ = await post(server, "/api/staff/unlock", {"user_id": member.id}, token)
    assert status == 403
    status, err, _ = await post(server, "/api/staff/unlock", {"user_id": "0" * 36}, boss)
    assert status == 404
    status, done, _ = await post(server, "/api/staff/unlock", {"user_id": member.id}, boss)
    assert status == 204
    status, signed, _ = await post(server, "/api/auth/login", login | {"code": totp.at(now + 30)})
    assert status == 200, signed
    assert server.ctx.issuer.verify(signed["token"]).method == "pwd+otp"
    assert signed["user"]["username"] == "ann2" and signed["role"] == "agent"
    # the same step again is a replay
    status, err, _ = await post(server, "/api/auth/login", login | {"code": totp.at(now + 30)})
    assert status == 401


async def test_signing_out_everywhere_cuts_sockets_on_every_node(nodes: Any, clients: Any):
    """Two nodes over Redis: a person signed in through node A with a socket on node B and
    one on A signs out everywhere on A; both sockets are cut, B's through the pub/sub."""
    a, b = nodes
    await imported(a)
    session = await sign_in(a, "+8613800138000")
    on_b = await clients(b, session["access_token"])
    on_a = await clients(a, session["access_token"])
    staff = await clients(b, await b.staff("ann"))  # another account's socket stays
    status, out, _ = await post(
        a, "/api/auth/logout", {"everywhere": True}, token=session["access_token"]
    )
    assert status == 200 and out["everywhere"] is True
    await poll_until(lambda: not on_b.sio.connected and not on_a.sio.connected)
    assert staff.sio.connected
    assert await get(b, "/api/sessions", session["access_token"]) == 401


async def test_a_socket_is_cut_when_its_token_expires(server: RunningServer, clients: Any):
    """The transport's own timer: a socket whose token expired receives nothing more."""
    await server.ctx.accounts.add_user("ann3", "agent", "pw-ann3-0123", display_name="Ann")
    member = next(m for m in await server.ctx.accounts.staff_list("agent") if m.username == "ann3")
    ttl = server.ctx.issuer.ttl_s
    short = server.ctx.issuer.issue(member.id, "agent", "Ann", now=time.time() - ttl + 2)
    longer = server.ctx.issuer.issue(member.id, "agent", "Ann")
    soon, later = await clients(server, short), await clients(server, longer)
    assert soon.sio.connected
    await poll_until(lambda: not soon.sio.connected, timeout=6)
    assert later.sio.connected and server.ctx.hub.expired_cut == 1
