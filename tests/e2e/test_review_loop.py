"""The review loop through the three pages, in real headless Chromium against the real server.

ask (taxpayer joins) -> handle (agent's summary, refined category, actions, follow-up) ->
deliver (a PDF during the call; download with its bytes checked, acknowledgement, receipt) ->
check (confirm; or dispute, revision, confirm) -> evaluate (rating with dimensions) ->
the supervisor filters the list, opens the whole loop with its audit log and delivery receipt,
files a quality review, resolves the flag of a low rating and downloads the CSV.
"""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser_loop import accept_offer, session_id, start_request, wait_connected

pytestmark = pytest.mark.e2e

# A small but real PDF (the server sniffs `%PDF-`); the bytes must come back unchanged.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    + bytes(range(256))  # binary content too: nothing may be re-encoded on the way
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


async def call_between(e2e: Any, question: str) -> tuple[Any, Any, str]:
    """Agent available, taxpayer asks, agent accepts; both pages connected."""
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    taxpayer = await e2e.taxpayer_page()
    await start_request(e2e, taxpayer, e2e.server.categories[0], question)
    await accept_offer(e2e, agent, question)
    await wait_connected(e2e, taxpayer, agent)
    sid = await session_id(taxpayer)
    assert sid and sid == await session_id(agent)
    return taxpayer, agent, sid


async def deliver(agent: Any, name: str, data: bytes, mime: str, note: str = "") -> None:
    await agent.set_input_files(
        "#doc-file", files=[{"name": name, "mimeType": mime, "buffer": data}]
    )
    await agent.fill("#doc-note", note)
    await agent.click("#deliver")


async def hang_up(e2e: Any, taxpayer: Any, agent: Any) -> None:
    await taxpayer.click("#hangup")
    await e2e.wait_state(taxpayer, "ended")
    await e2e.wait_state(agent, "ended")


async def write_summary(agent: Any, handled: str, *, result: str = "resolved", **more: Any) -> None:
    await agent.wait_for_selector("#summary-card", state="visible")
    await agent.fill("#handled", handled)
    if "category" in more:
        await agent.select_option("#summary-category", more["category"])
    if "actions" in more:
        await agent.fill("#actions", "\n".join(more["actions"]))
    await agent.select_option("#result", result)
    if "due" in more:
        await agent.fill("#follow-up-due", more["due"])
    if "items" in more:
        await agent.select_option("#items", more["items"])
    await agent.click("#save-summary")


async def text_of(page: Any, selector: str) -> str:
    return (await page.text_content(selector)) or ""


async def wait_text(e2e: Any, page: Any, selector: str, needle: str, within: float = 15) -> str:
    async def has() -> str | None:
        text = await text_of(page, selector)
        return text if needle in text else None

    return await e2e.poll_until(has, within=within, what=f"{needle!r} in {selector}")


async def wait_attr(e2e: Any, page: Any, selector: str, name: str, value: str) -> None:
    async def has() -> bool:
        loc = page.locator(selector)
        return await loc.count() > 0 and await loc.first.get_attribute(name) == value

    await e2e.poll_until(has, within=15, what=f"{selector} [{name}={value!r}]")


LISTED_JS = """() => {
  const v = window.vtax, st = v.st;
  return !!v.listed && v.listed.gen === st.gen && v.listed.cursor === st.cursor
    && v.listed.filters === st.filters.toString();
}"""


async def wait_listed(e2e: Any, supervisor: Any) -> None:
    """Until the table shows the answer to the latest list request (filters and page)."""

    async def listed() -> bool:
        return bool(await supervisor.evaluate(LISTED_JS))

    await e2e.poll_until(listed, within=10, what="the list for the filters and page")


async def apply_filters(e2e: Any, supervisor: Any) -> None:
    """Click "apply" (which starts a list request at once) and wait for its answer."""
    await supervisor.click("#apply-filters")
    await wait_listed(e2e, supervisor)


