"""The 'deliver' step over HTTP: uploads sniffed by content, size limit, download with the
hash re-checked, acknowledgement receipts, the pending list; refusals store nothing."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest
from sqlalchemy import func, select

from tests.review.helpers import PDF, PNG, call, people, served
from vtax.models import Delivery, SessionEvent

EXE = b"MZ\x90\x00" + b"\x00" * 200  # a Windows executable
ELF = b"\x7fELF" + b"\x00" * 200


@pytest.fixture
async def setup(server, cast):
    p = await people(server, cast)
    sid = await served(server.ctx.records, p.taxpayer_id, p.agent_id)
    return p, sid


def form(data: bytes, filename: str = "notice.pdf", note: str | None = None, ctype=None):
    f = aiohttp.FormData()
    f.add_field("file", data, filename=filename, content_type=ctype or "application/pdf")
    if note is not None:
        f.add_field("note", note)
    return f


async def stored(server):
    async with server.ctx.records.sessionmaker() as db:
        rows = await db.scalar(select(func.count()).select_from(Delivery))
        kinds = (await db.scalars(select(SessionEvent.kind))).all()
    files = [p for p in server.ctx.settings.documents_dir.rglob("*") if p.is_file()]
    return rows, kinds.count("delivered"), len(files)


async def test_deliver_download_acknowledge_with_receipt(server, setup):
    p, sid = setup
    status, d = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries", p.agent, data=form(PDF, note="notice")
    )
    assert status == 201, d
    assert d["media_type"] == "application/pdf" and d["status"] == "pending"
    assert d["sha256"] == hashlib.sha256(PDF).hexdigest() and d["size_bytes"] == len(PDF)
    assert d["filename"] == "notice.pdf" and d["note"] == "notice" and d["receipt"] is None

    # pending for the agent, the taxpayer and the supervisor; nothing for the others
    for token, n in ((p.agent, 1), (p.taxpayer, 1), (p.supervisor, 1), (p.other_taxpayer, 0)):
        status, page = await call(server, "GET", "/api/deliveries?status=pending", token)
        assert status == 200 and len(page["deliveries"]) == n

    # acknowledging before the download is out of order
    status, err = await call(server, "POST", f"/api/deliveries/{d['id']}/ack", p.taxpayer, json={})
    assert status == 409 and err["error"]["code"] == "invalid_state"

    # the agent's own download does not count as the taxpayer's
    status, body = await call(server, "GET", f"/api/deliveries/{d['id']}/content", p.agent)
    assert status == 200 and body == PDF
    async with server.http.get(
        f"{server.url}/api/deliveries/{d['id']}/content",
        headers={"Authorization": f"Bearer {p.taxpayer}"},
    ) as r:
        assert r.status == 200 and await r.read() == PDF
        assert r.headers["Content-Type"] == "application/pdf"
        assert r.headers["X-Content-SHA256"] == d["sha256"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "attachment" in r.headers["Content-Disposition"]

    status, err = await call(
        server, "POST", f"/api/deliveries/{d['id']}/ack", p.taxpayer, json={"sha256": "0" * 64}
    )
    assert status == 409 and err["error"]["code"] == "hash_mismatch"
    status, acked = await call(
        server, "POST", f"/api/deliveries/{d['id']}/ack", p.taxpayer, json={"sha256": d["sha256"]}
    )
    assert status == 200, acked
    receipt = acked["receipt"]
    assert acked["status"] == "acknowledged" and receipt["sha256"] == d["sha256"]
    assert receipt["taxpayer"]["id"] == p.taxpayer_id
    assert receipt["taxpayer"]["id_type"] == "uscc"
    assert receipt["taxpayer"]["id_number_masked"] == "9135**********0Y43"
    assert receipt["acknowledged_at"]
    status, again = await call(
        server, "POST", f"/api/deliveries/{d['id']}/ack", p.taxpayer, json={}
    )
    assert status == 200 and again["receipt"] == receipt  # idempotent: the first receipt
    status, page = await call(server, "GET", "/api/deliveries?status=pending", p.supervisor)
    assert page["deliveries"] == []
    status, page = await call(server, "GET", "/api/deliveries?status=acknowledged", p.agent)
    assert [x["id"] for x in page["deliveries"]] == [d["id"]]
    status, detail = await call(server, "GET", f"/api/review/sessions/{sid}", p.supervisor)
    assert [x["status"] for x in detail["deliveries"]] == ["acknowledged"]
    kinds = [e["kind"] for e in detail["audit"]]
    assert kinds[-4:] == ["delivered", "downloaded", "downloaded", "acknowledged"]


async def test_raw_body_upload_with_a_lying_content_type(server, setup):
    p, sid = setup
    status, d = await call(
        server,
        "POST",
        f"/api/sessions/{sid}/deliveries?filename=scan.pdf",
        p.agent,
        data=PNG,
        headers={"Content-Type": "application/pdf"},
    )
    assert status == 201, d
    assert d["media_type"] == "image/png" and d["filename"] == "scan.png"


@pytest.mark.parametrize(
    ("data", "filename"),
    [(EXE, "invoice.pdf"), (ELF, "photo.png"), (b"<html><script>", "x.pdf"), (b"%PD", "a.pdf")],
)
async def test_disguised_uploads_are_refused_and_nothing_is_stored(server, setup, data, filename):
    p, sid = setup
    status, err = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries", p.agent, data=form(data, filename)
    )
    assert status == 415 and err["error"]["code"] == "unsupported_media_type"
    assert await stored(server) == (0, 0, 0)


async def test_oversize_uploads_are_refused_and_nothing_is_stored(server, setup):
    p, sid = setup
    deliveries = server.app[__import__("signaling.review_api").review_api.DELIVERIES]
    deliveries.max_bytes = 1024
    big = PDF + b"0" * 2048
    status, err = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries", p.agent, data=form(big)
    )
    assert status == 413 and err["error"]["code"] == "payload_too_large"
    status, err = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries?filename=a.pdf", p.agent, data=big
    )
    assert status == 413
    assert await stored(server) == (0, 0, 0)
    status, _ = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries", p.agent, data=form(PDF)
    )
    assert status == 201  # just under the limit is fine


@pytest.mark.parametrize(
    "mangle",
    ["no file part", "extra part", "empty file", "bad multipart", "query on multipart"],
)
async def test_malformed_uploads(server, setup, mangle):
    p, sid = setup
    url = f"/api/sessions/{sid}/deliveries"
    kwargs: dict = {}
    if mangle == "no file part":
        f = aiohttp.FormData(default_to_multipart=True)
        f.add_field("note", "hello")
        kwargs["data"] = f
    elif mangle == "extra part":
        f = form(PDF)
        f.add_field("admin", "1")
        kwargs["data"] = f
    elif mangle == "empty file":
        kwargs["data"] = form(b"")
    elif mangle == "bad multipart":
        kwargs["data"] = b"--x\r\nnonsense"
        kwargs["headers"] = {"Content-Type": "multipart/form-data; boundary=y"}
    else:
        url += "?filename=a.pdf"
        kwargs["data"] = form(PDF)
    status, err = await call(server, "POST", url, p.agent, **kwargs)
    assert status == 400 and err["error"]["code"] == "invalid_payload", err
    assert await stored(server) == (0, 0, 0)


async def test_only_the_serving_agent_delivers_and_not_before_the_answer(server, setup):
    p, sid = setup
    status, err = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries", p.other_agent, data=form(PDF)
    )
    assert status == 404 and err["error"]["code"] == "not_found"
    waiting = await served(server.ctx.records, p.taxpayer_id, None)
    status, err = await call(
        server, "POST", f"/api/sessions/{waiting}/deliveries", p.supervisor, data=form(PDF)
    )
    assert status == 403
    assert await stored(server) == (0, 0, 0)


async def test_a_tampered_document_is_not_served(server, setup):
    p, sid = setup
    _, d = await call(server, "POST", f"/api/sessions/{sid}/deliveries", p.agent, data=form(PDF))
    (path,) = [x for x in server.ctx.settings.documents_dir.rglob("*") if x.is_file()]
    path.write_bytes(PDF.replace(b"1.7", b"1.6"))
    status, err = await call(server, "GET", f"/api/deliveries/{d['id']}/content", p.taxpayer)
    assert status == 500 and err["error"]["code"] == "document_corrupted"
    path.unlink()
    status, err = await call(server, "GET", f"/api/deliveries/{d['id']}/content", p.taxpayer)
    assert status == 500 and err["error"]["code"] == "document_corrupted"
    status, err = await call(server, "POST", f"/api/deliveries/{d['id']}/ack", p.taxpayer, json={})
    assert status == 409 and err["error"]["code"] == "invalid_state"  # never downloaded
    _, detail = await call(server, "GET", f"/api/review/sessions/{sid}", p.supervisor)
    assert [e["kind"] for e in detail["audit"]].count("document_corrupted") == 2


async def test_the_taxpayer_is_told_of_a_delivery(server, clients, setup):
    p, sid = setup
    taxpayer = await clients(server, p.taxpayer)
    other = await clients(server, p.other_taxpayer)
    status, d = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries", p.agent, data=form(PDF)
    )
    assert status == 201
    news = await taxpayer.wait_for("delivery:new")
    assert news == {
        "id": d["id"],
        "session_id": sid,
        "filename": "notice.pdf",
        "media_type": "application/pdf",
        "size_bytes": len(PDF),
        "sha256": d["sha256"],
    }
    assert other.received["delivery:new"] == []
