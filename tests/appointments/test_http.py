"""Appointments through the real node: every REST endpoint of the wiring table over HTTP (on
SQLite and on a fresh PostgreSQL database), who may call it (401/403, and 404 for a booking
that is not the caller's), bad input; and `appointment:check_in` over Socket.IO into the
live queue, ahead of a walk-in who waited longer, offered with the booking, served."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.appointments.conftest import NOW, PDF
from tests.conftest import RESIDENT_ID, USCC, RunningServer

DATA = Path(__file__).parents[2] / "vtax" / "data"
ITEM = "invoices.invoice_collection"
PLAN = {
    "periods": [
        {"days": "mon-fri", "start": "09:00", "end": "12:00", "category": "invoices",
         "language": "zh-CN", "agents": 2},
    ]
}  # fmt: skip
FIRST = "invoices~zh-CN~20261204T0900"  # Friday 4 Dec 2026, 09:00 in Shanghai
T = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.t = at.timestamp()

    def __call__(self) -> float:
        return self.t

    def set(self, at: datetime) -> None:
        self.t = at.timestamp()


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def call(
    server: RunningServer, method: str, path: str, token: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    async with server.http.request(method, server.url + path, headers=auth(token), **kwargs) as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.read()


async def taxpayer(server: RunningServer, id_number: str, id_type: str) -> tuple[str, str]:
    """Signed in by SMS code (tests/signin.py): the access token and the person's id."""
    session = await server.taxpayer_session(id_number, id_type)
    return session["access_token"], session["person"]["person_id"]


async def setup(server: RunningServer) -> dict[str, Any]:
    clock = Clock(NOW)  # Thursday 3 Dec 2026, 10:00 in Shanghai
    server.ctx.services.appointments.clock = clock
    a, a_id = await taxpayer(server, USCC, "uscc")
    b, b_id = await taxpayer(server, RESIDENT_ID, "resident_id")
    sup = await server.staff("boss", "supervisor")
    agent = await server.staff("agent1", "agent")
    status, plan = await call(server, "PUT", "/api/appointments/staffing", sup, json=PLAN)
    assert status == 200, plan
    return {"clock": clock, "a": a, "a_id": a_id, "b": b, "b_id": b_id, "sup": sup, "agent": agent}


def code(data: Any) -> str:
    return data["error"]["code"]


