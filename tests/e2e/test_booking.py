"""Appointments (issue 18) in Chromium against a real node run in this process, so that the
test can set the appointments' clock (`services.appointments.clock`, the seam the HTTP tests
of tests/appointments use): a taxpayer books in the pages, staff approve on the agent desk
(and reject another booking with a reason the taxpayer reads), the taxpayer checks in too
early (refused) and then at the time, asks to be told when the turn is near instead of
waiting (the place is kept), is told, comes back and is connected; the booking ends served.
axe-core on each state; screenshots at 1280x800 and 390x844.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import RESIDENT_ID, USCC, RunningServer
from tests.e2e.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    E2E,
    E2E_IDENTITIES,
    Server,
    catalog_categories,
    poll_until,
)
from tests.e2e.test_browser_loop import wait_connected
from tests.e2e.test_taxpayer_entry import NO_SIDEWAYS_SCROLL_JS
from vtax.sms import LogSmsSender

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # Thursday 3 Dec 2026, 10:00 in Shanghai
T = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # Friday 4 Dec, 09:00 in Shanghai
FIRST = "invoices~zh-CN~20261204T0900"
MONDAY = "invoices~zh-CN~20261207T1000"
LATER = "invoices~zh-CN~20261208T1100"
PLAN = {
    "periods": [
        {"days": "mon-fri", "start": "09:00", "end": "12:00", "category": "invoices",
         "language": "zh-CN", "agents": 2},
    ]
}  # fmt: skip
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
QUESTION = "I need to collect paper invoices for my shop"


def _png(width: int = 8, height: int = 8) -> bytes:
    """A small grey PNG (a real picture: the staff's preview shows it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = _png()


class Clock:
    def __init__(self, at: datetime) -> None:
        self.t = at.timestamp()

    def __call__(self) -> float:
        return self.t

    def set(self, at: datetime) -> None:
        self.t = at.timestamp()


@pytest.fixture
def closed_queue(tmp_path: Path) -> Path:
    """A queue file where invoices is open one hour a week, on a day other than today."""
    zone = ZoneInfo("Asia/Shanghai")
    other = (datetime.now(zone).date() + timedelta(days=1)).weekday()
    path = tmp_path / "queues.toml"
    path.write_text(
        "[queues.invoices.hours]\n"
        'timezone = "Asia/Shanghai"\n'
        f'weekly = {{ {DAYS[other]} = ["09:00-10:00"] }}\n'
    )
    return path


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    # a callback is offered whatever the wait; an offer waits for a browser's click
    extra: dict[str, Any] = {"callback_offer_wait_s": 0, "offer_timeout_s": 20.0}
    if "closed_queue" in request.fixturenames:
        extra["queues_file"] = request.getfixturevalue("closed_queue")
    return extra


@dataclass
class Stack:
    e2e: E2E
    server: RunningServer
    clock: Clock


@pytest.fixture
async def stack(server: RunningServer) -> AsyncIterator[Stack]:
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed")
    clock = Clock(NOW)
    server.ctx.services.appointments.clock = clock
    accounts = server.ctx.accounts
    await accounts.add_user(
        "agent1", "agent", "agent-pass-1", display_name="Agent One",
        skills={"invoices": 5}, languages=["zh-CN", "en"],
    )  # fmt: skip
    await accounts.add_user("sup1", "supervisor", "sup-pass-1", display_name="Sup")
    sup = await server_login(server, "sup1", "sup-pass-1")
    async with server.http.put(
        f"{server.url}/api/appointments/staffing",
        json=PLAN,
        headers={"Authorization": f"Bearer {sup}"},
    ) as r:
        assert r.status == 200, await r.text()
    for number, kind in E2E_IDENTITIES:  # the people the pages sign in as
        await server.register(number, kind)
    sms = server.ctx.services.identity.sms
    assert sms is not None and isinstance(sms.sender, LogSmsSender)
    sender = sms.sender
    like = Server(
        base_url=server.url, env={}, proc=cast(Any, None), stderr_path=cast(Any, None),
        categories=catalog_categories(), agent=("agent1", "agent-pass-1"),
        supervisor=("sup1", "sup-pass-1"), sms_sent=lambda: sender.sent,
    )  # fmt: skip
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        harness = E2E(like, browser)
        try:
            yield Stack(harness, server, clock)
        finally:
            await harness.close()
            await browser.close()


async def server_login(server: RunningServer, username: str, password: str) -> str:
    async with server.http.post(
        f"{server.url}/api/auth/login", json={"username": username, "password": password}
    ) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["token"])


