"""The supervisor's review entry (/supervisor) in Chromium: the KPI charts by day, agent and
category; the live figures from the pushed `queue:stats` (one GET, no polling); the quality
form (a missing or out-of-range score refused by name, the live total, the review listed);
the knowledge-base editor as a form (items, two languages, alternatives, a link, validity),
a version conflict shown with the version that won (take theirs, or save mine over it),
export and import of the file; sign-in with the authenticator's code; every language;
a phone; keyboard; axe-core on each state. Screenshots with VTAX_SCREENSHOTS.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.request
from typing import Any

import pytest

from tests.e2e.test_review_loop import call_between, hang_up, wait_text, write_summary
from tests.e2e.test_taxpayer_entry import (
    LOCALES,
    NO_SIDEWAYS_SCROLL_JS,
    VISIBLE_TEXT_JS,
    assert_one_language,
)

pytestmark = pytest.mark.e2e

CHART_JS = "() => window.vtax.kpiCharts"


def put_json(e2e: Any, path: str, body: Any, token: str) -> Any:
    req = urllib.request.Request(
        e2e.server.base_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="PUT",
    )
    with urllib.request.urlopen(req, timeout=5) as res:
        return json.loads(res.read())


async def served_session(e2e: Any, question: str) -> tuple[Any, Any, str]:
    """A call answered, ended, summarised and rated 3: a session every KPI counts."""
    taxpayer, agent, sid = await call_between(e2e, question)
    await hang_up(e2e, taxpayer, agent)
    await write_summary(agent, "Explained where to file it.")
    await wait_text(e2e, agent, "#summary-saved", "Saved")
    await taxpayer.wait_for_selector("#rate-form", state="visible")
    await taxpayer.check("#score-3")
    await taxpayer.click("#rate")
    await wait_text(e2e, taxpayer, "#rated", "Thank you")
    return taxpayer, agent, sid


async def supervisor(e2e: Any, viewport: tuple[int, int] = (1280, 800), **kw: Any) -> Any:
    page = await e2e.page("/supervisor", "supervisor", viewport=viewport, **kw)
    await e2e.login(page, *e2e.server.supervisor, "#sessions")
    await e2e.wait_state(page, "loaded")  # the first page of the list is on screen
    return page


async def load_kpi(e2e: Any, page: Any, group_by: str) -> dict[str, Any]:
    await page.evaluate("() => { window.vtax.kpi = null; }")
    await page.select_option("#k-group-by", group_by)
    await page.click("#load-kpi")
    await page.wait_for_function("() => window.vtax.kpi !== null")
    return await page.evaluate("() => window.vtax.kpi")


async def test_kpi_charts_and_pushed_live_figures(e2e: Any) -> None:
    requests: list[str] = []
    _, _, sid = await served_session(e2e, "supervisor e2e: the KPI charts")
    page = await e2e.page("/supervisor", "supervisor", viewport=(1280, 800))
    page.on("request", lambda r: requests.append(r.url))
    await e2e.login(page, *e2e.server.supervisor, "#sessions")
    await page.wait_for_selector(f'#sessions tbody tr[data-session-id="{sid}"]')

    # By day (today, as the server cuts its days): three charts, their series are the report's.
    report = await load_kpi(e2e, page, "day")
    assert report["rows"] and report["total"]["answered"] >= 1 and report["total"]["ratings"] >= 1
    await page.wait_for_selector("#kpi-charts")
    assert await page.locator("#kpi-charts .kpi-chart canvas").count() == 3
    chart = await page.evaluate(CHART_JS)
    assert chart["keys"] == [r["key"] for r in report["rows"]]
    for r, sl, csat in zip(report["rows"], chart["serviceLevel"], chart["csat"], strict=True):
        assert sl == (None if r["service_level"] is None else round(r["service_level"] * 1000) / 10)
        assert csat == (None if r["csat"] is None else round(r["csat"] * 1000) / 10)
    # the days the form shows are the report's, and the zone they are cut in is named
    assert await page.input_value("#k-from") == report["from"]
    assert report["timezone"] in (await page.text_content("#kpi-range") or "")
    assert await page.locator("#kpi tfoot tr.total").count() == 1
    await e2e.axe(page, "supervisor KPIs by day")

    # By agent: one bar per officer, named for people.
    report = await load_kpi(e2e, page, "agent")
    chart = await page.evaluate(CHART_JS)
    agent_name = await page.evaluate(
        "(u) => window.vtax.st.agents.find(a => a.username === u).display_name",
        e2e.server.agent[0],
    )
    assert agent_name in chart["labels"]
    assert len(chart["labels"]) == len(report["rows"])
    # By category: the catalog's names in the page language, not codes.
    report = await load_kpi(e2e, page, "category")
    chart = await page.evaluate(CHART_JS)
    codes = [r["key"] for r in report["rows"]]
    assert e2e.server.categories[0] in codes
    assert e2e.server.categories[0] not in chart["labels"]
    assert all(label and label == label.strip() for label in chart["labels"])
    await e2e.axe(page, "supervisor KPIs by category")
    await e2e.screenshot(page, "supervisor-kpi-1280x800")

    # Live figures: the first paint, then pushes only (no polling).
    await page.wait_for_function("() => window.vtax.statsPushed >= 2", timeout=20000)
    assert await page.locator("#live-stats tbody tr").count() >= 1
    polled = [u for u in requests if "/api/stats/live" in u]
    assert len(polled) == 1, f"one GET for the first paint, then pushes only: {polled}"


async def test_quality_form_and_keyboard(e2e: Any) -> None:
    _, _, sid = await served_session(e2e, "supervisor e2e: the quality form")
    page = await supervisor(e2e)
    row = page.locator(f'#sessions tbody tr[data-session-id="{sid}"]')
    await row.wait_for()
    # Keyboard only: focus the row's button, Enter opens the detail with focus on its title.
    await row.locator("button.open").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#detail-card", state="visible")
    await page.wait_for_function(
        "() => document.activeElement && document.activeElement.id === 'detail-title'"
    )
    assert await page.text_content("#detail-id") == sid
    states = await page.eval_on_selector_all(
        "#detail-loop li", "ls => ls.map(l => [l.dataset.step, l.dataset.state])"
    )
    step = dict(states)
    assert list(step) == ["ask", "handle", "check", "evaluate", "deliver"]
    # summarised and rated, not yet checked by the taxpayer, nothing delivered
    assert (step["ask"], step["handle"], step["evaluate"]) == ("done", "done", "done"), states
    assert step["check"] != "done" and step["deliver"] == "todo", states
    assert "3 / 5" in (await page.text_content("#detail-rating") or "")
    await e2e.axe(page, "supervisor session detail")

    items = await page.evaluate("() => window.vtax.st.qualityForm.items")
    # One score missing: refused, naming the item; nothing stored.
    for it in items[1:]:
        await page.fill(f"#q-{it['code']}", str(it["max"]))
    total = sum(it["max"] for it in items[1:])
    await wait_text(e2e, page, "#quality-total", f"Total: {total} of ")
    await page.click("#submit-quality")
    assert await page.evaluate("() => window.vtax.lastError.code") == "qualityScore"
    assert "Greeting and identity check" in await e2e.error_text(page)
    # Out of range: refused too.
    await page.fill(f"#q-{items[0]['code']}", str(items[0]["max"] + 1))
    await page.evaluate("() => { window.vtax.lastError = null; }")
    await page.click("#submit-quality")
    await page.wait_for_function(
        "() => window.vtax.lastError && window.vtax.lastError.code === 'qualityScore'"
    )
    assert "No quality review yet" in (await page.text_content("#detail-quality-reviews") or "")
    await e2e.axe(page, "supervisor quality form refused")
    # Every item scored: the review is listed with its total and the reviewer.
    await page.fill(f"#q-{items[0]['code']}", "7")
    await page.fill("#quality-comment", "kind and exact")
    total += 7
    await wait_text(e2e, page, "#quality-total", f"Total: {total} of ")
    await page.click("#submit-quality")
    await wait_text(e2e, page, "#detail-quality-reviews", f"{total} / ")
    assert "kind and exact" in (await page.text_content("#detail-quality-reviews") or "")
    assert await e2e.error_text(page) == ""
    assert await page.input_value(f"#q-{items[0]['code']}") == "", "the form is empty again"
    kinds = await page.eval_on_selector_all("#audit tbody tr", "rs => rs.map(r => r.dataset.kind)")
    assert "quality_reviewed" in kinds
    await e2e.screenshot(page, "supervisor-detail-1280x800")
    # Escape hatch for the keyboard: Close returns focus to the row's button.
    await page.click("#close-detail")
    await page.wait_for_function(
        "() => document.activeElement && document.activeElement.classList.contains('open')"
    )


async def test_kb_editor_form_conflict_export_and_import(e2e: Any, tmp_path: Any) -> None:
    page = await supervisor(e2e)
    token = await asyncio.to_thread(e2e.server.supervisor_token)
    key = f"e2e-form-{secrets.token_hex(3)}"
    await page.click("#kb-new")
    await page.wait_for_selector("#kb-editor", state="visible")
    assert await page.evaluate("() => document.activeElement.id") == "kb-key"
    await page.fill("#kb-key", key)
    await page.select_option("#kb-entry-category", "invoices")
    first_item = await page.get_attribute("#kb-items input[type=checkbox] >> nth=0", "data-item")
    await page.check("#kb-items input[type=checkbox] >> nth=0")
    await page.fill("#kb-valid-from", "2030-01-01")
    await page.fill("#kb-valid-until", "2030-12-31")
    await page.click("#kb-lang-en")
    await page.fill("#kb-question-en", "How do I void an e-invoice issued by mistake?")
    await page.fill("#kb-alternatives-en", "cancel an invoice\n\nvoid a fapiao ")
    await page.fill("#kb-answer-en", "Issue a red-letter invoice for it in the e-tax bureau.")
    await page.click("#kb-add-link")
    await page.fill("#kb-link-title-0", "Red-letter invoices")
    await page.fill("#kb-link-url-0", "https://example.org/red-letter")
    # Every entry has zh-CN (the server's rule): refused before anything is sent.
    await page.click("#kb-save")
    assert await page.evaluate("() => window.vtax.lastError.code") == "kbNeedZhCN"
    assert "Simplified Chinese" in await e2e.error_text(page)
    await page.click("#kb-lang-zh-CN")
    await page.fill("#kb-question-zh-CN", "开错的电子发票怎么作废")
    await page.fill("#kb-answer-zh-CN", "在电子税务局开具红字发票。")
    # A language with a question but no answer is refused by name, nothing sent.
    await page.click("#kb-lang-pt")
    await page.fill("#kb-question-pt", "Como anulo uma fatura?")
    await page.click("#kb-save")
    assert await page.evaluate("() => window.vtax.lastError.code") == "kbNeedQuestionAnswer"
    assert "Portuguese" in await e2e.error_text(page)
    await page.fill("#kb-answer-pt", "Emita uma fatura de estorno no portal fiscal.")
    assert await page.get_attribute("#kb-lang-en", "data-filled") == "true"
    assert await page.get_attribute("#kb-lang-zh-HK", "data-filled") == "false"
    await e2e.axe(page, "supervisor KB editor")
    await page.click("#kb-save")
    await page.wait_for_selector(f"#kb-saved:has-text('{key}')")
    stored = await asyncio.to_thread(e2e.server.get_json, f"/api/kb/entries/{key}", token)
    assert stored["version"] == 1 and stored["category"] == "invoices"
    assert stored["items"] == [first_item]
    assert (stored["valid_from"], stored["valid_until"]) == ("2030-01-01", "2030-12-31")
    en = stored["texts"]["en"]
    assert en["alternatives"] == ["cancel an invoice", "void a fapiao"]
    assert en["links"] == [
        {"title": "Red-letter invoices", "url": "https://example.org/red-letter"}
    ]
    assert set(stored["texts"]) == {"zh-CN", "en", "pt"}
    await page.click("#kb-history-load")
    await page.wait_for_selector("#kb-history li[data-change='created']")

    # Someone else saves version 2 while the form is open: my save is refused, the conflict
    # names the version that won, and what I typed is still in the form.
    theirs = {
        k: stored[k] for k in ("key", "category", "items", "texts", "valid_from", "valid_until")
    }
    theirs["texts"] = {**stored["texts"], "en": {**en, "question": "THEIR question about voiding"}}
    await asyncio.to_thread(
        put_json, e2e, f"/api/kb/entries/{key}", {"expected_version": 1, "entry": theirs}, token
    )
    await page.click("#kb-lang-en")
    await page.fill("#kb-answer-en", "MY better answer: a red-letter invoice, then a new one.")
    await page.click("#kb-save")
    await page.wait_for_selector("#kb-conflict", state="visible")
    assert await page.evaluate("() => window.vtax.lastError.code") == "kb_version_conflict"
    conflict = await page.text_content("#kb-conflict") or ""
    assert "Version 2" in conflict and "THEIR question" in conflict
    assert (
        await page.input_value("#kb-answer-en")
        == "MY better answer: a red-letter invoice, then a new one."
    )
    await e2e.axe(page, "supervisor KB conflict")
    await e2e.screenshot(page, "supervisor-kb-conflict-1280x800")
    # Take theirs: the form shows version 2.
    await page.click("#kb-take-theirs")
    await page.wait_for_selector("#kb-conflict", state="detached")
    assert await page.input_value("#kb-question-en") == "THEIR question about voiding"
    assert "version 2" in (await page.text_content("#kb-editing") or "")
    # Another conflict, and this time mine is saved over theirs (version 4).
    await asyncio.to_thread(
        put_json,
        e2e,
        f"/api/kb/entries/{key}",
        {"expected_version": 2, "entry": theirs | {"valid_until": None}},
        token,
    )
    await page.fill("#kb-answer-en", "MY final answer.")
    await page.click("#kb-save")
    await page.wait_for_selector("#kb-conflict", state="visible")
    await page.click("#kb-overwrite")
    await page.wait_for_selector("#kb-saved:has-text('version 4')")
    stored = await asyncio.to_thread(e2e.server.get_json, f"/api/kb/entries/{key}", token)
    assert stored["version"] == 4 and stored["texts"]["en"]["answer"] == "MY final answer."

    # Export: the whole base as the file, with the entry in it.
    async with page.expect_download() as dl:
        await page.click("#kb-export")
    exported = await dl.value
    assert exported.suggested_filename == "vtax-kb.json"
    path = tmp_path / "kb.json"
    await exported.save_as(path)
    text = path.read_text(encoding="utf-8")
    assert key in text and "MY final answer." in text
    # Import: a broken file lists its problems; the exported file checks clean (dry run).
    bad = tmp_path / "bad.json"
    bad.write_text('{"entries": [{"key": "Bad Key!"}]}', encoding="utf-8")
    await page.set_input_files("#kb-file", str(bad))
    await page.click("#kb-check")
    await page.wait_for_selector("#kb-import-result li")
    assert "problem" in (await page.text_content("#kb-import-result") or "")
    await page.set_input_files("#kb-file", str(path))
    await page.click("#kb-check")
    await wait_text(e2e, page, "#kb-import-result", "Checked, nothing changed")
    assert await e2e.error_text(page) == ""

    # The list finds it; Edit opens it at its version.
    await page.click("#kb-load")
    await page.fill("#kb-search", key)
    await page.locator(f'#kb-entries tr[data-key="{key}"] button.kb-edit').click()
    assert "version 4" in (await page.text_content("#kb-editing") or "")


async def test_sign_in_with_the_authenticator_code(e2e: Any) -> None:
    name, password, totp = await e2e.server.staff_with_authenticator("supervisor")
    page = await e2e.page("/supervisor", "supervisor", viewport=(1280, 800))
    await e2e.login_with_code(
        page,
        name,
        password,
        totp,
        "#sessions",
        axe="supervisor sign-in, the code asked",
        wrong_code_first=True,
    )
    assert name in (await page.text_content("#status") or "")


async def test_an_agent_is_refused(e2e: Any) -> None:
    page = await e2e.page("/supervisor", "supervisor")
    await page.fill("#username", e2e.server.agent[0])
    await page.fill("#password", e2e.server.agent[1])
    await page.click("#login")
    await page.wait_for_function(
        "() => window.vtax.lastError && window.vtax.lastError.code === 'forbidden'"
    )
    assert "supervisors" in await e2e.error_text(page)
    assert not await page.is_visible("#sessions")


@pytest.mark.parametrize("browser_locale", list(LOCALES))
async def test_each_language(e2e: Any, browser_locale: str) -> None:
    lang = LOCALES[browser_locale]
    page = await e2e.page("/supervisor", "supervisor", locale=browser_locale, viewport=(1280, 800))
    assert await page.evaluate("() => document.documentElement.lang") == lang
    assert_one_language(await page.evaluate(VISIBLE_TEXT_JS), lang)
    await e2e.axe(page, f"supervisor sign-in ({lang})")
    await e2e.login(page, *e2e.server.supervisor, "#sessions")
    await e2e.wait_state(page, "loaded")  # the first page of the list is on screen
    await page.click("#load-kpi")
    await page.wait_for_function("() => !!window.vtax.kpi")
    assert_one_language(await page.evaluate(VISIBLE_TEXT_JS), lang)
    await e2e.axe(page, f"supervisor signed in ({lang})")
    if lang == "zh-CN":
        await e2e.screenshot(page, "supervisor-zh-CN-1280x800")


async def test_a_phone(e2e: Any) -> None:
    page = await supervisor(e2e, viewport=(390, 844))
    await page.click("#load-kpi")
    await page.wait_for_function("() => !!window.vtax.kpi")
    assert await page.evaluate(NO_SIDEWAYS_SCROLL_JS), "no sideways scrolling on a phone"
    first = page.locator("#sessions tbody tr button.open").first
    if await first.count():
        await first.click()
        await page.wait_for_selector("#detail-card", state="visible")
        assert await page.evaluate(NO_SIDEWAYS_SCROLL_JS)
    await e2e.axe(page, "supervisor on a phone")
    await e2e.screenshot(page, "supervisor-390x844")
