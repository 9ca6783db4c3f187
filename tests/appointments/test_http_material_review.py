"""Per-file pre-review through the real node (SQLite and PostgreSQL, an ephemeral port):
staff mark each material, the taxpayer reads why and replaces the file (multipart, the
upload checks), no approval while a file needs replacing; 401/403/404, and a material of
another booking is not reviewed or replaced through this one."""

from __future__ import annotations

import hashlib
import io

import aiohttp

from tests.appointments.conftest import PDF
from tests.appointments.test_http import FIRST, ITEM, call, code, setup
from tests.conftest import RunningServer

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 20
SECOND = "invoices~zh-CN~20261204T0930"


def form(data: bytes, filename: str) -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field(
        "file", io.BytesIO(data), filename=filename, content_type="application/octet-stream"
    )
    return f


async def book(
    server: RunningServer, token: str, slot_id: str, files: list[bytes]
) -> tuple[str, list[str]]:
    body = {"slot_id": slot_id, "items": [ITEM], "question": "发票领用", "locale": "pt"}
    status, booked = await call(server, "POST", "/api/appointments", token, json=body)
    assert status == 201, booked
    ids = []
    for i, data in enumerate(files):
        status, m = await call(
            server, "POST", f"/api/appointments/{booked['id']}/materials", token,
            data=data, params={"filename": f"f{i}"},
        )  # fmt: skip
        assert status == 201, m
        ids.append(m["id"])
    return booked["id"], ids


async def test_per_file_review_over_http(server: RunningServer) -> None:
    p = await setup(server)
    a, b, sup, agent = p["a"], p["b"], p["sup"], p["agent"]
    bid, (m1, m2) = await book(server, a, FIRST, [PDF, PNG])
    other_bid, (other_m,) = await book(server, b, SECOND, [PDF])
    base = f"/api/appointments/{bid}/materials"
    needs = {"verdict": "needs_replacing", "reason": "illegible", "note": "too dark"}

    # ---- the verdict: staff only, the body checked, the material of this booking only
    assert (await call(server, "POST", f"{base}/{m2}/review", json=needs))[0] == 401
    status, err = await call(server, "POST", f"{base}/{m2}/review", a, json=needs)
    assert status == 403 and code(err) == "forbidden"
    for wrong in ({"verdict": "needs_replacing"}, {"verdict": "accepted", "reason": "expired"},
                  needs | {"extra": 1}, {"verdict": "needs_replacing", "reason": "other"}):  # fmt: skip
        status, err = await call(server, "POST", f"{base}/{m2}/review", agent, json=wrong)
        assert status == 400 and code(err) == "invalid_payload", (wrong, err)
    status, err = await call(server, "POST", f"{base}/{other_m}/review", agent, json=needs)
    assert status == 404 and code(err) == "not_found", err
    assert (await call(server, "POST", f"{base}/nope/review", agent, json=needs))[0] == 404
    status, other = await call(server, "GET", f"/api/appointments/{other_bid}", agent)
    assert other["state"] == "requested" and other["materials"][0]["review"] == "pending"

    status, seen = await call(
        server, "POST", f"{base}/{m1}/review", agent, json={"verdict": "accepted"}
    )
    assert status == 200 and seen["state"] == "pre_review", seen
    status, seen = await call(server, "POST", f"{base}/{m2}/review", sup, json=needs)
    assert status == 200, seen
    by_id = {m["id"]: m for m in seen["materials"]}
    assert by_id[m1]["review"] == "accepted"
    assert (by_id[m2]["review"], by_id[m2]["review_reason"], by_id[m2]["review_note"]) == (
        "needs_replacing", "illegible", "too dark",
    )  # fmt: skip

    # ---- no approval while a file needs replacing
    rpath = f"/api/appointments/{bid}/review"
    status, err = await call(server, "POST", rpath, agent, json={"decision": "approved"})
    assert status == 409 and code(err) == "materials_need_replacing", err

    # ---- the taxpayer reads why, per file
    status, own = await call(server, "GET", f"/api/appointments/{bid}", a)
    mine = {m["id"]: m for m in own["materials"]}
    assert (mine[m2]["review"], mine[m2]["review_reason"], mine[m2]["review_note"]) == (
        "needs_replacing", "illegible", "too dark",
    )  # fmt: skip

    # ---- the replacement: the owner only, this booking's file only, the upload checks
    rep = f"{base}/{m2}/replace"
    assert (await call(server, "POST", rep, data=form(PDF, "x.pdf")))[0] == 401
    assert (await call(server, "POST", rep, agent, data=form(PDF, "x.pdf")))[0] == 403
    assert (await call(server, "POST", rep, b, data=form(PDF, "x.pdf")))[0] == 404
    status, err = await call(
        server, "POST", f"{base}/{other_m}/replace", a, data=form(PDF, "x.pdf")
    )
    assert status == 404, err
    status, err = await call(server, "POST", f"{base}/{m1}/replace", a, data=form(PDF, "x.pdf"))
    assert status == 409 and code(err) == "invalid_state", err  # accepted: nothing to replace
    status, err = await call(server, "POST", rep, a, data=form(b"MZ\x90\x00 exe", "x.pdf"))
    assert status == 415, err
    too_big = PDF + b"x" * server.ctx.settings.documents_max_bytes
    status, err = await call(server, "POST", rep, a, data=form(too_big, "x.pdf"))
    assert status == 413, err
    new = PDF + b" the clear scan"
    status, replaced = await call(server, "POST", rep, a, data=form(new, "scan.pdf"))
    assert status == 200, replaced
    assert (replaced["id"], replaced["revision"], replaced["review"]) == (m2, 2, "pending")
    assert replaced["sha256"] == hashlib.sha256(new).hexdigest()
    for who in (a, agent):
        status, data = await call(server, "GET", f"{base}/{m2}", who)
        assert status == 200 and data == new

    # ---- now it may be approved; afterwards nothing is reviewed or replaced
    status, approved = await call(server, "POST", rpath, agent, json={"decision": "approved"})
    assert status == 200 and approved["state"] == "approved", approved
    status, err = await call(server, "POST", f"{base}/{m2}/review", agent, json=needs)
    assert status == 409 and code(err) == "invalid_state"

    # ---- the booking's history has every verdict and the replacement
    kinds = [e.kind for e in await server.ctx.services.appointments.bookings.events(bid)]
    assert kinds.count("material_reviewed") == 2 and kinds.count("material_replaced") == 1