async def taxpayer_bookings(e2e: E2E, id_number: str, id_type: str, **kw: Any) -> Any:
    page = await e2e.page("/taxpayer", "taxpayer", **kw)
    await e2e.sign_in(page, id_number, id_type)
    await page.wait_for_selector("#assistant", state="visible")
    await page.click("#bookings-open")
    await page.wait_for_selector("#step-bookings", state="visible")
    await page.select_option("#book-category", "invoices")
    await page.select_option("#book-language", "zh-CN")
    return page


def resident_id(serial: str) -> str:
    """A resident ID number with its check character (GB 11643-1999)."""
    body = "110105198001" + serial
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body))
    return body + "10X98765432"[total % 11]


async def book(page: Any, slot: str, question: str) -> None:
    day = slot.split("~")[2]
    await page.select_option("#book-day", f"{day[:4]}-{day[4:6]}-{day[6:8]}")
    await page.check(f'[id="slot-{slot}"]')
    if question:  # moving a booking keeps its business
        await page.fill("#book-question", question)
    await page.click("#book-submit")


async def booking_state(page: Any, slot: str) -> str | None:
    items = await page.evaluate("() => (window.vtax.bookings || []).map(b => [b.slot_id, b.state])")
    return next((s for sid, s in items if sid == slot), None)


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844)])
async def test_book_approve_check_in_at_the_time_and_be_served(
    stack: Stack, viewport: tuple[int, int]
) -> None:
    e2e, clock = stack.e2e, stack.clock
    w, h = viewport
    name = f"{w}x{h}"
    page = await taxpayer_bookings(e2e, USCC, "uscc", viewport=viewport)
    await page.wait_for_selector(f'[id="slot-{FIRST}"]')
    await e2e.axe(page, f"booking form {name}")
    await page.check('#booking-form .item input[value="invoices.invoice_collection"]')
    await book(page, FIRST, QUESTION)
    await page.wait_for_selector('#my-bookings li[data-state="requested"]')
    assert "Staff will check it" in (await page.text_content("#booking-saved") or "")
    assert "9:00" in (await page.text_content("#my-bookings li .booking__when") or "")
    # A second booking, on Monday, moved to a later time, is rejected below.
    await book(page, MONDAY, "A second question")
    await page.wait_for_selector('#my-bookings li[data-state="requested"] >> nth=1')
    monday = page.locator("#my-bookings li", has_text="A second question")
    await monday.locator(".move").click()
    await page.wait_for_selector("#book-move-cancel", state="visible")
    await book(page, LATER, "")
    await page.wait_for_selector('#my-bookings li[data-state="rescheduled"]')
    assert await page.evaluate(NO_SIDEWAYS_SCROLL_JS), f"bookings scroll sideways at {name}"
    await e2e.axe(page, f"my bookings {name}")
    await e2e.screenshot(page, f"booking-mine-{name}")

    # Staff pre-review on the agent desk: approve one, reject the other with a reason.
    agent = await e2e.agent_page()
    await agent.wait_for_selector("#prereview li[data-booking-id]")
    assert await agent.locator("#prereview li").count() == 2
    first = agent.locator("#prereview li", has_text=QUESTION)
    assert "No-shows this month: 0" in (await first.text_content() or "")
    await e2e.axe(agent, "agent desk with bookings to pre-review")
    if w == 1280:  # the agent desk has its own default window
        await e2e.screenshot(agent, "agent-prereview-1280x800")
    await first.locator(".approve").click()
    await agent.wait_for_selector("#prereview-decided:has-text('Approved.')")
    later = agent.locator("#prereview li", has_text="A second question")
    await later.locator(".reject").click()  # without a reason: refused by the page
    await agent.wait_for_selector("#error:has-text('Please write the reason.')")
    await later.locator(".pr-reason").fill("Please bring the shop's licence next time")
    await later.locator(".reject").click()
    await agent.wait_for_selector("#prereview-empty", state="visible")

    # The taxpayer's page hears both results.
    async def decided() -> bool:
        return (await booking_state(page, FIRST), await booking_state(page, LATER)) == (
            "approved",
            "rejected",
        )

    await e2e.poll_until(decided, what="approved and rejected on the taxpayer's page")
    assert "Please bring the shop's licence" in (await page.text_content("#my-bookings") or "")

    # Too early, then at the time: the ticket joins the queue (the agent is away).
    await agent.click("#away")
    clock.set(T - timedelta(minutes=20))
    approved = page.locator('#my-bookings li[data-state="approved"]')
    await approved.locator(".check-in").click()
    await page.wait_for_selector("#error:has-text('too early')")
    clock.set(T - timedelta(minutes=3))
    await approved.locator(".check-in").click()
    await e2e.wait_state(page, "queued")
    assert (await page.evaluate("() => window.vtax.checkIn.verdict")) == "on_time"

    # Rather than wait: the place is kept, the page is told when the turn is near.
    await e2e.axe(page, f"queue with the callback offer {name}")
    await page.click("#callback-request")
    # At the head already: "kept" shows until the node's next tick says the turn is near.
    await page.wait_for_selector("#callback-kept, #callback-turn", state="visible")
    callback = await page.evaluate("() => window.vtax.callback")
    assert callback["state"] == "waiting" and callback["ticket_id"] == await page.evaluate(
        "() => window.vtax.checkIn.ticket_id"
    )
    await page.wait_for_selector("#callback-turn", state="visible", timeout=20000)
    assert await e2e.state(page) == "queued", "the ticket kept its place in the queue"
    await e2e.axe(page, f"queue, the turn is near {name}")
    await e2e.screenshot(page, f"booking-callback-turn-{name}")
    await page.click("#callback-connect")
    await e2e.agent_available(agent)
    await agent.wait_for_selector("#offer-booking", state="visible")
    assert QUESTION in (await agent.text_content("#offer-booking") or "")
    await agent.click("#accept")
    await wait_connected(e2e, page, agent)
    await agent.wait_for_selector("#call-booking", state="visible")

    async def served() -> bool:
        return await booking_state(page, FIRST) == "served"

    await e2e.poll_until(served, what="the booking served")
    await page.click("#hangup")
    await e2e.wait_state(page, "ended")