async def test_every_endpoint_over_http(server: RunningServer) -> None:
    p = await setup(server)
    a, b, sup, agent = p["a"], p["b"], p["sup"], p["agent"]

    # ---- the staffing plan: staff read it, supervisors replace it
    assert (await call(server, "GET", "/api/appointments/staffing"))[0] == 401
    assert (await call(server, "GET", "/api/appointments/staffing", a))[0] == 403
    status, plan = await call(server, "GET", "/api/appointments/staffing", agent)
    assert status == 200 and plan["periods"][0]["agents"] == 2
    status, err = await call(server, "PUT", "/api/appointments/staffing", agent, json=PLAN)
    assert status == 403 and code(err) == "forbidden"
    bad = {"periods": [PLAN["periods"][0] | {"category": "nope"}]}
    status, err = await call(server, "PUT", "/api/appointments/staffing", sup, json=bad)
    assert status == 400 and code(err) in ("unknown_category", "invalid_payload"), err
    status, err = await call(server, "PUT", "/api/appointments/staffing", sup, data=b"{nope")
    assert status == 400 and code(err) == "invalid_payload"

    # ---- slots: anyone signed in
    q = {"category": "invoices", "language": "zh-CN"}
    assert (await call(server, "GET", "/api/appointments/slots", params=q))[0] == 401
    status, err = await call(server, "GET", "/api/appointments/slots", a, params={"x": "1"})
    assert status == 400 and code(err) == "invalid_payload"
    status, slots = await call(server, "GET", "/api/appointments/slots", a, params=q)
    assert status == 200, slots
    assert slots["timezone"] == "Asia/Shanghai" and slots["days"][0] == "2026-12-04"
    first = slots["slots"][0]
    assert (first["id"], first["starts_at"], first["capacity"], first["remaining"]) == (
        FIRST, "2026-12-04T09:00:00+08:00", 2, 2,
    )  # fmt: skip
    status, one_day = await call(
        server, "GET", "/api/appointments/slots", agent, params=q | {"day": "2026-12-07"}
    )
    assert status == 200 and {s["id"][-13:-5] for s in one_day["slots"]} == {"20261207"}

    # ---- book: taxpayers only, the body checked
    body = {"slot_id": FIRST, "items": [ITEM], "question": "发票领用", "locale": "en"}
    status, err = await call(server, "POST", "/api/appointments", agent, json=body)
    assert status == 403
    for wrong in (
        body | {"extra": 1},
        body | {"slot_id": "../../etc/passwd"},
        body | {"question": ""},
        body | {"phone": "12345"},
        {k: v for k, v in body.items() if k != "question"},
    ):
        status, err = await call(server, "POST", "/api/appointments", a, json=wrong)
        assert status == 400 and code(err) == "invalid_payload", (wrong, err)
    status, err = await call(
        server, "POST", "/api/appointments", a, json=body | {"items": ["registration.x"]}
    )
    assert status == 400 and code(err) == "invalid_payload"
    status, err = await call(
        server,
        "POST",
        "/api/appointments",
        a,
        json=body | {"slot_id": "invoices~zh-CN~20261203T0900"},
    )
    assert status == 409 and code(err) == "slot_unavailable", err
    status, booked = await call(server, "POST", "/api/appointments", a, json=body)
    assert status == 201, booked
    assert booked["state"] == "requested" and booked["starts_at"] == "2026-12-04T09:00:00+08:00"
    bid = booked["id"]
    status, again = await call(server, "POST", "/api/appointments", a, json=body)
    assert status == 409, again  # one active booking a day
    status, slots = await call(server, "GET", "/api/appointments/slots", b, params=q)
    assert slots["slots"][0]["remaining"] == 1

    # ---- reading: the taxpayer's own; staff any, with the strikes; others 404
    status, mine = await call(server, "GET", "/api/appointments", a)
    assert status == 200 and [x["id"] for x in mine["bookings"]] == [bid]
    # what the page checks a file against before sending it: the node's own limits
    assert mine["material_limits"] == {
        "max_bytes": server.ctx.settings.documents_max_bytes,
        "max_count": server.ctx.settings.appointment_materials_max,
        "media_types": ["application/pdf", "image/png", "image/jpeg", "image/webp"],
    }
    status, theirs = await call(server, "GET", "/api/appointments", b)
    assert status == 200 and theirs["bookings"] == []
    assert (await call(server, "GET", "/api/appointments", agent))[0] == 403
    status, own = await call(server, "GET", f"/api/appointments/{bid}", a)
    assert status == 200 and own["id"] == bid and own["taxpayer_id"] is None
    status, err = await call(server, "GET", f"/api/appointments/{bid}", b)
    assert status == 404 and code(err) == "not_found"
    status, staff_view = await call(server, "GET", f"/api/appointments/{bid}", agent)
    assert status == 200 and staff_view["taxpayer_id"] == p["a_id"]
    assert (staff_view["strikes"], staff_view["blocked"]) == (0, False)
    for missing in ("no-such-booking", "%00", "x" * 65):
        assert (await call(server, "GET", f"/api/appointments/{missing}", agent))[0] == 404
    assert (await call(server, "GET", f"/api/appointments/{bid}", agent, params={"a": 1}))[0] == 400

    # ---- materials: the taxpayer attaches; the taxpayer and staff read; others 404
    mpath = f"/api/appointments/{bid}/materials"
    raw = {"data": PDF, "params": {"filename": "invoice.pdf"}}
    assert (await call(server, "POST", mpath, agent, **raw))[0] == 403
    assert (await call(server, "POST", mpath, b, **raw))[0] == 404
    status, err = await call(server, "POST", mpath, a, data=b"MZ\x90\x00 not a pdf")
    assert status == 415, err
    too_big = io.BytesIO(PDF + b"x" * server.ctx.settings.documents_max_bytes)
    status, err = await call(server, "POST", mpath, a, data=too_big)
    assert status == 413, err
    status, material = await call(server, "POST", mpath, a, **raw)
    assert status == 201, material
    assert material["sha256"] == hashlib.sha256(PDF).hexdigest()
    mid = material["id"]
    for who in (a, agent, sup):
        async with server.http.get(server.url + f"{mpath}/{mid}", headers=auth(who)) as r:
            assert r.status == 200 and await r.read() == PDF
            assert r.headers["X-Content-SHA256"] == material["sha256"]
            assert r.content_type == "application/pdf"
    assert (await call(server, "GET", f"{mpath}/{mid}", b))[0] == 404
    assert (await call(server, "GET", f"{mpath}/nope", a))[0] == 404

    # ---- pre-review: staff
    status, waiting = await call(server, "GET", "/api/appointments/review", agent)
    assert status == 200 and [x["id"] for x in waiting["bookings"]] == [bid]
    assert waiting["bookings"][0]["materials"][0]["id"] == mid
    assert (await call(server, "GET", "/api/appointments/review", a))[0] == 403
    status, err = await call(
        server, "GET", "/api/appointments/review", agent, params={"state": "nope"}
    )
    assert status == 400
    rpath = f"/api/appointments/{bid}/review"
    assert (await call(server, "POST", rpath, a, json={"decision": "approved"}))[0] == 403
    status, err = await call(server, "POST", rpath, agent, json={"decision": "served"})
    assert status == 400
    status, reviewed = await call(server, "POST", rpath, agent, json={"decision": "approved"})
    assert status == 200 and reviewed["state"] == "approved", reviewed
    assert reviewed["taxpayer_id"] == p["a_id"]
    status, err = await call(server, "POST", rpath, agent, json={"decision": "rejected"})
    assert status == 400 and code(err) == "invalid_payload"  # a rejection gives its reason
    status, err = await call(
        server, "POST", rpath, agent, json={"decision": "rejected", "reason": "no"}
    )
    assert status == 409 and code(err) == "invalid_state", err  # decided already
    status, listed = await call(
        server, "GET", "/api/appointments/review", sup, params={"state": "approved"}
    )
    assert status == 200 and [x["id"] for x in listed["bookings"]] == [bid]

    # ---- reschedule and cancel
    other = "invoices~zh-CN~20261207T1000"
    spath, cpath = f"/api/appointments/{bid}/reschedule", f"/api/appointments/{bid}/cancel"
    assert (await call(server, "POST", spath, b, json={"slot_id": other}))[0] == 404
    assert (await call(server, "POST", spath, agent, json={"slot_id": other}))[0] == 403
    status, moved = await call(server, "POST", spath, a, json={"slot_id": other})
    assert status == 200 and moved["rescheduled_from"] == bid, moved
    status, old = await call(server, "GET", f"/api/appointments/{bid}", a)
    assert old["state"] == "rescheduled" and old["rescheduled_to"] == moved["id"]
    assert (await call(server, "POST", f"/api/appointments/{moved['id']}/cancel", b, json={}))[
        0
    ] == 404
    status, err = await call(server, "POST", cpath, a, json={"reason": "x" * 5000})
    assert status == 400
    status, err = await call(server, "POST", cpath, a, json={})
    assert status == 409, err  # rescheduled: nothing left to cancel
    status, cancelled = await call(
        server, "POST", f"/api/appointments/{moved['id']}/cancel", a, json={"reason": "later"}
    )
    assert status == 200 and cancelled["state"] == "cancelled"

    # ---- strikes: staff, and the taxpayer's own
    a_id, b_id = p["a_id"], p["b_id"]
    status, strikes = await call(server, "GET", f"/api/appointments/strikes/{a_id}", a)
    assert status == 200 and strikes["strikes"] == 0 and strikes["blocked"] is False
    assert (await call(server, "GET", f"/api/appointments/strikes/{b_id}", a))[0] == 404
    assert (await call(server, "GET", f"/api/appointments/strikes/{a_id}", agent))[0] == 200
    lift = f"/api/appointments/strikes/{a_id}/lift"
    assert (await call(server, "POST", lift, a, json={"reason": "please"}))[0] == 403
    assert (await call(server, "POST", lift, agent, json={}))[0] == 400
    status, lifted = await call(server, "POST", lift, agent, json={"reason": "phoned"})
    assert status in (200, 409), lifted  # nothing to lift: refused or a no-op, never a 500

    # ---- the calendar: supervisors import a year file
    year = json.loads((DATA / "calendar-2027.json").read_text("utf-8"))
    cal = "/api/appointments/calendar"
    assert (await call(server, "PUT", cal, agent, json=year))[0] == 403
    status, err = await call(server, "PUT", cal, sup, data=b"not json")
    assert status == 400 and code(err) == "invalid_calendar", err
    status, err = await call(server, "PUT", cal, sup, json=year | {"surprise": 1})
    assert status == 400 and code(err) == "invalid_calendar"
    status, err = await call(server, "PUT", cal, sup, data=b" " * (70 * 1024))
    assert status == 413
    status, imported = await call(server, "PUT", cal, sup, data=json.dumps(year).encode())
    assert status == 200 and imported["year"] == 2027, imported
    assert (await call(server, "GET", cal, a))[0] == 403
    status, years = await call(server, "GET", cal, agent)
    assert status == 200, years
    assert [(y["year"], y["status"]) for y in years["years"]] == [
        (2026, "official"), (2027, "provisional"),
    ]  # fmt: skip
    # each year with its holidays in date order, days off and the weekend days worked (调休)
    national = years["years"][0]["holidays"][-1]
    assert national == {
        "code": "national_day",
        "name": {"zh-CN": "国庆节", "zh-HK": "國慶節", "en": "National Day", "pt": "Dia Nacional"},
        "off_first": "2026-10-01", "off_last": "2026-10-07",
        "working": ["2026-09-20", "2026-10-10"],
    }  # fmt: skip
    assert sum(len(h["working"]) for h in years["years"][0]["holidays"]) == 6
    assert years["years"][0]["working_weekend_days"] == 6

    # ---- figures: supervisors
    fq = {"from": "2026-12-01", "to": "2026-12-31"}
    assert (await call(server, "GET", "/api/appointments/figures", agent, params=fq))[0] == 403
    status, err = await call(
        server,
        "GET",
        "/api/appointments/figures",
        sup,
        params={"from": "2026-12-31", "to": "2026-12-01"},
    )
    assert status == 400
    status, figures = await call(server, "GET", "/api/appointments/figures", sup, params=fq)
    assert status == 200, figures
    days = {d["day"]: d for d in figures["days"]}
    assert days["2026-12-07"]["booked"] == 1 and days["2026-12-07"]["states"] == {"cancelled": 1}
    # a moved booking counts once, on its new day
    assert days["2026-12-04"]["booked"] == 0 and days["2026-12-04"]["states"] == {"rescheduled": 1}


