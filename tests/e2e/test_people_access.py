"""The supervisor's account card (/supervisor, web/src/supervisor/PeoplePanel.vue) in Chromium:
a taxpayer found by document, disabled with a reason (their sign-in then sends no code),
enabled again; an unknown document and a missing reason answered on the card; axe-core. And
from a live session's detail: disabled mid-call, the taxpayer page's socket is cut."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.e2e.test_review_loop import call_between
from tests.signin import derived_resident_id, person_for

pytestmark = pytest.mark.e2e

PERSON = person_for(derived_resident_id("e2e:a"), "resident_id")


async def code_request(e2e: Any, page: Any) -> int:
    """Ask for a sign-in code for the person from the page's origin; the status."""
    return int(
        await page.evaluate(
            """async (phone) => (await fetch('/api/auth/sms/code', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({phone})})).status""",
            PERSON.phone,
        )
    )


async def test_a_supervisor_disables_and_enables_a_taxpayer(e2e: Any) -> None:
    # the person signs in once (their taxpayer page), so they have a session to lose
    taxpayer = await e2e.page("/taxpayer", "taxpayer")
    await e2e.sign_in(taxpayer, PERSON.document, "resident_id")
    person_id = await taxpayer.evaluate("() => window.vtax.taxpayerId")
    assert person_id

    page = await e2e.page("/supervisor", "supervisor", viewport=(1280, 900))
    await e2e.login(page, *e2e.server.supervisor, "#sessions")
    await page.click("a[href='#people-card']")

    # an unknown document: said on the card
    await page.select_option("#person-doc-type", "resident_id")
    await page.fill("#person-doc", derived_resident_id("nobody at all"))
    await page.click("#person-find-button")
    await page.wait_for_function(
        "() => document.querySelector('#person-error').textContent.includes('not in the registry')"
    )
    assert await page.locator("#person").count() == 0

    await page.fill("#person-doc", PERSON.document.lower())  # the check letter in any case
    await page.click("#person-find-button")
    await page.wait_for_selector(f"#person[data-person-id='{person_id}']")
    assert (await page.text_content("#person-error")).strip() == ""
    assert await page.text_content("#person-state") == "Enabled"
    assert await page.text_content("#person-change") == "Never disabled"
    assert PERSON.document not in ((await page.text_content("#person")) or "")  # masked
    await e2e.axe(page, "the account card, enabled")

    # a reason is required: refused on the card, in the page's language, nothing sent
    assert await page.text_content("#person-toggle") == "Disable account"
    await page.click("#person-toggle")
    await page.wait_for_function(
        "() => document.querySelector('#person-error').textContent === 'Give a reason.'"
    )
    assert await page.get_attribute("#person", "data-disabled") == "false"
    await page.fill("#person-reason", "identity theft reported at the Lecong office")
    await page.click("#person-toggle")
    await page.wait_for_selector("#person[data-disabled='true']")
    assert await page.text_content("#person-state") == "Disabled"
    change = await page.text_content("#person-change") or ""
    assert change.startswith("Disabled, ") and "identity theft reported" in change, change
    assert "Sup1" in change or "sup1" in change, change  # the supervisor who did it
    assert "disabled" in ((await page.text_content("#person-done")) or "")
    assert await page.text_content("#person-toggle") == "Enable again"
    await e2e.axe(page, "the account card, disabled")

    # the person asks for a code: the same answer as ever, but no code is sent
    before = len(e2e.server.sms_texts(PERSON.phone))
    assert await code_request(e2e, taxpayer) == 200
    await asyncio.sleep(1.0)  # the log sender writes within milliseconds when it sends
    assert len(e2e.server.sms_texts(PERSON.phone)) == before

    await page.fill("#person-reason", "identity checked in person")
    await page.click("#person-toggle")
    await page.wait_for_selector("#person[data-disabled='false']")
    assert (await page.text_content("#person-change") or "").startswith("Enabled, ")
    assert await code_request(e2e, taxpayer) == 200

    async def sent() -> bool:
        return len(e2e.server.sms_texts(PERSON.phone)) > before

    await e2e.poll_until(sent, what="a sign-in code once enabled again")

    # the account's audit trail, newest first: enabled, disabled (with their reasons), the
    # lookup that found it; the card's own reads are in it too
    await page.click("#person-history-show")
    await page.wait_for_selector("#person-history-rows tbody tr")
    kinds = await page.eval_on_selector_all(
        "#person-history-rows tbody tr", "rows => rows.map(r => r.dataset.kind)"
    )
    changes = [k for k in kinds if k in ("person_enabled", "person_disabled")]
    assert changes == ["person_enabled", "person_disabled"], kinds
    assert "person_looked_up" in kinds, kinds
    first = await page.inner_text("#person-history-rows tbody tr:first-child")
    assert "Account enabled" in first and "identity checked in person" in first, first
    assert "Sup1" in first or "sup1" in first, first
    await e2e.axe(page, "the account's audit trail")
    await e2e.screenshot(page, "supervisor-people-history", "#people-card")


async def test_disabled_mid_call_from_the_session_detail(e2e: Any) -> None:
    """From a live session's detail (*Manage account* beside its taxpayer): disabling the
    taxpayer cuts their page's socket in the middle of the call, and it cannot reconnect."""
    taxpayer, agent, sid = await call_between(e2e, "people e2e: disabled mid-call")
    person_id = await taxpayer.evaluate("() => window.vtax.taxpayerId")
    assert await taxpayer.evaluate("() => window.vtax.socket.connected") is True

    page = await e2e.page("/supervisor", "supervisor", viewport=(1280, 900))
    await e2e.login(page, *e2e.server.supervisor, "#sessions")
    await page.click(f"#sessions tr[data-session-id='{sid}'] button.open")
    await page.wait_for_selector("#detail-card")
    await page.click("#manage-person")
    await page.wait_for_selector(f"#person[data-person-id='{person_id}']")
    assert await page.evaluate("() => document.activeElement.id") == "h-people"
    await page.fill("#person-reason", "the caller is not the account holder")
    await page.click("#person-toggle")
    await page.wait_for_selector("#person[data-disabled='true']")

    async def cut() -> bool:
        return await taxpayer.evaluate("() => window.vtax.socket.connected") is False

    await e2e.poll_until(cut, what="the disabled taxpayer's socket cut")
    await asyncio.sleep(3.0)  # the client's reconnection attempts are refused meanwhile
    assert await taxpayer.evaluate("() => window.vtax.socket.connected") is False
    assert await agent.evaluate("() => window.vtax.socket.connected") is True

    await page.fill("#person-reason", "checked: it was the holder")  # as the module found it
    await page.click("#person-toggle")
    await page.wait_for_selector("#person[data-disabled='false']")
