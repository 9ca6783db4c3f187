"""In-call chat in real headless Chromium against the real server: messages both ways between
the agent desk and the taxpayer's call, the unread badge and its announcement, text shown as
text (markup is not run), and a taxpayer page reloaded mid-call gets the history back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.test_resume import start_call, wait_connected

pytestmark = pytest.mark.e2e

ITEMS_JS = """() => [...document.querySelectorAll('#chat-list .chat__msg')].map(li => ({
  seq: li.dataset.seq, state: li.dataset.state,
  mine: li.classList.contains('chat__msg--mine'),
  text: li.querySelector('.chat__text').textContent}))"""


async def unread(page: Any) -> int:
    visible = await page.is_visible("#chat-unread")
    return int(await page.get_attribute("#chat-unread", "data-unread") or 0) if visible else 0


async def wait_items(e2e: Any, page: Any, n: int) -> list[dict[str, Any]]:
    async def sent() -> Any:
        items = await page.evaluate(ITEMS_JS)
        return items if len(items) == n and all(i["state"] == "sent" for i in items) else None

    return await e2e.poll_until(sent, within=10, what=f"{n} messages on {page.url}")


async def send(page: Any, text: str) -> None:
    await page.fill("#chat-input", text)
    await page.press("#chat-input", "Enter")


async def test_chat_both_ways_with_unread_and_a_reload(e2e: Any) -> None:
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    taxpayer, agent, sid = await start_call(e2e, "chat with the officer")
    for page in (taxpayer, agent):
        assert await page.is_visible("#chat-toggle")
        assert not await page.is_visible("#chat-body")  # closed until opened
        assert await unread(page) == 0

    # The agent writes; the taxpayer's closed panel counts it and announces it.
    await agent.click("#chat-toggle")
    await send(agent, "Hello, please show me the invoice number.")
    await wait_items(e2e, agent, 1)
    assert await agent.input_value("#chat-input") == ""

    async def badge() -> Any:
        return await unread(taxpayer) == 1 or None

    await e2e.poll_until(badge, within=10, what="the unread badge on the taxpayer page")
    announced = await taxpayer.text_content("#chat-announce") or ""
    assert "Hello, please show me the invoice number." in announced and "Tax officer" in announced
    await taxpayer.click("#chat-toggle")
    items = await wait_items(e2e, taxpayer, 1)
    assert items[0]["mine"] is False and items[0]["seq"] == "1"
    assert await unread(taxpayer) == 0

    # The taxpayer answers with markup: shown as the text it is, never as HTML.
    await send(taxpayer, "<b>044001</b> <img src=x onerror=alert(1)>")
    await wait_items(e2e, taxpayer, 2)
    items = await wait_items(e2e, agent, 2)
    assert items[1]["text"] == "<b>044001</b> <img src=x onerror=alert(1)>"
    assert await agent.locator("#chat-list b, #chat-list img").count() == 0
    await e2e.screenshot(agent, "chat-agent-1280")
    await taxpayer.set_viewport_size({"width": 1280, "height": 800})
    await e2e.screenshot(taxpayer, "chat-taxpayer-1280")
    await taxpayer.set_viewport_size({"width": 390, "height": 844})
    await e2e.screenshot(taxpayer, "chat-taxpayer-390")
    await e2e.axe(taxpayer, "the taxpayer's call with the chat open")
    await e2e.axe(agent, "the agent desk with the chat open")

    # The taxpayer's page reloads mid-call; the agent writes meanwhile.
    await taxpayer.reload()
    await taxpayer.wait_for_function("() => window.vtax && window.vtax.page === 'taxpayer'")
    await send(agent, "Are you back?")
    await wait_connected(e2e, taxpayer, agent)

    async def one_new() -> Any:
        return await unread(taxpayer) == 1 or None

    await e2e.poll_until(one_new, within=15, what="one unread message after the reload")
    await taxpayer.click("#chat-toggle")
    items = await wait_items(e2e, taxpayer, 3)
    assert [i["text"] for i in items] == [
        "Hello, please show me the invoice number.",
        "<b>044001</b> <img src=x onerror=alert(1)>",
        "Are you back?",
    ]
    assert [i["mine"] for i in items] == [False, True, False]
    await send(taxpayer, "Yes, I am back.")
    await wait_items(e2e, agent, 4)

    # The record: the supervisor reads the same conversation.
    body = await asyncio.to_thread(e2e.server.get_json, f"/api/sessions/{sid}/messages", token)
    assert [m["seq"] for m in body["messages"]] == [1, 2, 3, 4]
    assert body["messages"][3]["text"] == "Yes, I am back."
    await agent.click("#hangup")
    await e2e.wait_state(agent, "ended")

    # The supervisor's review page shows the conversation in the session's detail, as text.
    supervisor = await e2e.supervisor_page()
    row = supervisor.locator(f'#sessions tbody tr[data-session-id="{sid}"]')
    await row.wait_for()
    await row.locator("button.open").click()
    await supervisor.wait_for_selector("#detail-card", state="visible")
    lines = supervisor.locator("#detail-messages li")
    assert await lines.count() == 4
    assert [await lines.nth(i).get_attribute("data-seq") for i in range(4)] == ["1", "2", "3", "4"]
    assert "<b>044001</b>" in (await lines.nth(1).text_content() or "")
    assert await supervisor.locator("#detail-messages b, #detail-messages img").count() == 0
    assert "Yes, I am back." in (await lines.nth(3).text_content() or "")
    assert await e2e.error_text(taxpayer) == ""
    assert await e2e.error_text(agent) == ""


ASSIST_JS = """() => [...document.querySelectorAll('#assist-entries > li')].map(li => ({
  key: li.dataset.key, question: li.querySelector('.assist__question').textContent,
  answer: li.querySelector('.assist__answer').textContent}))"""


async def test_agent_assist_suggests_entries_and_sends_an_answer_in_the_chat(e2e: Any) -> None:
    taxpayer, agent, _ = await start_call(e2e, "How do I issue a red-letter invoice?")

    async def suggested(previous: Any = None) -> Any:
        found = await agent.evaluate(ASSIST_JS)
        return found if found and found != previous else None

    # The taxpayer's question is searched at once, in the call's language.
    first = await e2e.poll_until(suggested, within=10, what="suggestions for the question")
    assert len(first) <= 5 and all(e["answer"].strip() for e in first)
    assert any("red" in e["question"].lower() for e in first), first
    # What the agent types is searched too.
    await agent.fill("#assist-q", "annual reconciliation of individual income tax")
    typed = await e2e.poll_until(
        lambda: suggested(first), within=10, what="suggestions for what the agent typed"
    )
    assert any("income tax" in e["question"].lower() for e in typed), typed
    await e2e.axe(agent, "the agent desk with the knowledge base's suggestions")
    await e2e.screenshot(agent, "assist-agent-1280")

    # An entry's answer goes into the chat as the agent's message; the taxpayer reads it.
    await agent.locator("#assist-entries > li").first.locator(".assist__send").click()
    await wait_items(e2e, agent, 1)
    await taxpayer.click("#chat-toggle")
    items = await wait_items(e2e, taxpayer, 1)
    assert items[0]["text"] == typed[0]["answer"][:2000] and items[0]["mine"] is False
    await taxpayer.click("#hangup")
    await e2e.wait_state(taxpayer, "ended")
