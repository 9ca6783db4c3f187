"""Appointments (issue 18) in Chromium against a real node run in this process, so that the
test can set the appointments' clock (`services.appointments.clock`, the seam the HTTP tests
of tests/appointments use): a taxpayer books in the pages, staff approve on the agent desk
(and reject another booking with a reason the taxpayer reads), the taxpayer checks in too
early (refused) and then at the time, asks to be told when the turn is near instead of
waiting (the place is kept), is told, comes back and is connected; the booking ends served.
axe-core on each state; screenshots at 1280x800 and 390x844.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
