"""The supervisor wallboard (/wallboard) in Chromium: figures from the pushed `queue:stats`
(one GET /api/stats/live for the first paint, then no polling), a waiting taxpayer, the
agent on a call with time in state, the live session, ECharts canvases, axe-core.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_browser_loop import accept_offer, start_request, wait_connected
from tests.e2e.test_taxpayer_entry import LOCALES, VISIBLE_TEXT_JS, assert_one_language

pytestmark = pytest.mark.e2e


async def wallboard(e2e: Any, locale: str = "en-US") -> tuple[Any, list[str]]:
    page = await e2e.page("/wallboard", "wallboard", locale=locale, viewport=(1280, 800))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await e2e.login(page, *e2e.server.supervisor, "#tiles")
    return page, requests


async def test_live_figures_are_pushed(e2e: Any) -> None:
    board, requests = await wallboard(e2e)
    await e2e.axe(board, "wallboard, quiet")
    # Agents and live sessions are in the contract's queue:stats; a server that does not send
    # them yet gets empty tables (checked below only when they come).
    people = await board.evaluate("() => Array.isArray(window.vtax.stats.agents)")
    category = e2e.server.categories[0]
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)

    async def agent_row(status: str) -> bool:
        sel = f'#agents tbody tr[data-status="{status}"]'
        return await board.locator(sel).count() > 0

    if people:
        await e2e.poll_until(lambda: agent_row("available"), what="the agent available")
    taxpayer = await e2e.taxpayer_page()
    question = "wallboard: am I counted?"
    await start_request(e2e, taxpayer, category, question)

    async def waiting(n: str) -> Any:
        text = await board.text_content(f'#queues tbody tr[data-queue="{category}"] .waiting')
        return (text or "").strip() == n

    # The agent is offered the ticket at once; it still waits until accepted.
    await e2e.poll_until(lambda: waiting("1"), what="one taxpayer waiting on the board")
    assert (await board.text_content("#tile-waiting") or "").strip() == "1"
    await accept_offer(e2e, agent, question)
    await wait_connected(e2e, taxpayer, agent)
    await e2e.poll_until(lambda: waiting("0"), what="nobody waiting once answered")
    if people:
        await e2e.poll_until(lambda: agent_row("busy"), what="the agent on a call")
        await board.wait_for_selector("#live tbody tr", state="visible")
        await board.wait_for_timeout(1500)
        in_state = await board.text_content('#agents tbody tr[data-status="busy"] .in-state')
        assert in_state and in_state.strip() != "0:00", "time in state ticks each second"
    assert await board.locator(".chart canvas").count() == 2
    await e2e.axe(board, "wallboard, a call")
    await e2e.screenshot(board, "wallboard-1280x800")
    pushed = await board.evaluate("() => window.vtax.statsPushed")
    assert pushed >= 2, "figures arrive as queue:stats pushes"
    polled = [u for u in requests if "/api/stats/live" in u]
    assert len(polled) == 1, f"one GET for the first paint, then pushes only: {polled}"
    await taxpayer.click("#hangup")
    await e2e.wait_state(taxpayer, "ended")


@pytest.mark.parametrize("browser_locale", ["zh-CN", "pt-PT"])
async def test_languages(e2e: Any, browser_locale: str) -> None:
    board, _ = await wallboard(e2e, browser_locale)
    lang = LOCALES[browser_locale]
    assert_one_language(await board.evaluate(VISIBLE_TEXT_JS), lang)
    await e2e.axe(board, f"wallboard ({lang})")


async def test_an_agent_may_not_watch(e2e: Any) -> None:
    page = await e2e.page("/wallboard", "wallboard")
    await page.fill("#username", e2e.server.agent[0])
    await page.fill("#password", e2e.server.agent[1])
    await page.click("#login")

    async def refused() -> Any:
        return await page.evaluate("() => window.vtax.lastError && window.vtax.lastError.code")

    assert await e2e.poll_until(refused, what="forbidden") == "forbidden"
    assert "supervisors" in await e2e.error_text(page)
