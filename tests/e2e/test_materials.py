"""Materials in real headless Chromium against the real server: during a call the taxpayer
sends a PDF and a still from Chromium's fake camera; the agent sees both at once, opens them,
accepts one and asks for the other again with a reason; the taxpayer sees both outcomes and
the reason; a reload of either page brings the list back from REST. On a phone (390x844) the
photo comes from a camera opened with `facingMode: environment`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.test_resume import finish, start_call
from tests.review.helpers import PDF

pytestmark = pytest.mark.e2e

ITEMS_JS = "() => (window.vtax.materials || []).map(m => [m.state, m.source, m.reason])"
REASON = "The photo is too dark. Please take it again near a window."


def rows(page: Any, selector: str) -> Any:
    return page.locator(f"{selector} [data-material-id]")


async def wait_states(e2e: Any, page: Any, want: list[Any], what: str) -> None:
    async def check() -> bool:
        return await page.evaluate(ITEMS_JS) == want

    try:
        await e2e.poll_until(check, within=15, what=what)
    except AssertionError:
        raise AssertionError(f"{what}: {await page.evaluate(ITEMS_JS)}") from None


async def test_file_and_camera_still_accepted_and_asked_again(e2e: Any, tmp_path: Any) -> None:
    taxpayer, agent, sid = await start_call(e2e, "I will show you my documents")
    await taxpayer.wait_for_selector("#materials-card", state="visible")
    await agent.wait_for_selector("#materials-agent-card", state="visible")
    assert await taxpayer.is_visible("#materials-empty")

    # a file
    pdf = tmp_path / "tax-notice.pdf"
    pdf.write_bytes(PDF)
    await taxpayer.set_input_files("#material-file", str(pdf))
    await taxpayer.click("#material-send")
    await taxpayer.wait_for_selector("#material-sent:has-text('Sent')")
    # a still of the call's own (fake) camera, previewed before it is sent
    await taxpayer.click("#material-photo")
    await taxpayer.wait_for_selector("#material-still", state="visible")
    width = await taxpayer.evaluate("() => document.querySelector('#material-still').naturalWidth")
    assert width > 0
    await taxpayer.click("#material-send-photo")
    await wait_states(
        e2e, taxpayer, [["submitted", "file", None], ["submitted", "camera", None]], "sent"
    )

    # the agent hears of both at once (no reload, no poll)
    await wait_states(
        e2e, agent, [["submitted", "file", None], ["submitted", "camera", None]], "agent list"
    )
    assert await agent.locator("#materials-agent .badge--new").count() == 2
    await e2e.axe(agent, "agent desk with materials")
    await e2e.axe(taxpayer, "taxpayer call with materials")
    await e2e.screenshot(agent, "materials-agent-1280x800")
    await e2e.screenshot(taxpayer, "materials-taxpayer-1280x800")

    file_row = rows(agent, "#materials-agent").nth(0)
    photo_row = rows(agent, "#materials-agent").nth(1)
    # open the photo: it is shown, its hash checked
    await photo_row.locator(".material-open").click()
    await agent.wait_for_selector("#material-view-image", state="visible")
    assert (
        await agent.evaluate("() => document.querySelector('#material-view-image').naturalWidth")
        == width
    )
    await file_row.locator(".material-open").click()
    await agent.wait_for_selector("#material-view-pdf", state="visible")

    # accept the file; ask again for the photo with a reason (the button waits for one)
    await file_row.locator(".material-accept").click()
    await photo_row.locator(".material-reject").click()
    assert await agent.is_disabled("#material-reject-send")
    await agent.fill("#material-reason", REASON)
    await agent.click("#material-reject-send")
    want: list[list[Any]] = [["accepted", "file", None], ["rejected", "camera", REASON]]
    await wait_states(e2e, agent, want, "agent decided")

    # the taxpayer sees both outcomes and the reason, in plain words
    await wait_states(e2e, taxpayer, want, "taxpayer told")
    photo_item = rows(taxpayer, "#materials").nth(1)
    assert "Please send it again" in (await photo_item.text_content() or "")
    assert REASON in (await photo_item.locator(".material-reason").text_content() or "")
    assert "Accepted" in (await rows(taxpayer, "#materials").nth(0).text_content() or "")
    await e2e.screenshot(taxpayer, "materials-taxpayer-outcomes-1280x800")

    # the taxpayer takes the photo again: a new item that replaces the rejected one
    await photo_item.locator(".send-again-photo").click()
    await taxpayer.wait_for_selector("#material-still", state="visible")
    assert await taxpayer.is_visible("#material-replacing")
    await taxpayer.click("#material-send-photo")
    await wait_states(e2e, agent, [*want, ["submitted", "camera", None]], "replacement")
    assert await rows(agent, "#materials-agent").nth(2).locator(".hint").count() == 2

    # a reload of either page brings the list back from REST
    for page, name in ((taxpayer, "taxpayer"), (agent, "agent")):
        await page.reload()
        await page.wait_for_function("() => window.vtax && window.vtax.page")
        await wait_states(
            e2e, page, [*want, ["submitted", "camera", None]], f"{name} after a reload"
        )

    # the supervisor reads the session's materials over REST
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    path = f"/api/sessions/{sid}/materials"
    listed = await asyncio.to_thread(e2e.server.get_json, path, token)
    assert [m["state"] for m in listed["materials"]] == ["accepted", "rejected", "submitted"]
    assert listed["materials"][2]["replaces"] == listed["materials"][1]["id"]

    # after the call the taxpayer still sees the list, with nothing to send
    await finish(e2e, taxpayer, agent, taxpayer, sid, token)
    await wait_states(e2e, taxpayer, [*want, ["submitted", "camera", None]], "after the call")
    assert not await taxpayer.is_visible("#material-file")

    # the supervisor's session detail lists them with their states and hashes
    supervisor = await e2e.supervisor_page()
    srow = supervisor.locator(f'#sessions tbody tr[data-session-id="{sid}"]')
    await srow.locator("button.open").click()
    await supervisor.wait_for_selector("#detail-card", state="visible")
    mrows = supervisor.locator("#detail-materials tbody tr")
    await e2e.poll_until(
        lambda: mrows.count(), within=10, what="the materials in the supervisor's detail"
    )
    assert await mrows.count() == 3
    assert [
        await mrows.nth(i).locator(".status").get_attribute("data-state") for i in range(3)
    ] == [
        "accepted",
        "rejected",
        "submitted",
    ]
    assert REASON in (await mrows.nth(1).text_content() or "")


async def test_a_phone_takes_the_photo_with_the_rear_camera(e2e: Any) -> None:
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    taxpayer = await e2e.page("/taxpayer", "taxpayer", viewport=(390, 844))
    await taxpayer.evaluate(
        """() => {
          const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
          window.vtaxAsked = [];
          navigator.mediaDevices.getUserMedia = (c) => { window.vtaxAsked.push(c); return real(c); };
        }"""
    )
    await e2e.sign_in(taxpayer)
    await taxpayer.wait_for_selector("#step-request", state="visible")
    await taxpayer.select_option("#category", e2e.server.categories[0])
    await taxpayer.select_option("#language", "en")
    await taxpayer.select_option("#channel", "mobile")
    await taxpayer.fill("#question", "a photo from my phone")
    await taxpayer.click("#start")
    await agent.wait_for_selector("#accept", state="visible")
    await agent.click("#accept")
    await taxpayer.wait_for_selector("#materials-card", state="visible")

    await taxpayer.click("#material-photo")
    await taxpayer.wait_for_selector("#material-snap", state="visible")

    async def playing() -> bool:
        return bool(
            await taxpayer.evaluate("() => document.querySelector('#material-preview').videoWidth")
        )

    await e2e.poll_until(playing, within=10, what="the rear camera's preview")
    asked = await taxpayer.evaluate(
        "() => window.vtaxAsked.map(c => c.video && c.video.facingMode)"
    )
    assert {"ideal": "environment"} in asked
    await taxpayer.click("#material-snap")
    await taxpayer.wait_for_selector("#material-still", state="visible")
    await taxpayer.click("#material-send-photo")
    await wait_states(e2e, agent, [["submitted", "camera", None]], "phone photo at the agent")
    # the rear camera is closed again once the photo is taken
    live = await taxpayer.evaluate(
        "() => { const v = document.querySelector('#material-preview');"
        " return v.srcObject ? v.srcObject.getTracks().filter(t => t.readyState === 'live').length : 0; }"
    )
    assert live == 0
    # and the call's own media still flows both ways
    await e2e.wait_media_flowing(taxpayer, agent)
    await e2e.axe(taxpayer, "phone call with materials")
    await e2e.screenshot(taxpayer, "materials-taxpayer-390x844")