async def test_check_in_joins_the_queue_ahead_of_a_walk_in(
    server: RunningServer, clients: Any
) -> None:
    p = await setup(server)
    a, b, agent = p["a"], p["b"], p["agent"]
    body = {"slot_id": FIRST, "items": [ITEM], "question": "发票领用"}
    status, booked = await call(server, "POST", "/api/appointments", a, json=body)
    assert status == 201
    bid = booked["id"]
    tp = await clients(server, a)
    desk = await clients(server, agent)
    assert (await desk.call("agent:status", {"status": "away"}))["ok"]

    # not approved yet, then too early, then on time (3 minutes before T)
    res = await tp.call("appointment:check_in", {"booking_id": bid})
    assert res["ok"] is False and res["error"]["code"] == "invalid_state", res
    status, _ = await call(
        server, "POST", f"/api/appointments/{bid}/review", agent, json={"decision": "approved"}
    )
    assert status == 200
    await tp.wait_for("appointment:update", lambda m: m["booking"]["state"] == "approved")
    p["clock"].set(T - timedelta(minutes=20))
    res = await tp.call("appointment:check_in", {"booking_id": bid})
    assert res["ok"] is False and res["error"]["code"] == "too_early"
    assert (await tp.call("appointment:check_in", {"booking_id": "x" * 100}))["ok"] is False

    # A walk-in joins first; the booking checks in after it and still goes first.
    walk_in = await clients(server, b)
    joined = await walk_in.call(
        "queue:join",
        {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "walk-in"},
    )
    assert joined["ok"], joined
    p["clock"].set(T - timedelta(minutes=3))
    res = await tp.call("appointment:check_in", {"booking_id": bid})
    assert res["ok"], res
    assert res["verdict"] == "on_time" and res["joined_at"] == "2026-12-04T09:00:00+08:00"
    assert res["booking"]["state"] == "queued" and res["booking"]["ticket_id"] == res["ticket_id"]
    assert res["position"] == 1
    again = await tp.call("appointment:check_in", {"booking_id": bid})  # a reload: same ticket
    assert again["ok"] and again["ticket_id"] == res["ticket_id"]
    other = await clients(server, b)
    assert (await other.call("appointment:check_in", {"booking_id": bid}))["error"][
        "code"
    ] == "not_found"

    assert (await desk.call("agent:status", {"status": "available"}))["ok"]
    offer = await desk.wait_for("offer:new")
    assert offer["ticket"]["ticket_id"] == res["ticket_id"]
    assert offer["ticket"]["booking_id"] == bid
    status, seen = await call(server, "GET", f"/api/appointments/{bid}", agent)
    assert status == 200 and seen["question"] == "发票领用"
    accepted = await desk.call("offer:accept", {"offer_id": offer["offer_id"]})
    assert accepted["ok"], accepted
    await tp.wait_for("appointment:update", lambda m: m["booking"]["state"] == "served")
    status, done = await call(server, "GET", f"/api/appointments/{bid}", a)
    assert done["state"] == "served"
    # the session's record names the appointment it came from
    status, own = await call(server, "GET", f"/api/sessions/{accepted['session_id']}", a)
    assert status == 200, own
    assert own["booking_id"] == bid and own["consultation_id"] is None
    # the walk-in still waits, as a walk-in
    assert await server.ctx.services.queue.waiting_ticket(p["b_id"]) is not None


