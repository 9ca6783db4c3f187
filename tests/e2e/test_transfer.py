"""An agent transfers a call from the agent page: the taxpayer page waits in the target queue,
a second agent takes it up, and video flows again with the new agent."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.e2e.conftest import run_cli
from tests.e2e.test_browser_loop import accept_offer, session_id, start_request, wait_connected

pytestmark = pytest.mark.e2e


async def test_transfer_from_the_agent_page(e2e: Any) -> None:
    first_category, target = e2e.server.categories[0], e2e.server.categories[1]
    specialist = (f"spec{secrets.token_hex(3)}", secrets.token_urlsafe(12))
    run_cli(
        ["user", "add", specialist[0], "--role", "agent", "--skill", f"{target}=5",
         "--language", "en"],
        e2e.server.env,
        specialist[1] + "\n",
    )  # fmt: skip

    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    taxpayer = await e2e.taxpayer_page()
    question = "transfer me to the specialist, e2e"
    await start_request(e2e, taxpayer, first_category, question)
    await accept_offer(e2e, agent, question)
    await wait_connected(e2e, taxpayer, agent)
    first = await session_id(taxpayer)

    await agent.select_option("#transfer-category", target)
    await agent.fill("#transfer-note", "export refund question")
    await agent.click("#transfer")
    await e2e.wait_state(taxpayer, "queued")
    status = await taxpayer.text_content("#status") or ""
    assert "Transferred to" in status and "export refund question" in status
    await agent.wait_for_selector("#summary-card", state="visible")
    assert await e2e.error_text(agent) == ""

    second = await e2e.page("/agent", "specialist")
    await e2e.login(second, *specialist, "#desk")
    await e2e.agent_available(second)
    await accept_offer(e2e, second, question)
    await wait_connected(e2e, taxpayer, second)
    assert await session_id(taxpayer) not in ("", None, first)
    await e2e.wait_media_flowing(taxpayer, second)
    assert await e2e.error_text(taxpayer) == ""