async def test_a_second_taxpayer_sees_a_full_slot_and_cancels(stack: Stack) -> None:
    e2e = stack.e2e
    a = await taxpayer_bookings(e2e, USCC, "uscc")
    b = await taxpayer_bookings(e2e, RESIDENT_ID, "resident_id")
    await book(a, FIRST, "first of two")
    await a.wait_for_selector('#my-bookings li[data-state="requested"]')
    await book(b, FIRST, "second of two")  # the slot has one seat: 2 agents x 30/15 x 0.5 - 1
    await b.wait_for_selector('#my-bookings li[data-state="requested"]')
    await stack.server.register(resident_id("01001"), "resident_id")  # a third person
    c = await taxpayer_bookings(e2e, resident_id("01001"), "resident_id")
    await c.wait_for_selector(f'[id="slot-{FIRST}"]')
    assert await c.is_disabled(f'[id="slot-{FIRST}"]'), "a full slot cannot be picked"
    await a.locator("#my-bookings li .cancel").click()
    await a.wait_for_selector('#my-bookings li[data-state="cancelled"]')
    await c.select_option("#book-category", "invoices")  # reload the slots
    await c.wait_for_selector(f'[id="slot-{FIRST}"]:not([disabled])')


async def test_out_of_hours_the_hand_over_offers_an_appointment(
    stack: Stack, closed_queue: Path
) -> None:
    """The assistant's "talk to a person" while the invoices queue is closed: no queue; the
    page says when it opens and leads to the booking form of that business."""
    e2e = stack.e2e
    page = await e2e.page("/taxpayer", "taxpayer", viewport=(390, 844))
    await e2e.sign_in(page, USCC, "uscc")
    await page.wait_for_selector("#assistant", state="visible")
    await page.click("#assistant-person")
    await page.select_option("#handoff-category", "invoices")
    await page.click("#handoff-go")
    await page.wait_for_selector("#assistant-closed", state="visible")
    assert await e2e.state(page) == "idle", "a closed queue is not joined"
    handoff = await page.evaluate("() => window.vtax.handoff")
    assert handoff["route"] == "callback" and handoff["next_open_at"]
    assert "It opens" in (await page.text_content("#assistant-closed") or "")
    await e2e.axe(page, "assistant out of hours")
    await e2e.screenshot(page, "assistant-closed-390x844")
    await page.click("#assistant-book")
    await page.wait_for_selector("#step-bookings", state="visible")
    assert await page.input_value("#book-category") == "invoices"


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def wait_camera(page: Any, scope: Any) -> None:
    """The camera's preview has a picture (the fake device's frames)."""
    await scope.locator(".bm-photo").click()

    async def picture() -> bool:
        return bool(await scope.locator(".bm-video").evaluate("v => v.videoWidth > 0"))

    await poll_until(picture, what="the camera preview has a picture")


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844)])
async def test_materials_attached_to_a_booking_are_opened_in_pre_review(
    stack: Stack, viewport: tuple[int, int]
) -> None:
    """A PDF picked in the booking form goes with the booking; a photo from the camera is added
    to the booking afterwards; a file the server would refuse is refused by the page; the agent
    and the supervisor open both in pre-review (checked against their SHA-256). The agent
    accepts the PDF and marks the photo as needing replacing; "Approve" is refused until the
    taxpayer, who reads why on the booking, replaces it; then the supervisor approves."""
    e2e, server = stack.e2e, stack.server
    w, h = viewport
    name = f"{w}x{h}"
    page = await taxpayer_bookings(e2e, USCC, "uscc", viewport=viewport)
    await page.wait_for_selector(f'[id="slot-{FIRST}"]')
    form = page.locator("#bm-form")
    assert "at most 10 per appointment" in (await form.text_content() or "")
    await page.set_input_files(
        "#bm-form-file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"}]
    )
    await page.wait_for_selector("#bm-form .bm-error:has-text('Only PDF files and pictures')")
    await page.set_input_files(
        "#bm-form-file",
        files=[{"name": "tax-return.pdf", "mimeType": "application/pdf", "buffer": PDF}],
    )
    await page.wait_for_selector(
        "#bm-form .bm-item[data-state='picked']:has-text('tax-return.pdf')"
    )
    await book(page, FIRST, QUESTION)
    mine = page.locator('#my-bookings li[data-state="requested"]')
    await mine.locator(".bm-item[data-state='received']").first.wait_for()
    assert "tax-return.pdf" in (await mine.locator(".bm-item").first.text_content() or "")
    assert await page.locator("#bm-form .bm-item").count() == 0, "the form's list is emptied"

    # A photo of a paper document, added to the booking afterwards.
    await wait_camera(page, mine)
    await e2e.axe(page, f"booking with the camera open {name}")
    await mine.locator(".bm-snap").click()
    await mine.locator(".bm-use-photo").click()
    await mine.locator(".bm-item[data-state='received'] >> nth=1").wait_for()
    assert (
        await mine.locator(".bm-item[data-state='sending'], .bm-item[data-state='failed']").count()
        == 0
    )
    received = await page.evaluate("() => window.vtax.bookingMaterials.received")
    assert len(received) == 2
    booking_id = await mine.get_attribute("data-booking-id")
    assert booking_id
    stored = await server.ctx.services.appointments.bookings.materials(booking_id)
    # (both came at the test clock's one instant: the server's order is by id then)
    by_type = {m.media_type: m for m in stored}
    assert sorted(by_type) == ["application/pdf", "image/jpeg"]
    pdf, photo = by_type["application/pdf"], by_type["image/jpeg"]
    assert pdf.sha256 == hashlib.sha256(PDF).hexdigest() and pdf.filename == "tax-return.pdf"
    assert photo.filename.startswith("photo-") and photo.size_bytes > 1000
    # the taxpayer opens their own photo
    await mine.locator(f".bm-item[data-material-id='{photo.id}'] .bm-open").click()
    await mine.locator(".bm-preview img").wait_for()
    assert await page.evaluate(NO_SIDEWAYS_SCROLL_JS), f"materials scroll sideways at {name}"
    await e2e.axe(page, f"booking with its materials {name}")
    await e2e.screenshot(page, f"booking-materials-{name}")

    # The agent sees both in pre-review and opens them.
    agent = await e2e.agent_page()
    item = agent.locator(f'#prereview li[data-booking-id="{booking_id}"]')
    await item.locator(".bm-staff-item >> nth=1").wait_for()
    names = await item.locator(".bm-staff-item .bm-name").all_text_contents()
    assert names == [m.filename for m in stored]
    await item.locator(f".bm-staff-item[data-material-id='{pdf.id}'] .bm-staff-open").click()
    await item.locator(".bm-staff-pdf").wait_for()
    await item.locator(f".bm-staff-item[data-material-id='{photo.id}'] .bm-staff-open").click()
    await item.locator(".bm-staff-image").wait_for()
    assert await item.locator(".bm-staff-image").evaluate("i => i.complete && i.naturalWidth > 0")
    opened = await agent.evaluate("() => window.vtax.openedMaterials")
    assert opened == [pdf.id, photo.id]
    await e2e.axe(agent, "agent desk, a booking's materials opened")
    if w == 1280:
        await e2e.screenshot(agent, "agent-prereview-materials-1280x800")

    # Per-file review: the agent marks the photo as needing replacing (with a reason and a
    # note); the approval waits for it; the taxpayer reads why and replaces the file.
    photo_item = item.locator(f".bm-staff-item[data-material-id='{photo.id}']")
    await item.locator(f".bm-staff-item[data-material-id='{pdf.id}'] .bm-accept").click()
    await item.locator(
        f".bm-staff-item[data-material-id='{pdf.id}'] .bm-verdict[data-review='accepted']"
    ).wait_for()
    await photo_item.locator(".bm-issue").select_option("illegible")
    await photo_item.locator(".bm-note").fill("too dark, take it by a window")
    await photo_item.locator(".bm-needs-replacing").click()
    await photo_item.locator(".bm-verdict[data-review='needs_replacing']").wait_for()
    await item.locator(".pr-waiting-files").wait_for()
    await e2e.axe(agent, "agent desk, a file marked as needing replacing")
    await item.locator(".approve").click()
    await agent.wait_for_selector("text=A document still needs replacing")
    assert (await server.ctx.services.appointments.bookings.get(booking_id)).state == "pre_review"

    mine = page.locator(f'#my-bookings li[data-booking-id="{booking_id}"]')
    told = mine.locator(f".bm-item[data-material-id='{photo.id}']")
    await told.locator(".bm-verdict[data-review='needs_replacing']").wait_for()
    why = await told.locator(".bm-why").text_content() or ""
    assert "It cannot be read" in why and "too dark, take it by a window" in why, why
    await e2e.axe(page, f"booking with a file to replace {name}")
    await e2e.screenshot(page, f"booking-material-to-replace-{name}")
    await told.locator(".bm-replace").set_input_files(
        files=[{"name": "clear-photo.png", "mimeType": "image/png", "buffer": PNG}]
    )
    await told.locator(".bm-verdict[data-review='pending']").wait_for()
    assert await told.locator(".bm-replace").count() == 0
    again = {m.id: m for m in await server.ctx.services.appointments.bookings.materials(booking_id)}
    assert again[photo.id].revision == 2 and again[photo.id].media_type == "image/png"
    assert again[photo.id].sha256 == hashlib.sha256(PNG).hexdigest()
    kinds = [e.kind for e in await server.ctx.services.appointments.bookings.events(booking_id)]
    assert kinds.count("material_reviewed") == 2 and kinds.count("material_replaced") == 1

    # The supervisor's page has the same pre-review.
    sup = await e2e.page("/supervisor", "supervisor", viewport=viewport)
    await e2e.login(sup, "sup1", "sup-pass-1", "#sessions")
    card = sup.locator(f'#prereview-card li[data-booking-id="{booking_id}"]')
    await card.locator(f".bm-staff-item[data-material-id='{photo.id}'] .bm-staff-open").click()
    await card.locator(".bm-staff-image").wait_for()
    await card.locator(".approve").click()
    await sup.wait_for_selector("#prereview-decided:has-text('Approved.')")

    # ... and its figures count the booking on its day.
    await sup.fill("#af-from", "2026-12-01")
    await sup.fill("#af-to", "2026-12-10")
    await sup.click("#af-show")
    row = sup.locator('#appt-figures tr[data-day="2026-12-04"]')

    async def counted() -> bool:  # the page loaded figures on opening; these come after
        cells = [
            (await row.locator(c).text_content() or "").strip() for c in (".booked", ".approved")
        ]
        return await row.count() == 1 and cells == ["1", "1"]

    await poll_until(counted, what="the figures count the booking, approved")
    assert "Dec" in (await row.locator("th").text_content() or "")