async def test_a_booking_whose_ticket_leaves_is_cancelled(
    server: RunningServer, clients: Any
) -> None:
    p = await setup(server)
    a, agent = p["a"], p["agent"]
    body = {"slot_id": FIRST, "question": "q"}
    status, booked = await call(server, "POST", "/api/appointments", a, json=body)
    assert status == 201
    bid = booked["id"]
    await call(
        server, "POST", f"/api/appointments/{bid}/review", agent, json={"decision": "approved"}
    )
    p["clock"].set(T + timedelta(minutes=12))  # after T + late: a walk-in
    tp = await clients(server, a)
    res = await tp.call("appointment:check_in", {"booking_id": bid})
    assert res["ok"] and res["verdict"] == "walk_in", res
    left = await tp.call("queue:leave", {"ticket_id": res["ticket_id"]})
    assert left["ok"], left
    update = await tp.wait_for("appointment:update", lambda m: m["booking"]["state"] == "cancelled")
    assert update["booking"]["cancel_reason"] == "left"


async def test_the_background_sweep_marks_no_shows(server: RunningServer) -> None:
    p = await setup(server)
    body = {"slot_id": FIRST, "question": "q"}
    status, booked = await call(server, "POST", "/api/appointments", p["a"], json=body)
    assert status == 201
    bid = booked["id"]
    await call(
        server, "POST", f"/api/appointments/{bid}/review", p["agent"], json={"decision": "approved"}
    )
    p["clock"].set(T + timedelta(minutes=16))  # past T + grace
    tasks = server.ctx.services.appointment_tasks
    assert tasks._tasks and all(not t.done() for t in tasks._tasks)  # started with the node
    await tasks.sweep()
    status, seen = await call(server, "GET", f"/api/appointments/{bid}", p["agent"])
    assert status == 200 and seen["state"] == "no_show" and seen["strikes"] == 1


