"""Materials from the taxpayer during the call, through REST and real Socket.IO clients on
SQLite and PostgreSQL: the upload's content checks (type by content, size, empty, names),
who may hand in, list, open and review (a third party, the wrong role, another session), the
review's rules (a reason to reject, once), re-uploads that replace a rejected material, the
audit trail, and the read function the confirmation form uses."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from tests.conftest import RESIDENT_ID
from tests.integration.test_loop import start_session
from tests.review.helpers import PDF, PNG
from vtax.errors import DomainError
from vtax.models import SessionEvent, SessionMaterial

JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x00" * 64
EXE = b"MZ\x90\x00" + b"\x00" * 200


@pytest.fixture
def settings_overrides(tmp_path: Any) -> dict[str, Any]:
    return {"documents_dir": tmp_path / "documents"}


def form(data: bytes, filename: str = "id-card.pdf", ctype: str = "application/pdf", **fields):
    f = aiohttp.FormData()
    f.add_field("file", data, filename=filename, content_type=ctype)
    for name, value in fields.items():
        f.add_field(name, value)
    return f


async def req(server, method: str, path: str, token: str | None, **kwargs) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with server.http.request(method, server.url + path, headers=headers, **kwargs) as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.read()


async def upload(server, token: str, sid: str, data: bytes = PDF, **kwargs) -> tuple[int, Any]:
    return await req(
        server, "POST", f"/api/sessions/{sid}/materials", token, data=form(data, **kwargs)
    )


async def stored(server) -> tuple[int, list[str], int]:
    async with server.ctx.records.sessionmaker() as db:
        rows = len((await db.scalars(select(SessionMaterial.id))).all())
        kinds = (await db.scalars(select(SessionEvent.kind))).all()
    folder = server.ctx.settings.documents_dir
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
    return rows, [k for k in kinds if k.startswith("material_")], len(files)


async def test_an_upload_reaches_the_agent_at_once_and_is_listed(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    status, m = await upload(server, taxpayer.token, sid, PDF, filename="id-card_copy.pdf")
    assert status == 201, m
    assert m["sha256"] == hashlib.sha256(PDF).hexdigest() and m["size_bytes"] == len(PDF)
    assert (m["media_type"], m["source"], m["state"]) == ("application/pdf", "file", "submitted")
    assert m["filename"] == "id-card_copy.pdf" and m["reason"] is None and m["replaces"] is None

    news = await agent.wait_for("material:new")
    assert news == {"session_id": sid, "material": m}
    assert (await taxpayer.wait_for("material:new"))["material"]["id"] == m["id"]

    # a camera still, raw body
    status, still = await req(
        server,
        "POST",
        f"/api/sessions/{sid}/materials?filename=%E8%BA%AB%E4%BB%BD%E8%AF%81.jpg&source=camera",
        taxpayer.token,
        data=JPEG,
    )
    assert status == 201 and still["source"] == "camera" and still["media_type"] == "image/jpeg"
    assert still["filename"] == "身份证.jpg"

    supervisor = await server.staff("boss", "supervisor")
    for token in (taxpayer.token, agent.token, supervisor):
        status, page = await req(server, "GET", f"/api/sessions/{sid}/materials", token)
        assert status == 200 and [x["id"] for x in page["materials"]] == [m["id"], still["id"]]

    async with server.http.get(
        f"{server.url}/api/sessions/{sid}/materials/{m['id']}/content",
        headers={"Authorization": f"Bearer {agent.token}"},
    ) as r:
        assert r.status == 200 and await r.read() == PDF
        assert r.headers["Content-Type"] == "application/pdf"
        assert r.headers["X-Content-SHA256"] == m["sha256"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "attachment" in r.headers["Content-Disposition"]
    status, body = await req(
        server, "GET", f"/api/sessions/{sid}/materials/{m['id']}/content", supervisor
    )
    assert status == 200 and body == PDF

    _, kinds, files = await stored(server)
    assert kinds == [
        "material_submitted",
        "material_submitted",
        "material_opened",
        "material_opened",
    ]
    assert files == 2
    # stored under the session
    assert (server.ctx.settings.documents_dir / sid / "materials" / f"{m['id']}.pdf").is_file()


async def test_upload_checks_refuse_and_store_nothing(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    tp = taxpayer.token

    status, err = await upload(server, tp, sid, EXE, filename="invoice.pdf")
    assert status == 415 and err["error"]["code"] == "unsupported_media_type"
    status, err = await upload(server, tp, sid, b"", filename="empty.pdf")
    assert status == 400 and err["error"]["code"] == "invalid_payload"
    server.ctx.services.materials.store.max_bytes = 2048
    status, err = await upload(server, tp, sid, PDF + b"0" * 4096)
    assert status == 413 and err["error"]["code"] == "payload_too_large"
    status, err = await req(
        server, "POST", f"/api/sessions/{sid}/materials?filename=bad%01.pdf", tp, data=PDF
    )
    assert status == 400 and err["error"]["code"] == "invalid_payload"
    status, err = await upload(server, tp, sid, PDF, source="scanner")
    assert status == 400 and err["error"]["details"][0]["loc"] == "source"
    status, err = await upload(server, tp, sid, PDF, note="not a field")
    assert status == 400 and err["error"]["code"] == "invalid_payload"
    assert await stored(server) == (0, [], 0)
    assert agent.received["material:new"] == []

    # a name with a path is kept as a name only, with the sniffed extension
    for name in ("../../../etc/passwd.png", "..\\..\\windows\\evil.exe"):
        status, m = await upload(server, tp, sid, PNG, filename=name, ctype="image/png")
        assert status == 201, m
        assert "/" not in m["filename"] and "\\" not in m["filename"]
        assert not m["filename"].startswith(".") and m["filename"].endswith(".png")
    folder = server.ctx.settings.documents_dir.resolve()
    files = [p.resolve() for p in folder.rglob("*") if p.is_file()]
    assert len(files) == 2 and all(p.is_relative_to(folder / sid / "materials") for p in files)


async def test_only_the_sessions_taxpayer_hands_in_and_only_its_people_read(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    status, m = await upload(server, taxpayer.token, sid, PDF)
    assert status == 201
    other_taxpayer = await server.taxpayer(RESIDENT_ID, "resident_id")
    other_agent = await server.staff("agent2")
    supervisor = await server.staff("boss", "supervisor")
    content = f"/api/sessions/{sid}/materials/{m['id']}/content"
    review = f"/api/sessions/{sid}/materials/{m['id']}/review"

    status, err = await upload(server, other_taxpayer, sid, PDF)
    assert status == 404 and err["error"]["code"] == "not_found"
    status, err = await upload(server, agent.token, sid, PDF)
    assert status == 403 and err["error"]["code"] == "forbidden"
    for token in (other_taxpayer, other_agent):
        assert (await req(server, "GET", f"/api/sessions/{sid}/materials", token))[0] == 404
        assert (await req(server, "GET", content, token))[0] == 404
    assert (await req(server, "GET", content, None))[0] == 401
    status, err = await req(server, "POST", review, other_agent, json={"decision": "accept"})
    assert status == 404
    status, err = await req(server, "POST", review, supervisor, json={"decision": "accept"})
    assert status == 403
    other_client = await clients(server, other_agent)
    ack = await other_client.call(
        "material:review", {"session_id": sid, "material_id": m["id"], "decision": "accept"}
    )
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    # the taxpayer cannot review their own material
    ack = await taxpayer.call(
        "material:review", {"session_id": sid, "material_id": m["id"], "decision": "accept"}
    )
    assert ack["error"]["code"] == "forbidden"

    # a material of this session is not reachable through another session's path
    _, _, b_start, _ = await start_other_session(server, clients, other_taxpayer)
    other_sid = b_start["session_id"]
    path = f"/api/sessions/{other_sid}/materials/{m['id']}/content"
    assert (await req(server, "GET", path, other_taxpayer))[0] == 404
    async with server.ctx.records.sessionmaker() as db:
        row = await db.get(SessionMaterial, m["id"])
        assert row is not None and row.state == "submitted"


async def start_other_session(server, clients, taxpayer_token: str):
    agent = await clients(server, await server.staff("agent3"))
    taxpayer = await clients(server, taxpayer_token)
    assert (await agent.call("agent:status", {"status": "available"}))["ok"]
    join = {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "b?"}
    assert (await taxpayer.call("queue:join", join))["ok"]
    offer = await agent.wait_for("offer:new")
    assert (await agent.call("offer:accept", {"offer_id": offer["offer_id"]}))["ok"]
    return agent, taxpayer, await agent.wait_for("session:start"), None


async def test_review_rules_and_a_replacement(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    _, first = await upload(server, taxpayer.token, sid, PDF)
    _, second = await upload(server, taxpayer.token, sid, PNG, filename="a.png", ctype="image/png")

    accept = {"session_id": sid, "material_id": first["id"], "decision": "accept"}
    ack = await agent.call("material:review", accept)
    assert (
        ack["ok"] and ack["material"]["state"] == "accepted" and ack["material"]["reason"] is None
    )
    told = await taxpayer.wait_for("material:reviewed")
    assert told == {"session_id": sid, "material": ack["material"]}
    again = await agent.call("material:review", {**accept, "decision": "reject", "reason": "x"})
    assert again["ok"] is False and again["error"]["code"] == "invalid_state"

    path = f"/api/sessions/{sid}/materials/{second['id']}/review"
    status, err = await req(server, "POST", path, agent.token, json={"decision": "reject"})
    assert status == 400 and err["error"]["code"] == "invalid_payload"
    status, err = await req(
        server, "POST", path, agent.token, json={"decision": "reject", "reason": "   "}
    )
    assert status == 400
    status, err = await req(
        server, "POST", path, agent.token, json={"decision": "accept", "reason": "fine"}
    )
    assert status == 400
    reason = "The photo is blurred; please take it again in good light."
    status, rejected = await req(
        server, "POST", path, agent.token, json={"decision": "reject", "reason": reason}
    )
    assert status == 200 and rejected["state"] == "rejected" and rejected["reason"] == reason
    told = await taxpayer.wait_for(
        "material:reviewed", lambda x: x["material"]["id"] == second["id"]
    )
    assert told["material"]["reason"] == reason

    # replacing: only a rejected one, once, and only of this session
    status, err = await upload(server, taxpayer.token, sid, PDF, replaces=first["id"])
    assert status == 409 and err["error"]["code"] == "invalid_state"
    status, err = await upload(server, taxpayer.token, sid, PDF, replaces="no-such-material")
    assert status == 404
    status, again_m = await upload(
        server,
        taxpayer.token,
        sid,
        JPEG,
        filename="again.jpg",
        source="camera",
        replaces=second["id"],
    )
    assert status == 201 and again_m["replaces"] == second["id"], again_m
    status, err = await upload(server, taxpayer.token, sid, PDF, replaces=second["id"])
    assert status == 409 and err["error"]["code"] == "invalid_state"

    status, page = await req(server, "GET", f"/api/sessions/{sid}/materials", agent.token)
    by_id = {x["id"]: x for x in page["materials"]}
    assert by_id[second["id"]]["replaced_by"] == again_m["id"]
    assert [x["state"] for x in page["materials"]] == ["accepted", "rejected", "submitted"]
    _, kinds, _ = await stored(server)
    assert kinds.count("material_accepted") == 1 and kinds.count("material_rejected") == 1

    # the confirmation form's read function
    use_cases = server.ctx.services.materials
    hashes = await use_cases.hashes(sid, [again_m["id"], first["id"]])
    assert hashes == {again_m["id"]: again_m["sha256"], first["id"]: first["sha256"]}
    assert list(hashes) == [again_m["id"], first["id"]]
    with pytest.raises(DomainError) as exc:
        await use_cases.hashes("another-session", [first["id"]])
    assert exc.value.code == "not_found"
    views = await use_cases.views(sid, [first["id"]])
    assert views[0].state == "accepted"


async def test_after_the_call_the_list_stays_and_uploads_stop(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    _, m = await upload(server, taxpayer.token, sid, PDF)
    assert (await taxpayer.call("session:end", {"session_id": sid}))["ok"]
    await agent.wait_for("session:end")
    status, err = await upload(server, taxpayer.token, sid, PDF)
    assert status == 409 and err["error"]["code"] == "invalid_state"
    # the agent can still decide in wrap-up; the list is there for both
    ack = await agent.call(
        "material:review", {"session_id": sid, "material_id": m["id"], "decision": "accept"}
    )
    assert ack["ok"], ack
    status, page = await req(server, "GET", f"/api/sessions/{sid}/materials", taxpayer.token)
    assert status == 200 and page["materials"][0]["state"] == "accepted"


async def test_a_session_holds_a_bounded_number_of_materials(server, clients):
    _, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    server.ctx.services.materials.store.max_count = 2
    assert (await upload(server, taxpayer.token, sid))[0] == 201
    assert (await upload(server, taxpayer.token, sid))[0] == 201
    status, err = await upload(server, taxpayer.token, sid)
    assert status == 409 and err["error"]["code"] == "materials_full"


async def test_a_corrupted_file_is_not_served(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    _, m = await upload(server, taxpayer.token, sid, PDF)
    path = server.ctx.settings.documents_dir / sid / "materials" / f"{m['id']}.pdf"
    path.write_bytes(PDF + b"tampered")
    status, err = await req(
        server, "GET", f"/api/sessions/{sid}/materials/{m['id']}/content", agent.token
    )
    assert status == 500 and err["error"]["code"] == "document_corrupted"


async def test_concurrent_decisions_and_replacements_give_one_winner(server, clients):
    agent, taxpayer, a_start, _ = await start_session(server, clients)
    sid = a_start["session_id"]
    _, m = await upload(server, taxpayer.token, sid, PDF)
    path = f"/api/sessions/{sid}/materials/{m['id']}/review"
    decisions = (
        {"decision": "accept"},
        {"decision": "reject", "reason": "unreadable"},
        {"decision": "reject", "reason": "wrong year"},
    )
    answers = await asyncio.gather(
        *(req(server, "POST", path, agent.token, json=d) for d in decisions)
    )
    assert sorted(status for status, _ in answers) == [200, 409, 409], answers
    async with server.ctx.records.sessionmaker() as db:
        kinds = (await db.scalars(select(SessionEvent.kind))).all()
    assert sum(k in ("material_accepted", "material_rejected") for k in kinds) == 1

    # replacing one rejected material twice at once: one new material, one refusal
    _, r = await upload(server, taxpayer.token, sid, PNG, filename="r.png", ctype="image/png")
    path = f"/api/sessions/{sid}/materials/{r['id']}/review"
    status, _ = await req(server, "POST", path, agent.token, json=decisions[1])
    assert status == 200
    answers = await asyncio.gather(
        *(upload(server, taxpayer.token, sid, PDF, replaces=r["id"]) for _ in range(3))
    )
    assert sorted(status for status, _ in answers) == [201, 409, 409], answers
    status, page = await req(server, "GET", f"/api/sessions/{sid}/materials", agent.token)
    assert sum(x["replaces"] == r["id"] for x in page["materials"]) == 1