async def test_a_supervisor_imports_a_calendar_year_and_edits_staffing(
    stack: Stack, tmp_path: Path
) -> None:
    e2e, server = stack.e2e, stack.server
    sup = await e2e.page("/supervisor", "supervisor", viewport=(1280, 800))
    await e2e.login(sup, "sup1", "sup-pass-1", "#sessions")

    # The calendar: the shipped years, holidays and the weekends worked for them.
    y2026 = sup.locator('#calendar-card .cal-year[data-year="2026"]')
    await y2026.wait_for()
    assert await y2026.get_attribute("data-status") == "official"
    national = y2026.locator('tr[data-holiday="national_day"]')
    assert "(7 days)" in (await national.locator(".cal-off").text_content() or "")
    assert (
        await national.locator(".cal-working").text_content() or ""
    ) == "Sun 20 Sept, Sat 10 Oct"
    y2027 = sup.locator('#calendar-card .cal-year[data-year="2027"]')
    assert await y2027.get_attribute("data-status") == "provisional"
    assert await y2027.locator(".cal-provisional").is_visible()

    # Files the page or the server refuses.
    bad = tmp_path / "not-a-calendar.json"
    bad.write_text("year: 2027")
    await sup.set_input_files("#calendar-file", str(bad))
    await sup.click("#calendar-import")
    await sup.wait_for_selector("#error:has-text('This is not a calendar file')")
    shipped = json.loads((Path(__file__).parents[2] / "vtax/data/calendar-2027.json").read_text())
    wrong = {**shipped, "status": "official"}
    wrong["holidays"] = [dict(h) for h in shipped["holidays"]]
    wrong["holidays"][1] = {**wrong["holidays"][1], "working": ["2027-02-10"]}  # a Wednesday
    bad.write_text(json.dumps(wrong))
    await sup.set_input_files("#calendar-file", str(bad))
    await sup.click("#calendar-import")
    await sup.wait_for_selector("#error:has-text('The calendar file is not valid')")
    assert "not a weekend day" in (await sup.text_content("#calendar-detail") or "")

    # The official 2027 file: a longer Spring Festival with a Saturday worked.
    official = {**shipped, "status": "official", "source": "State Council notice (test)"}
    official["holidays"] = [dict(h) for h in shipped["holidays"]]
    official["holidays"][1] = {
        **official["holidays"][1], "off": ["2027-02-05", "2027-02-11"], "working": ["2027-02-20"],
    }  # fmt: skip
    good = tmp_path / "calendar-2027.json"
    good.write_text(json.dumps(official, ensure_ascii=False))
    await sup.set_input_files("#calendar-file", str(good))
    await sup.click("#calendar-import")
    await sup.wait_for_selector(
        "#calendar-imported:has-text('2027 imported. Days off: 16; weekend days worked: 1.')"
    )
    await sup.wait_for_selector(
        '#calendar-card .cal-year[data-year="2027"][data-status="official"]'
    )
    spring = y2027.locator('tr[data-holiday="spring_festival"]')
    assert (await spring.locator(".cal-working").text_content() or "") == "Sat 20 Feb"
    assert "(7 days)" in (await spring.locator(".cal-off").text_content() or "")
    calendar = await server.ctx.services.appointments.planning.calendar()
    assert calendar.is_working_day(date(2027, 2, 20)) and not calendar.is_working_day(
        date(2027, 2, 10)
    )

    # Staffing: one period from the fixture; a second one for English on Monday afternoon.
    periods = sup.locator("#staffing-form fieldset.period")
    assert await periods.count() == 1
    first = periods.nth(0)
    assert await first.locator(".p-wd-fri").is_checked()
    assert not await first.locator(".p-wd-sat").is_checked()
    await first.locator(".p-agents").fill("3")
    await sup.click("#staffing-add")
    second = periods.nth(1)
    await second.locator(".p-kind").select_option("dated")
    await second.locator(".p-day").fill("2026-12-07")
    await second.locator(".p-start").fill("14:00")
    await second.locator(".p-end").fill("13:00")
    await second.locator(".p-category").select_option("invoices")
    await second.locator(".p-language").select_option("en")
    await sup.click("#staffing-save")
    await poll_until(lambda: e2e.error_text(sup), what="the staffing form's refusal")
    assert await e2e.error_text(sup) == "Period 2: the start must be before the end.", (
        await sup.evaluate("() => window.vtax.lastError")
    )
    plan = await server.ctx.services.appointments.planning.staffing()
    assert [p.agents for p in plan.periods] == [2], "a refused form sends nothing"
    await second.locator(".p-end").fill("15:00")
    await sup.click("#staffing-save")
    await sup.wait_for_selector("#staffing-saved:has-text('Staffing saved (2 periods).')")
    plan = await server.ctx.services.appointments.planning.staffing()
    assert [p.model_dump(mode="json", exclude_none=True) for p in plan.periods] == [
        {"days": "mon-fri", "start": "09:00", "end": "12:00", "category": "invoices",
         "language": "zh-CN", "agents": 3},
        {"day": "2026-12-07", "start": "14:00", "end": "15:00", "category": "invoices",
         "language": "en", "agents": 1},
    ]  # fmt: skip
    # the new period's slots are offered
    token = await server_login(server, "sup1", "sup-pass-1")
    async with server.http.get(
        f"{server.url}/api/appointments/slots",
        params={"category": "invoices", "language": "en"},
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        slots = (await r.json())["slots"]
    assert [s["id"] for s in slots] == ["invoices~en~20261207T1400", "invoices~en~20261207T1430"]
    await e2e.axe(sup, "supervisor planning")
    await sup.locator("#staffing-card").scroll_into_view_if_needed()
    await e2e.screenshot(sup, "supervisor-planning-1280x800")

    # A phone, and another language: the same plan and calendar, in Traditional Chinese.
    phone = await e2e.page("/supervisor", "supervisor", viewport=(390, 844), locale="zh-HK")
    await e2e.login(phone, "sup1", "sup-pass-1", "#sessions")
    await phone.wait_for_selector("#staffing-form fieldset.period >> nth=1")
    assert "工作日曆" in (await phone.text_content("#h-calendar") or "")
    spring_hk = phone.locator('.cal-year[data-year="2027"] tr[data-holiday="spring_festival"]')
    assert "春節" in (await spring_hk.text_content() or "")
    assert await phone.evaluate(NO_SIDEWAYS_SCROLL_JS), "the planning pages scroll sideways"
    await e2e.axe(phone, "supervisor planning, zh-HK, phone")
    await e2e.screenshot(phone, "supervisor-planning-390x844")