@pytest.mark.parametrize("settings_overrides", [{"callback_offer_wait_s": 0, "queue_grace_s": 0.2}])
async def test_a_callback_keeps_the_place_and_tells_the_taxpayer(
    server: RunningServer, clients: Any
) -> None:
    p = await setup(server)
    services = server.ctx.services
    desk = await clients(server, p["agent"])
    assert (await desk.call("agent:status", {"status": "away"}))["ok"]
    page = await clients(server, p["a"])
    phone = await clients(server, p["a"])  # another device of the taxpayer's, holding no ticket
    joined = await page.call(
        "queue:join",
        {"category": "invoices", "language": "zh-CN", "channel": "web", "question": "q"},
    )
    assert joined["ok"], joined
    tid = joined["ticket_id"]
    stranger = await clients(server, p["b"])
    res = await stranger.call("callback:request", {"ticket_id": tid})
    assert res["ok"] is False and res["error"]["code"] == "not_found"
    res = await page.call(
        "callback:request", {"ticket_id": tid, "phone": "+8613800138000", "locale": "en"}
    )
    assert res["ok"] and res["state"] == "waiting", res

    # The page closes: the ticket stays past the connection grace and is not offered.
    await page.close()
    await asyncio.sleep(0.6)
    await services.queue.fire_due()
    held = await services.queue.ticket(tid)
    assert held is not None and held.held and held.conn_id is None
    assert (await desk.call("agent:status", {"status": "available"}))["ok"]
    await asyncio.sleep(0.3)
    assert desk.received["offer:new"] == []

    # Near the head: told on the open device (and a text queued), with a window to come back.
    turn = await phone.wait_for("callback:turn", timeout=5)
    assert turn["ticket_id"] == tid
    cb = await services.appointments.callbacks.get(tid)
    assert cb is not None and cb.state == "notified" and cb.attempts == 1

    # Back within the window: the ticket is connected and offered.
    back = await clients(server, p["a"])
    rejoined = await back.call("queue:rejoin", {"ticket_id": tid})
    assert rejoined["ok"], rejoined
    offer = await desk.wait_for("offer:new")
    assert offer["ticket"]["ticket_id"] == tid
    cb = await services.appointments.callbacks.get(tid)
    assert cb is not None and cb.state == "connected"