async def test_confirm_deliver_rate_and_supervisor_review(e2e: Any, tmp_path: Path) -> None:
    categories = e2e.server.categories
    refined = categories[1]
    taxpayer, agent, sid = await call_between(e2e, "e2e review loop: which form do I need?")
    supervisor = await e2e.supervisor_page()

    # The taxpayer consents to the recording; the recorder joins while the call goes on.
    await taxpayer.wait_for_selector("#consent-card", state="visible")
    await taxpayer.click("#consent-yes")

    # Deliver during the call: the taxpayer's page lists it at once (delivery:new).
    await deliver(agent, "guide.pdf", PDF, "application/pdf", note="the filing guide")
    doc = taxpayer.locator("#documents li").first
    await doc.wait_for(state="visible")
    assert "guide.pdf" in await doc.inner_text()
    await wait_attr(e2e, agent, "#deliveries tbody tr .status", "data-status", "pending")
    await taxpayer.wait_for_function(
        "() => window.vtax.recording.connectionState === 'connected'", timeout=20000
    )

    await hang_up(e2e, taxpayer, agent)

    # Handle: the agent corrects the category (refines the ask), lists actions, promises a
    # follow-up with a due date and picks items of the refined category.
    await agent.select_option("#summary-category", refined)
    items = await agent.eval_on_selector_all("#items option", "os => os.map(o => o.value)")
    assert items and all(i.startswith(refined + ".") for i in items), items
    await write_summary(
        agent,
        "Explained the form; will send the stamped copy.",
        result="follow_up",
        category=refined,
        actions=["checked the invoice list", "sent the filing guide"],
        due="2030-01-31",
        items=items[:1],
    )
    await wait_text(e2e, agent, "#summary-saved", "Saved")
    assert await e2e.error_text(agent) == ""

    # Check: the taxpayer sees the summary (polled) and confirms it.
    await wait_text(e2e, taxpayer, "#summary-view", "will send the stamped copy")
    summary_text = await text_of(taxpayer, "#summary-view")
    assert "sent the filing guide" in summary_text and "2030-01-31" in summary_text
    assert "Follow-up" in await text_of(taxpayer, "#follow-up-status")
    await taxpayer.wait_for_selector("#check-form", state="visible")
    await taxpayer.click("#confirm-summary")
    await wait_attr(e2e, taxpayer, "#check-status", "data-check", "confirmed")
    await taxpayer.wait_for_selector("#check-form", state="hidden")
    await wait_attr(e2e, agent, "#summary-check", "data-check", "confirmed")

    # Evaluate: a low score with the dimensions (flags the session for the supervisor).
    await taxpayer.check("#score-2")
    await taxpayer.select_option("#dim-professionalism", "3")
    await taxpayer.select_option("#dim-attitude", "2")
    await taxpayer.select_option("#dim-efficiency", "1")
    await taxpayer.select_option("#dim-av_quality", "4")
    await taxpayer.fill("#comment", "too slow")
    await taxpayer.click("#rate")
    await wait_text(e2e, taxpayer, "#rated", "Thank you")

    # Deliver: download (the bytes are what the agent uploaded), then acknowledge.
    async with taxpayer.expect_download() as dl_info:
        await doc.locator("button.download").click()
    download = await dl_info.value
    saved = tmp_path / "got.pdf"
    await download.save_as(saved)
    assert download.suggested_filename == "guide.pdf"
    assert saved.read_bytes() == PDF
    await doc.locator("button.ack").click()
    await wait_attr(e2e, taxpayer, "#documents li .delivery-status", "data-status", "acknowledged")
    assert "Acknowledged" in await doc.inner_text()
    assert await e2e.error_text(taxpayer) == ""
    # The agent's page shows the receipt (polled).
    await wait_attr(e2e, agent, "#deliveries tbody tr .status", "data-status", "acknowledged")

    # The taxpayer's own sessions: the follow-up is open, the rating shown.
    await taxpayer.click("#after-history")
    row = taxpayer.locator(f'#my-sessions tbody tr[data-session-id="{sid}"]')
    await row.wait_for(state="visible")
    assert "Open" in await row.locator(".follow-up").inner_text()
    assert "2 / 5" in await row.locator(".rating").inner_text()

    # Supervisor: filters (agent + low ratings + open flags) find the session ...
    agent_id = await supervisor.evaluate(
        "(u) => window.vtax.st.agents.find(a => a.username === u).id", e2e.server.agent[0]
    )
    await supervisor.uncheck("#auto-refresh")
    await supervisor.select_option("#f-agent", agent_id)
    await supervisor.select_option("#f-rating", "low")
    await supervisor.select_option("#f-flag", "open")
    # The category filter matches the session's final category (the agent's refinement),
    # the asked-category filter the one asked at join; the row shows both.
    await supervisor.select_option("#f-category", categories[0])
    await apply_filters(e2e, supervisor)
    srow = supervisor.locator(f'#sessions tbody tr[data-session-id="{sid}"]')
    assert await srow.count() == 0
    await supervisor.select_option("#f-category", refined)
    await supervisor.select_option("#f-asked-category", categories[0])
    await apply_filters(e2e, supervisor)
    assert await srow.count() == 1
    assert await supervisor.locator("#sessions tbody tr").count() == 1
    assert await srow.get_attribute("data-category") == categories[0]
    assert await srow.get_attribute("data-final-category") == refined
    assert " → " in await srow.locator(".category").inner_text()
    # ... and a filter that does not hold (kiosk channel) leaves it out.
    await supervisor.select_option("#f-channel", "kiosk")
    await apply_filters(e2e, supervisor)
    assert await srow.count() == 0
    await supervisor.select_option("#f-channel", "")
    await apply_filters(e2e, supervisor)
    assert await srow.count() == 1

    # The CSV export with the current filters: a native download of a signed link (the
    # browser streams it to disk), not a blob built in the page.
    async with supervisor.expect_download() as dl_info:
        await supervisor.click("#export-csv")
    exported = await dl_info.value
    assert await exported.failure() is None
    assert exported.url.startswith(e2e.server.base_url + "/api/review/export.csv?"), exported.url
    assert "dl=" in exported.url and f"asked_category={categories[0]}" in exported.url
    assert exported.suggested_filename == "sessions.csv"
    csv_path = tmp_path / "sessions.csv"
    await exported.save_as(csv_path)
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    assert [r["id"] for r in rows] == [sid]
    assert rows[0]["rating_score"] == "2" and rows[0]["flag"] == "open"
    assert (rows[0]["category"], rows[0]["final_category"]) == (categories[0], refined)
    assert await e2e.error_text(supervisor) == ""

    # The whole loop: summary, check, rating, delivery receipt, audit log.
    await srow.locator("button.open").click()
    await supervisor.wait_for_selector("#detail-card", state="visible")
    assert await supervisor.text_content("#detail-id") == sid
    assert " → " in await text_of(supervisor, "#detail-facts")  # asked → refined category
    assert "will send the stamped copy" in await text_of(supervisor, "#detail-summary")
    assert "Confirmed" in await text_of(supervisor, "#detail-checks")
    rating = await text_of(supervisor, "#detail-rating")
    assert "2 / 5" in rating and "Efficiency 1" in rating and "too slow" in rating
    receipt = supervisor.locator("#detail-deliveries tbody tr")
    assert await receipt.count() == 1
    assert await receipt.locator(".status").get_attribute("data-status") == "acknowledged"
    assert "SHA-256" in await receipt.locator(".receipt").inner_text()
    kinds = await supervisor.eval_on_selector_all(
        "#audit tbody tr", "rs => rs.map(r => r.dataset.kind)"
    )
    for kind in ("summary_saved", "delivered", "downloaded", "acknowledged", "checked", "rated"):
        assert kind in kinds, (kind, kinds)
    assert kinds.count("flagged") == 1

    # The recording: its files, each behind a playback ticket (the recorder saves it at the
    # end of the call, so the detail is reloaded until the link is there).
    async def recorded() -> bool:
        await supervisor.click("#reload-detail")
        return await supervisor.is_visible("#load-recording")

    await e2e.poll_until(recorded, within=20, interval=0.5, what="the recording link")

    async def files_listed() -> bool:  # the recorder may still be writing the last segment
        await supervisor.click("#load-recording")
        await supervisor.wait_for_selector("#recording-files li")
        return await supervisor.locator("#recording-files a").count() > 0

    await e2e.poll_until(files_listed, within=20, interval=0.5, what="the recording files")
    link = supervisor.locator("#recording-files a").first
    href = await link.get_attribute("href")
    assert href and "dl=" in href  # a signed link through the route guard
    played = await supervisor.evaluate(
        "async (u) => { const r = await fetch(u, {headers: {Range: 'bytes=0-99'}});"
        " return [r.status, r.headers.get('Content-Type')]; }",
        href,
    )
    assert played[0] == 206 and played[1].startswith("video/"), played

    # Quality review: every item scored.
    form = await supervisor.evaluate("() => window.vtax.st.qualityForm.items")
    for item in form:
        await supervisor.fill(f"#q-{item['code']}", str(item["max"] - 1))
    await supervisor.fill("#quality-comment", "good record, slow pace")
    await supervisor.click("#submit-quality")
    total = sum(i["max"] - 1 for i in form)
    await wait_text(e2e, supervisor, "#detail-quality-reviews", f"{total} / ")
    assert "quality_reviewed" in await supervisor.eval_on_selector_all(
        "#audit tbody tr", "rs => rs.map(r => r.dataset.kind)"
    )

    # The low rating's flag: resolved with a note.
    await supervisor.wait_for_selector("#flag-form", state="visible")
    await supervisor.fill("#flag-note", "called the taxpayer back")
    await supervisor.click("#resolve-flag")
    await wait_attr(e2e, supervisor, "#detail-flag", "data-flag", "done")
    assert "called the taxpayer back" in await text_of(supervisor, "#detail-flag")
    await supervisor.wait_for_selector("#flag-form", state="hidden")
    # The list was filtered on open flags: the row is gone now.
    await srow.wait_for(state="detached")
    assert await e2e.error_text(supervisor) == ""

    # The agent closes the promised follow-up from the recent sessions; the taxpayer sees it.
    await agent.click("#recent-refresh")
    arow = agent.locator(f'#recent tbody tr[data-session-id="{sid}"]')
    await arow.locator("button.follow-up-done").click()
    await wait_text(e2e, agent, f'#recent tbody tr[data-session-id="{sid}"] .follow-up', "Done")
    await taxpayer.click("#history-back")
    await taxpayer.click("#my-sessions-open")
    await wait_text(
        e2e, taxpayer, f'#my-sessions tbody tr[data-session-id="{sid}"] .follow-up', "Done"
    )

    # KPIs for today by agent, with the threshold.
    await supervisor.select_option("#k-group-by", "agent")
    await supervisor.fill("#k-threshold", "30")
    await supervisor.click("#load-kpi")
    await supervisor.wait_for_selector(f'#kpi tbody tr[data-key="{agent_id}"]')
    report = await supervisor.evaluate("() => window.vtax.kpi")
    assert report["group_by"] == "agent" and report["threshold_s"] == 30
    assert report["total"]["ratings"] >= 1
    served = next(r for r in report["rows"] if r["key"] == agent_id)

    # ... filtered to that agent on the web channel, by day: the agent's sessions; on the
    # kiosk channel (none in this test): nothing.
    async def filtered_kpi(channel: str) -> dict[str, Any]:
        await supervisor.evaluate("() => { window.vtax.kpi = null; }")
        await supervisor.select_option("#k-group-by", "day")
        await supervisor.select_option("#k-agent", agent_id)
        await supervisor.select_option("#k-channel", channel)
        await supervisor.click("#load-kpi")
        await supervisor.wait_for_function("() => window.vtax.kpi !== null")
        return await supervisor.evaluate("() => window.vtax.kpi")

    web = await filtered_kpi("web")
    assert web["group_by"] == "day" and web["total"]["sessions"] == served["sessions"] >= 1
    kiosk = await filtered_kpi("kiosk")
    assert kiosk["total"]["sessions"] == 0 and kiosk["rows"] == []
    await supervisor.select_option("#k-agent", "")
    await supervisor.select_option("#k-channel", "")


