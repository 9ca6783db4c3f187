"""The agent desk (web/src/agent) in Chromium: each language, keyboard shortcuts for accept
and hang-up, the offer countdown, and axe-core on sign-in, desk, offer, call and summary.

With VTAX_SCREENSHOTS=docs/screenshots the states are saved at 1280x800 and 390x844.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import pyotp
import pytest

from tests.e2e.conftest import run_cli
from tests.e2e.test_browser_loop import start_request, wait_connected
from tests.e2e.test_taxpayer_entry import LOCALES, VISIBLE_TEXT_JS, assert_one_language

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("browser_locale", list(LOCALES))
async def test_each_language(e2e: Any, browser_locale: str) -> None:
    lang = LOCALES[browser_locale]
    page = await e2e.page("/agent", "agent", locale=browser_locale)
    assert await page.evaluate("() => document.documentElement.lang") == lang
    assert_one_language(await page.evaluate(VISIBLE_TEXT_JS), lang)
    await e2e.axe(page, f"agent sign-in ({lang})")
    await e2e.login(page, *e2e.server.agent, "#desk")
    await page.wait_for_selector("#recent-card", state="visible")
    assert_one_language(await page.evaluate(VISIBLE_TEXT_JS), lang)
    await e2e.axe(page, f"agent desk ({lang})")


async def test_wrong_password_is_explained(e2e: Any) -> None:
    page = await e2e.page("/agent", "agent")
    await page.fill("#username", e2e.server.agent[0])
    await page.fill("#password", "not the password")
    await page.click("#login")

    async def refused() -> Any:
        return await page.evaluate("() => window.vtax.lastError && window.vtax.lastError.code")

    assert await e2e.poll_until(refused, what="a refused sign-in") == "invalid_credentials"
    assert "Wrong username or password" in await e2e.error_text(page)
    assert await page.is_visible("#login-card")


async def test_an_agent_with_an_authenticator_signs_in_with_its_code(e2e: Any) -> None:
    name, password, totp = await e2e.server.staff_with_authenticator("agent")
    page = await e2e.page("/agent", "agent", viewport=(390, 844))
    await e2e.login_with_code(
        page, name, password, totp, "#desk", axe="agent sign-in, the code asked"
    )
    assert not await page.is_visible("#login-card")


async def test_an_agent_sets_up_the_authenticator_on_the_desk(e2e: Any) -> None:
    """Set up on the desk (the secret shown once, the app's code turns it on), then the next
    sign-in asks for the code."""
    name, password = f"agt-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    await asyncio.to_thread(
        run_cli, ["user", "add", name, "--role", "agent"], e2e.server.env, password + "\n"
    )
    page = await e2e.page("/agent", "agent", viewport=(1280, 800))
    await e2e.login(page, name, password, "#desk")
    await page.click("#totp-setup")
    secret = (await page.text_content("#totp-secret") or "").replace(" ", "")
    assert len(secret) >= 16
    await page.wait_for_function("() => document.activeElement.id === 'totp-confirm-code'")
    await e2e.axe(page, "agent desk, setting up the authenticator")
    await e2e.screenshot(page, "agent-totp-setup-1280x800")
    totp = pyotp.TOTP(secret)
    wrong = "000000" if totp.now() != "000000" else "111111"
    await page.fill("#totp-confirm-code", wrong)
    await page.click("#totp-confirm")
    await page.wait_for_function(
        "() => window.vtax.lastError && window.vtax.lastError.code === 'totpWrongCode'"
    )
    # the previous step's code (accepted, +-1 step): the sign-in below uses the current one
    await page.fill("#totp-confirm-code", totp.at(int(time.time()) - 30))
    await page.click("#totp-confirm")
    await page.wait_for_selector("#totp-state", state="visible")
    assert await e2e.error_text(page) == ""
    await page.click("#signout")
    await page.wait_for_selector("#login-card", state="visible")
    await e2e.login_with_code(page, name, password, totp, "#desk")
    assert await page.is_visible("#totp-state")  # signed in with the code: on


async def test_a_locked_account_is_told_for_how_long(e2e: Any) -> None:
    name, password = f"agt-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    await asyncio.to_thread(
        run_cli, ["user", "add", name, "--role", "agent"], e2e.server.env, password + "\n"
    )
    page = await e2e.page("/agent", "agent")

    async def code() -> Any:
        return await page.evaluate("() => window.vtax.lastError && window.vtax.lastError.code")

    # five wrong passwords (staff_max_failures) lock the account; the right one is then refused
    for _ in range(5):
        await page.evaluate("() => { window.vtax.lastError = null; }")
        await page.fill("#username", name)
        await page.fill("#password", "not the password")
        await page.click("#login")
        assert await e2e.poll_until(code, what="a refused sign-in") == "invalid_credentials"
    await page.evaluate("() => { window.vtax.lastError = null; }")
    await page.fill("#password", password)
    await page.click("#login")
    assert await e2e.poll_until(code, what="the lockout") == "account_locked"
    assert "Try again in 15 min" in await e2e.error_text(page)
    assert await page.is_visible("#login-card")


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844)])
async def test_offer_call_and_summary_with_the_keyboard(
    e2e: Any, viewport: tuple[int, int]
) -> None:
    w, h = viewport
    name = f"{w}x{h}"
    agent = await e2e.page("/agent", "agent", viewport=viewport)
    await e2e.screenshot(agent, f"agent-sign-in-{name}")
    await e2e.login(agent, *e2e.server.agent, "#desk")
    await e2e.agent_available(agent)
    await e2e.screenshot(agent, f"agent-desk-{name}")
    taxpayer = await e2e.taxpayer_page()
    question = f"keyboard desk at {name}"
    await start_request(e2e, taxpayer, e2e.server.categories[0], question)
    await agent.wait_for_selector("#offer-card", state="visible")
    assert question in (await agent.text_content("#offer-question") or "")
    assert "s left" in (await agent.text_content("#offer-countdown") or "")
    await e2e.axe(agent, f"agent offer at {name}")
    await e2e.screenshot(agent, f"agent-offer-{name}")
    await agent.keyboard.press("Alt+a")  # accept
    await wait_connected(e2e, taxpayer, agent)
    await e2e.axe(agent, f"agent call at {name}")
    await e2e.screenshot(agent, f"agent-call-{name}")
    await agent.keyboard.press("Alt+h")  # hang up
    await e2e.wait_state(agent, "ended")
    await e2e.wait_state(taxpayer, "ended")
    await agent.wait_for_selector("#summary-card", state="visible")
    assert question in await agent.input_value("#asked")
    await agent.fill("#handled", "Answered from the keyboard.")
    await agent.click("#save-summary")
    await agent.wait_for_function(
        "() => document.getElementById('summary-saved').textContent.includes('version 1')"
    )
    await e2e.axe(agent, f"agent summary at {name}")
    await e2e.screenshot(agent, f"agent-summary-{name}")
    await agent.click("#ready")

    async def available() -> bool:
        return await agent.evaluate("() => window.vtax.agentStatus") == "available"

    await e2e.poll_until(available, what="agent available again")
    assert await e2e.error_text(agent) == ""
