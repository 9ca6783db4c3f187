"""A supervisor disables and enables a person over HTTP (`/api/people/...`,
signaling/identity_api.py -> `TaxpayerSignIn.disable_person`): the person's access and
refresh tokens die at once, their open socket is cut, SMS sign-in gives them nothing until
they are enabled, and nobody but a supervisor may do it. Every lookup and every read of a
person's access is audited too (`identity_audit`), the number searched for masked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import socketio
from sqlalchemy import select

from tests.conftest import RunningServer, poll_until
from tests.identity.test_identity_api import get, imported, post, sender, sign_in
from vtax.db import session_factory
from vtax.identity.tables import IdentityAudit

WANG = {"document_type": "resident_id", "document": "11010519491231002X"}
WANG_SEARCHED = {"document_type": "resident_id", "document": "1101**********002X"}  # masked
PHONE = "+8613800138000"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"identity_providers": ["sms"], "sign_in_code_resend_s": 0.0}


async def supervisor_id(server: RunningServer, username: str) -> str:
    staff = await server.ctx.accounts.staff_list("supervisor")
    return next(m.id for m in staff if m.username == username)


async def test_a_supervisor_disables_and_enables_a_person(server: RunningServer, clients: Any):
    await imported(server)
    session = await sign_in(server, PHONE)
    token, refresh = session["access_token"], session["refresh_token"]
    socket = await clients(server, token)
    assert socket.sio.connected
    boss = await server.staff("boss", "supervisor")

    # found by document, or by id (the session views' taxpayer id)
    status, found, headers = await post(server, "/api/people/lookup", WANG, boss)
    assert status == 200, found
    assert headers["Cache-Control"] == "no-store"
    person_id = found["person_id"]
    assert person_id == session["person"]["person_id"]
    assert found["disabled"] is False and found["last_change"] is None
    assert found["name"] == "王芳 Wang Fang" and "19491231" not in found["document"]
    async with server.http.get(
        f"{server.url}/api/people/{person_id}/access", headers={"Authorization": f"Bearer {boss}"}
    ) as r:
        assert r.status == 200 and await r.json() == found

    reason = {"reason": "reported stolen phone, case 2026-118"}
    status, out, _ = await post(server, f"/api/people/{person_id}/disable", reason, boss)
    assert status == 200, out
    assert out["disabled"] is True
    change = out["last_change"]
    assert change["state"] == "disabled" and change["reason"] == reason["reason"]
    assert change["by"] == await supervisor_id(server, "boss") and change["at"]

    # the open socket is cut, the tokens are refused, a new socket too
    await poll_until(lambda: not socket.sio.connected)
    assert await get(server, "/api/sessions", token) == 401
    status, err, _ = await post(server, "/api/auth/refresh", {"refresh_token": refresh})
    assert status == 401 and err["error"]["code"] == "unauthorized", err
    status, err, _ = await post(server, "/api/auth/act-for", {"refresh_token": refresh})
    assert status == 401, err
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients(server, token)

    # SMS sign-in: the same answer as for any number, but no code is sent, none verifies
    sent_before = len(sender(server).sent)
    status, answer, _ = await post(server, "/api/auth/sms/code", {"phone": PHONE})
    assert status == 200, answer
    sms = server.ctx.services.identity.sms
    assert sms is not None
    await sms.drain()
    assert len(sender(server).sent) == sent_before
    status, err, _ = await post(server, "/api/auth/sms/verify", {"phone": PHONE, "code": "123456"})
    assert status == 401 and err["error"]["code"] == "invalid_code", err

    # enabled again: the old tokens stay dead, a new sign-in works
    back = {"reason": "phone recovered, identity checked at the counter"}
    status, out, _ = await post(server, f"/api/people/{person_id}/enable", back, boss)
    assert status == 200, out
    assert out["disabled"] is False and out["last_change"]["state"] == "enabled"
    assert out["last_change"]["reason"] == back["reason"]
    assert await get(server, "/api/sessions", token) == 401
    status, _, _ = await post(server, "/api/auth/refresh", {"refresh_token": refresh})
    assert status == 401
    again = await sign_in(server, PHONE)
    assert await get(server, "/api/sessions", again["access_token"]) == 200

    async with session_factory(server.ctx.engine)() as db:
        rows = (
            await db.scalars(
                select(IdentityAudit)
                .where(IdentityAudit.subject == person_id)
                .order_by(IdentityAudit.id)
            )
        ).all()
    assert [(r.kind, r.actor_role, r.data) for r in rows] == [
        ("person_looked_up", "supervisor", {**WANG_SEARCHED, "outcome": "found"}),
        ("person_access_read", "supervisor", {"outcome": "found"}),
        ("person_disabled", "supervisor", reason),
        ("person_enabled", "supervisor", back),
    ]


async def test_only_supervisors_and_clear_errors(server: RunningServer):
    await imported(server)
    session = await sign_in(server, PHONE)
    taxpayer = session["access_token"]
    person_id = session["person"]["person_id"]
    boss = await server.staff("boss", "supervisor")
    agent = await server.staff("ann")
    reason = {"reason": "test"}
    for token, want in ((taxpayer, 403), (agent, 403), (None, 401)):
        for path in (f"/api/people/{person_id}/disable", f"/api/people/{person_id}/enable"):
            status, err, _ = await post(server, path, reason, token)
            assert status == want, (path, err)
        status, _, _ = await post(server, "/api/people/lookup", WANG, token)
        assert status == want
        assert await get(server, f"/api/people/{person_id}/access", token) == want
    assert await get(server, "/api/sessions", taxpayer) == 200  # nothing happened

    unknown = str(uuid.uuid4())
    for path in (f"/api/people/{unknown}/disable", f"/api/people/{unknown}/enable"):
        status, err, _ = await post(server, path, reason, boss)
        assert status == 404 and err["error"]["code"] == "not_found", err
        assert err["error"]["message"] == "no such person"
    assert await get(server, f"/api/people/{unknown}/access", boss) == 404
    assert await get(server, "/api/people/not%20an%20id/access", boss) == 404
    status, err, _ = await post(server, "/api/people/x'--/disable", reason, boss)
    assert status == 404, err
    # a valid document nobody in the registry has; a malformed one
    other = {"document_type": "resident_id", "document": "110105198001010016"}
    status, err, _ = await post(server, "/api/people/lookup", other, boss)
    assert status == 404 and "no person with this document" in err["error"]["message"], err
    bad = {"document_type": "resident_id", "document": "110105198001010017"}
    status, err, _ = await post(server, "/api/people/lookup", bad, boss)
    assert status == 400 and err["error"]["code"] == "invalid_id", err
    # a reason is required, and bounded
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "ok", "extra": 1}):
        status, err, _ = await post(server, f"/api/people/{person_id}/disable", body, boss)
        assert status == 400 and err["error"]["code"] == "invalid_payload", (body, err)
    assert await get(server, "/api/sessions", taxpayer) == 200


async def test_a_travel_permit_holder_is_found_by_either_cards_number(server: RunningServer):
    """A travel permit is keyed on its lifelong number: the old card's 8 digits find the
    person whose latest card has 10."""
    await imported(server)
    boss = await server.staff("boss", "supervisor")
    found = []
    for number in ("H1234567801", "H12345678", "h1234567801"):
        status, person, _ = await post(
            server,
            "/api/people/lookup",
            {"document_type": "travel_permit", "document": number},
            boss,
        )
        assert status == 200, (number, person)
        found.append(person["person_id"])
    assert len(set(found)) == 1


async def audit_rows(server: RunningServer) -> list[IdentityAudit]:
    async with session_factory(server.ctx.engine)() as db:
        return list((await db.scalars(select(IdentityAudit).order_by(IdentityAudit.id))).all())


async def test_every_lookup_and_read_of_a_person_is_audited(server: RunningServer):
    """A lookup by document (found, not found, a number failing its check) and a read of a
    person's access (found or not) each leave a row: the supervisor, when, the person (none
    for a miss), what was searched with the number masked; refused callers leave none."""
    await imported(server)
    session = await sign_in(server, PHONE)
    person_id = session["person"]["person_id"]
    boss = await server.staff("boss", "supervisor")
    boss_id = await supervisor_id(server, "boss")
    agent = await server.staff("ann")
    for token in (agent, session["access_token"]):
        status, _, _ = await post(server, "/api/people/lookup", WANG, token)
        assert status == 403
        assert await get(server, f"/api/people/{person_id}/access", token) == 403
    assert await audit_rows(server) == []

    started = datetime.now(UTC)
    nobody = {"document_type": "resident_id", "document": "110105198001010016"}
    bad = {"document_type": "resident_id", "document": "110105198001010017"}
    for lookup, want in ((WANG, 200), (nobody, 404), (bad, 400)):
        status, answer, _ = await post(server, "/api/people/lookup", lookup, boss)
        assert status == want, answer
    unknown = str(uuid.uuid4())
    assert await get(server, f"/api/people/{person_id}/access", boss) == 200
    assert await get(server, f"/api/people/{unknown}/access", boss) == 404
    ended = datetime.now(UTC)

    rows = await audit_rows(server)
    assert [(r.kind, r.actor_role, r.actor_id, r.subject, r.data) for r in rows] == [
        (
            "person_looked_up",
            "supervisor",
            boss_id,
            person_id,
            {**WANG_SEARCHED, "outcome": "found"},
        ),
        (
            "person_looked_up",
            "supervisor",
            boss_id,
            "",
            {
                "document_type": "resident_id",
                "document": "1101**********0016",
                "outcome": "not_found",
            },
        ),
        (
            "person_looked_up",
            "supervisor",
            boss_id,
            "",
            {
                "document_type": "resident_id",
                "document": "1101**********0017",
                "outcome": "invalid_id",
            },
        ),
        ("person_access_read", "supervisor", boss_id, person_id, {"outcome": "found"}),
        ("person_access_read", "supervisor", boss_id, unknown, {"outcome": "not_found"}),
    ]
    assert all(started <= r.at <= ended for r in rows)
    kept = repr([(r.subject, r.data) for r in rows])
    for number in (WANG["document"], nobody["document"], bad["document"]):
        assert number[4:-4] not in kept  # never the whole number, nor its middle

    # a travel permit's number, as typed, masked the same way
    permit = {"document_type": "travel_permit", "document": "h1234567801"}
    status, _, _ = await post(server, "/api/people/lookup", permit, boss)
    assert status == 200
    last = (await audit_rows(server))[-1]
    assert last.data == {
        "document_type": "travel_permit",
        "document": "H123***7801",
        "outcome": "found",
    }