async def test_dispute_revise_confirm_and_errors_in_plain_words(e2e: Any) -> None:
    taxpayer, agent, sid = await call_between(e2e, "e2e dispute: my refund is missing")

    # A server refusal is shown, not swallowed: a text file is not a document (415).
    await deliver(agent, "notes.pdf", b"just text, not a PDF", "application/pdf")

    async def refused() -> Any:
        return await agent.evaluate("() => window.vtax.lastError && window.vtax.lastError.code")

    assert await e2e.poll_until(refused, what="unsupported_media_type") == "unsupported_media_type"
    assert (await e2e.error_text(agent)).strip()  # in words, by the code
    assert await agent.locator("#deliveries tbody tr").count() == 0
    # A real image goes through (its name gets the sniffed extension); left unacknowledged.
    await deliver(agent, "scan.pdf", PNG, "application/pdf")
    await wait_text(e2e, agent, "#deliveries tbody", "scan.png")
    assert await e2e.error_text(agent) == ""

    await hang_up(e2e, taxpayer, agent)
    await write_summary(agent, "Refund was sent on Monday.")
    await wait_text(e2e, agent, "#summary-saved", "version 1")

    # Dispute: a comment is needed; then the session is disputed.
    await wait_text(e2e, taxpayer, "#summary-view", "Refund was sent on Monday.")
    await taxpayer.click("#dispute-summary")
    assert "Please say what is wrong" in await e2e.error_text(taxpayer)
    await taxpayer.fill("#check-comment", "It never arrived; the bank says no transfer.")
    await taxpayer.click("#dispute-summary")
    await wait_attr(e2e, taxpayer, "#check-status", "data-check", "disputed")
    assert await e2e.error_text(taxpayer) == ""

    # The agent sees the dispute and revises the summary: the check reopens.
    await wait_attr(e2e, agent, "#summary-check", "data-check", "disputed")
    assert "the bank says no transfer" in await text_of(agent, "#summary-check")
    await agent.fill("#handled", "Refund was returned by the bank; re-sent to the new account.")
    await agent.click("#save-summary")
    await wait_text(e2e, agent, "#summary-saved", "version 2")
    await wait_text(e2e, taxpayer, "#summary-view", "re-sent to the new account")
    await wait_attr(e2e, taxpayer, "#check-status", "data-check", "pending")
    # A reload keeps the after-call step; the check then goes over REST (no socket yet).
    await taxpayer.reload()
    await taxpayer.wait_for_function("() => window.vtax && window.vtax.page === 'taxpayer'")
    await e2e.wait_state(taxpayer, "ended")
    await wait_text(e2e, taxpayer, "#summary-view", "re-sent to the new account")
    assert not await taxpayer.evaluate(
        "() => !!(window.vtax.socket && window.vtax.socket.connected)"
    )
    await taxpayer.click("#confirm-summary")
    await wait_attr(e2e, taxpayer, "#check-status", "data-check", "confirmed")
    await wait_attr(e2e, agent, "#summary-check", "data-check", "confirmed")

    # A confirmed summary can no longer be edited: the agent is told why.
    await agent.evaluate("() => { window.vtax.lastError = null; }")
    await agent.click("#save-summary")

    async def invalid_state() -> Any:
        return await agent.evaluate("() => window.vtax.lastError && window.vtax.lastError.code")

    assert await e2e.poll_until(invalid_state, what="invalid_state") == "invalid_state"
    assert (await e2e.error_text(agent)).strip()

    await taxpayer.check("#score-5")
    await taxpayer.click("#rate")
    await wait_text(e2e, taxpayer, "#rated", "Thank you")

    token = await asyncio.to_thread(e2e.server.supervisor_token)
    detail = await asyncio.to_thread(e2e.server.get_json, f"/api/review/sessions/{sid}", token)
    assert [c["decision"] for c in detail["checks"]] == ["disputed", "confirmed"]
    assert detail["session"]["summary"]["version"] == 2
    assert detail["session"]["loop"]["flag"]["reasons"] == ["disputed"]

    # Signing in again, the taxpayer is reminded of the document not yet acknowledged.
    again = await e2e.taxpayer_page()
    await wait_text(e2e, again, "#notice", "You have 1 document waiting")
    assert await again.evaluate("() => window.vtax.pendingDocuments") == 1

    # Supervisor: keyset pages of one row walk every session, newest first.
    everything = await asyncio.to_thread(e2e.server.get_json, "/api/sessions?limit=200", token)
    expected = [s["id"] for s in everything["sessions"]]
    supervisor = await e2e.page("/supervisor?page_size=1", "supervisor")
    await e2e.login(supervisor, *e2e.server.supervisor, "#sessions")
    await supervisor.uncheck("#auto-refresh")
    await apply_filters(e2e, supervisor)
    seen = []
    while True:
        seen += await supervisor.eval_on_selector_all(
            "#sessions tbody tr", "rs => rs.map(r => r.dataset.sessionId)"
        )
        if await supervisor.is_disabled("#next-page"):
            break
        await supervisor.click("#next-page")
        await wait_listed(e2e, supervisor)
    assert seen == expected
    if len(expected) > 1:  # this test alone made one session; the module makes more
        await supervisor.click("#first-page")
        await wait_text(e2e, supervisor, "#page-info", "Page 1 ")

    # A refused query is explained: the KPI range ends before it starts.
    await supervisor.fill("#k-from", "2030-01-02")
    await supervisor.fill("#k-to", "2030-01-01")
    await supervisor.click("#load-kpi")
    await wait_text(e2e, supervisor, "#error", "before")
    assert await supervisor.evaluate("() => window.vtax.lastError.code") == "kpiRange"
