"""The kiosk entry (/kiosk) in Chromium at a kiosk's screen: the on-screen keypad, the
privacy note before the camera, the elderly mode (priority, large type, high contrast), the
idle wipe with its visible countdown, 48 px touch targets and axe-core.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_browser_loop import accept_offer, wait_connected
from tests.signin import code_in, person_for

pytestmark = pytest.mark.e2e

KIOSK = (1080, 1920)  # a portrait kiosk screen
SMALL_TARGETS_JS = """() => [...document.querySelectorAll('button, select, input, textarea')]
  .filter(e => e.offsetParent !== null)
  .map(e => ({id: e.id || e.dataset.key || e.className, r: e.getBoundingClientRect()}))
  .filter(x => x.r.height < 48 || x.r.width < 48)
  .map(x => `${x.id} ${Math.round(x.r.width)}x${Math.round(x.r.height)}`)"""
STORED_JS = "() => JSON.stringify(Object.keys(sessionStorage))"


async def type_on_keypad(page: Any, text: str) -> None:
    for ch in text:
        await page.click(f'.keypad [data-key="{ch}"]')


async def sign_in_on_keypad(e2e: Any, page: Any, *, slips: bool = False) -> None:
    """The kiosk's sign-in typed on its keypad: the mobile, then the code from the log."""
    person = person_for(e2e.USCC)
    national = person.phone.removeprefix("+86")
    if slips:  # a wrong last digit taken back; a 12th digit is refused
        await type_on_keypad(page, national[:-1] + "0")
        await page.click('.keypad [data-key="backspace"]')
        await type_on_keypad(page, national[-1] + "7")
    else:
        await type_on_keypad(page, national)
    assert await page.input_value("#phone") == national
    before = len(e2e.server.sms_texts(person.phone))
    await page.click("#send-code")

    async def sent() -> str | None:
        texts = e2e.server.sms_texts(person.phone)
        return code_in(texts[-1]) if len(texts) > before else None

    code = await e2e.poll_until(sent, what="the sign-in code")
    await page.wait_for_selector("#code", state="visible")
    await type_on_keypad(page, code)  # the keypad now types into the code
    assert await page.input_value("#code") == code
    assert await page.input_value("#phone") == national
    await page.click("#verify")
    await page.wait_for_selector("#step-acting", state="visible")
    await page.check(f"#step-acting input[data-uscc='{person.uscc}']")
    await page.click("#acting-continue")


async def test_keypad_privacy_elderly_and_a_call(e2e: Any) -> None:
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    page = await e2e.page("/kiosk", "kiosk", viewport=KIOSK)
    assert await page.evaluate("() => window.vtax.page") == "kiosk"
    assert await page.evaluate("() => document.documentElement.dataset.mode") == "kiosk"
    await e2e.axe(page, "kiosk identity")
    await e2e.screenshot(page, "kiosk-identity")
    assert await page.evaluate(SMALL_TARGETS_JS) == []
    await sign_in_on_keypad(e2e, page, slips=True)
    await page.wait_for_selector("#step-request", state="visible")
    assert not await page.is_visible("#channel"), "a kiosk is always the kiosk channel"
    assert await page.evaluate(SMALL_TARGETS_JS) == []

    await page.click("#elderly")
    assert await page.evaluate("() => document.documentElement.dataset.text") == "large"
    assert await page.evaluate("() => document.documentElement.dataset.contrast") == "high"
    await e2e.axe(page, "kiosk question, elderly mode")
    await e2e.screenshot(page, "kiosk-question-elderly")

    question = "kiosk: how do I pay my property tax?"
    await page.fill("#question", question)
    await page.click("#start")
    # The privacy note comes first: no camera, no queue yet.
    await page.wait_for_selector("#privacy-card", state="visible")
    assert await e2e.state(page) == "idle"
    assert await page.evaluate("() => !window.vtax.pc && !window.vtax.socket")
    await e2e.axe(page, "kiosk privacy note")
    await e2e.screenshot(page, "kiosk-privacy")
    await page.click("#privacy-accept")
    await e2e.wait_state(page, "queued")
    await accept_offer(e2e, agent, question)
    await wait_connected(e2e, page, agent)
    record = await agent.evaluate("() => window.vtax.sessionId")
    token = e2e.server.supervisor_token()
    view = e2e.server.get_json(f"/api/sessions/{record}", token)
    assert view["channel"] == "kiosk"
    await page.click("#hangup")
    await e2e.wait_state(page, "ended")


async def test_idle_wipe_with_a_countdown(e2e: Any) -> None:
    page = await e2e.page("/kiosk?idle=2&warn=3", "kiosk", viewport=KIOSK)
    await sign_in_on_keypad(e2e, page)
    await page.wait_for_selector("#step-request", state="visible")
    await page.fill("#question", "I will walk away")
    # Touching the screen postpones the wipe.
    await page.wait_for_selector("#idle-warning", state="visible", timeout=5000)
    await e2e.axe(page, "kiosk idle warning")
    await e2e.screenshot(page, "kiosk-idle-warning")
    assert int((await page.text_content("#idle-countdown") or "0").strip()) in (1, 2, 3)
    await page.click("#idle-stay")
    await page.wait_for_selector("#idle-warning", state="detached")
    assert await page.is_visible("#step-request")
    # Then nobody touches it: the countdown runs out and everything is cleared.
    await page.wait_for_selector("#idle-warning", state="visible", timeout=5000)
    await page.wait_for_url("**/kiosk?*wiped=1*", timeout=10000)
    await page.wait_for_function("() => window.vtax && window.vtax.page === 'kiosk'")
    assert await page.is_visible("#step-identity")
    assert await page.input_value("#phone") == ""
    assert await page.evaluate(STORED_JS) == "[]"
    assert "cleared" in await page.text_content("#notice")
