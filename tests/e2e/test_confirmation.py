"""The confirmation form (业务办理服务确认单) in real headless Chromium against the real server:
during the call the agent composes the form (items from the catalog, typed values, the
materials each needs), a bad value is shown next to its field, the taxpayer sees the form at
once, a reload of either page mid-call brings the form back, the taxpayer confirms, and the
agent's handle step (the summary) shows the confirmed version it recorded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_resume import start_call, wait_connected

pytestmark = pytest.mark.e2e

VAT = "declaration_payment.vat_return"
INVOICES = "invoices.invoice_collection"


async def add_item(agent: Any, code: str) -> None:
    await agent.select_option("#cf-choose", code)
    await agent.click("#cf-add")
    await agent.wait_for_selector(f'fieldset[data-item="{code}"]')


async def wait_attr(e2e: Any, page: Any, selector: str, attr: str, value: str) -> None:
    async def check() -> bool:
        got = await page.evaluate(
            "([s, a]) => { const el = document.querySelector(s); return el && el.getAttribute(a); }",
            [selector, attr],
        )
        return got == value

    await e2e.poll_until(check, within=15, what=f"{selector}[{attr}={value!r}] on {page.url}")


async def test_agent_composes_taxpayer_confirms_handle_step_records_it(e2e: Any) -> None:
    taxpayer, agent, sid = await start_call(e2e, "I need to file my VAT and get invoices")
    await agent.wait_for_selector("#confirmation-editor", state="visible")
    assert await taxpayer.query_selector("#confirmation-view") is None  # nothing sent yet

    # The agent composes: two items, typed values, an out-of-range quantity first.
    await add_item(agent, VAT)
    await add_item(agent, INVOICES)
    await agent.fill("#cf-0-tax_period", "2026-11")
    await agent.fill("#cf-0-taxable_amount", "120000")
    await agent.fill("#cf-0-tax_due", "15600.5")  # sent with its 2 places: "15600.50"
    await agent.select_option("#cf-1-invoice_kind", "vat_special")
    await agent.fill("#cf-1-quantity", "5000")
    requirements = await agent.eval_on_selector_all(
        f'fieldset[data-item="{VAT}"] .cf-material', "els => els.map(e => e.dataset.requirement)"
    )
    assert requirements == ["vat_return_form", "invoice_list", "handler_id"]
    await agent.fill("#cf-note", "Please check the amounts")
    await agent.click("#cf-propose")
    await agent.wait_for_selector("#cf-1-quantity-problem", state="visible")
    assert "1..1000" in (await agent.text_content("#cf-1-quantity-problem") or "")
    assert await agent.get_attribute("#cf-1-quantity", "aria-invalid") == "true"
    assert await taxpayer.query_selector("#confirmation-view") is None  # refused: nothing sent
    await agent.fill("#cf-1-quantity", "25")
    await agent.click("#cf-propose")
    await wait_attr(e2e, agent, "#confirmation-editor", "data-version", "1")

    # The taxpayer sees it live, in large text, with what each item needs.
    await taxpayer.wait_for_selector("#confirmation-view", state="visible")
    await wait_attr(e2e, taxpayer, "#confirmation-view", "data-state", "proposed")
    view = await taxpayer.text_content("#confirmation-view") or ""
    assert "VAT return" in view and "Invoice collection" in view
    assert "15,600.50" in view and "2026-11" in view and "Special VAT invoice" in view
    assert "VAT return form" in view and "Please check the amounts" in view
    size = await taxpayer.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#cf-confirm')).fontSize)"
    )
    assert size >= 20  # large, readable buttons
    await e2e.screenshot(taxpayer, "confirmation-taxpayer-1280")
    await e2e.screenshot(agent, "confirmation-agent-1280")
    await e2e.axe(taxpayer, "the taxpayer's confirmation form")
    await e2e.axe(agent, "the agent's confirmation editor")

    # A reload mid-call on either side brings the form back (and the call).
    await taxpayer.reload()
    await wait_connected(e2e, taxpayer, agent)
    await wait_attr(e2e, taxpayer, "#confirmation-view", "data-version", "1")
    await agent.reload()
    await wait_connected(e2e, taxpayer, agent)
    await wait_attr(e2e, agent, "#confirmation-editor", "data-version", "1")
    # the agent's draft starts again from the version sent
    assert await agent.input_value("#cf-0-tax_period") == "2026-11"
    assert await agent.input_value("#cf-1-quantity") == "25"

    # On a phone-sized screen the form still reads and works.
    await taxpayer.set_viewport_size({"width": 390, "height": 844})
    await e2e.screenshot(taxpayer, "confirmation-taxpayer-390")
    width = await taxpayer.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px ({width})"

    # The taxpayer confirms; the agent hears of it at once.
    await taxpayer.click("#cf-confirm")
    await wait_attr(e2e, taxpayer, "#confirmation-view", "data-state", "confirmed")
    assert "You confirmed it" in (await taxpayer.text_content("#cf-decided") or "")
    await wait_attr(e2e, agent, "#confirmation-editor", "data-state", "confirmed")
    assert "confirmed version 1" in (await agent.text_content("#confirmation-state") or "")
    assert await taxpayer.query_selector("#cf-confirm") is None  # a decided version is final

    # The call ends; the agent's summary (the handle step) records the confirmed version.
    await taxpayer.click("#hangup")
    await e2e.wait_state(agent, "ended")
    await agent.wait_for_selector("#summary-card", state="visible")
    await agent.fill("#handled", "VAT return filed, 25 invoices issued")
    await agent.select_option("#result", "resolved")
    await agent.click("#save-summary")
    await agent.wait_for_function(
        "() => document.getElementById('summary-saved').textContent.includes('Saved')"
    )
    assert await e2e.error_text(agent) == ""
    await wait_attr(e2e, agent, "#summary-form-record", "data-recorded-state", "confirmed")
    record = await agent.text_content("#summary-form-record") or ""
    assert "Recorded: version 1, Confirmed" in record and "confirmed by the taxpayer" in record
    # the taxpayer's page after the call shows the same record and the versions
    await taxpayer.wait_for_selector(".cf-record", state="visible")
    await wait_attr(e2e, taxpayer, ".cf-record", "data-recorded-version", "1")
    await e2e.screenshot(agent, "confirmation-agent-summary")

    # The supervisor's whole loop shows the recorded form and every version.
    supervisor = await e2e.supervisor_page()
    row = supervisor.locator(f'#sessions tbody tr[data-session-id="{sid}"]')
    await row.locator("button.open").click()
    await supervisor.wait_for_selector("#detail-card", state="visible")
    await supervisor.wait_for_selector('#detail-form-versions tbody tr[data-version="1"]')
    recorded = await supervisor.text_content("#detail-form-recorded") or ""
    assert "version 1" in recorded and "Confirmed" in recorded
    assert await supervisor.get_attribute("#detail-form-recorded", "data-state") == "confirmed"
    versions = await supervisor.text_content("#detail-form-versions") or ""
    assert "tax_due 15600.50" in versions and "quantity 25" in versions
    await e2e.screenshot(supervisor, "confirmation-supervisor")
