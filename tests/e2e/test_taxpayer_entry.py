"""The taxpayer entry (web/src/taxpayer) in Chromium: every language, the switcher, a phone
width, and axe-core on each state the tests reach (identity, question, queue, call, after).

With VTAX_SCREENSHOTS=docs/screenshots the states are saved at 1280x800 and 390x844.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_browser_loop import accept_offer, start_request, wait_connected

pytestmark = pytest.mark.e2e

LOCALES = {"zh-CN": "zh-CN", "zh-HK": "zh-HK", "en-US": "en", "pt-PT": "pt"}
# A message key printed instead of its text (vue-i18n shows the key when it is missing).
KEY_LIKE = re.compile(
    r"\b(?:app|options|status|identity|request|queue|call|recording|after|scores|dimensions"
    r"|summaryFacts|labels|documents|history|catalog|units|errors|assistant|booking|review|kbEdit)\.[A-Za-z_]+"
)
HAN = re.compile(r"[\u4e00-\u9fff]")
VISIBLE_TEXT_JS = "() => document.body.innerText"
NO_SIDEWAYS_SCROLL_JS = "() => document.documentElement.scrollWidth <= window.innerWidth + 1"


async def sign_in(page: Any, e2e: Any) -> None:
    await e2e.sign_in(page)
    await page.wait_for_selector("#step-request", state="visible")


def assert_one_language(text: str, lang: str) -> None:
    assert not KEY_LIKE.search(text), f"{lang}: a message key is shown: {KEY_LIKE.search(text)}"
    if lang in ("en", "pt"):
        # The language switcher names each language in itself; nothing else is Chinese.
        rest = text.replace("简体中文", "").replace("繁體中文", "")
        assert not HAN.search(rest), f"{lang}: Chinese text on the page: {HAN.search(rest)}"


@pytest.mark.parametrize("browser_locale", list(LOCALES))
async def test_each_language_on_each_step(e2e: Any, browser_locale: str) -> None:
    lang = LOCALES[browser_locale]
    page = await e2e.page("/taxpayer", "taxpayer", locale=browser_locale)
    assert await page.evaluate("() => document.documentElement.lang") == lang
    assert await page.input_value("#page-language") == lang
    assert_one_language(await page.evaluate(VISIBLE_TEXT_JS), lang)
    await e2e.axe(page, f"identity ({lang})")
    await sign_in(page, e2e)
    assert_one_language(await page.evaluate(VISIBLE_TEXT_JS), lang)
    # The service language follows the page language (Cantonese for zh-HK).
    expected = {"zh-CN": "zh-CN", "zh-HK": "yue", "en": "en", "pt": "pt"}[lang]
    assert await page.input_value("#language") == expected
    await e2e.axe(page, f"question ({lang})")
    # The appointments step (no staffing planned here: no free times, said in words).
    await page.click("#bookings-open")
    await page.wait_for_selector("#step-bookings", state="visible")
    assert_one_language(await page.evaluate(VISIBLE_TEXT_JS), lang)
    await e2e.axe(page, f"appointments ({lang})")
    await page.click("#bookings-back")
    await page.wait_for_selector("#step-request", state="visible")
    await page.click("#my-sessions-open")
    await page.wait_for_selector("#step-history", state="visible")
    assert_one_language(await page.evaluate(VISIBLE_TEXT_JS), lang)
    await e2e.axe(page, f"my sessions ({lang})")


async def test_the_switcher_changes_every_string_and_is_remembered(e2e: Any) -> None:
    page = await e2e.page("/taxpayer", "taxpayer")
    english = await page.evaluate(VISIBLE_TEXT_JS)
    assert "Send code" in english
    await page.select_option("#page-language", "zh-HK")
    await page.wait_for_function("() => document.documentElement.lang === 'zh-HK'")
    chinese = await page.evaluate(VISIBLE_TEXT_JS)
    assert "取得驗證碼" in chinese and "Send code" not in chinese
    # Every visible line changed but the language names and the user's own input.
    same = set(english.splitlines()) & set(chinese.splitlines()) - {"", "English", "Português"}
    assert same <= {"简体中文", "繁體中文", "V-Tax"}, same
    await page.reload()
    await page.wait_for_function("() => window.vtax && window.vtax.page === 'taxpayer'")
    assert await page.evaluate("() => document.documentElement.lang") == "zh-HK"
    # Display options for the elderly: remembered too.
    await page.click("#large-text")
    await page.click("#high-contrast")
    await page.reload()
    await page.wait_for_function("() => window.vtax && window.vtax.page === 'taxpayer'")
    assert await page.evaluate("() => document.documentElement.dataset.text") == "large"
    assert await page.evaluate("() => document.documentElement.dataset.contrast") == "high"
    await e2e.axe(page, "identity, large text and high contrast")


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844), (360, 740)])
async def test_a_call_at_each_width(e2e: Any, viewport: tuple[int, int]) -> None:
    """Queue, call and after-call states at a desktop and two phone widths: no sideways
    scrolling, axe-core clean, the hang-up button on screen."""
    w, h = viewport
    name = f"{w}x{h}"
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    page = await e2e.page("/taxpayer", "taxpayer", viewport=viewport)
    await e2e.screenshot(page, f"taxpayer-identity-{name}")
    assert await page.evaluate(NO_SIDEWAYS_SCROLL_JS), f"identity scrolls sideways at {name}"
    await sign_in(page, e2e)
    await e2e.screenshot(page, f"taxpayer-question-{name}")
    assert await page.evaluate(NO_SIDEWAYS_SCROLL_JS), f"question scrolls sideways at {name}"
    question = f"a call at {name}"
    await start_request(e2e, page, e2e.server.categories[0], question)
    await e2e.wait_state(page, "queued")
    await e2e.axe(page, f"queue at {name}")
    await e2e.screenshot(page, f"taxpayer-queue-{name}")
    await accept_offer(e2e, agent, question)
    await wait_connected(e2e, page, agent)
    await page.wait_for_selector("#consent-card", state="visible")
    await e2e.axe(page, f"call with the consent prompt at {name}")
    await e2e.screenshot(page, f"taxpayer-call-consent-{name}")
    await page.click("#consent-no")
    await page.wait_for_selector("#consent-card", state="detached")
    assert await page.evaluate(NO_SIDEWAYS_SCROLL_JS), f"call scrolls sideways at {name}"
    # one fake camera here: no camera switch (two: test_camera_switch.py)
    assert await page.evaluate("() => window.vtax.cameras") == 1
    assert not await page.is_visible("#switch-camera")
    box = await page.locator("#hangup").bounding_box()
    assert box and box["height"] >= 44 and box["width"] >= 44
    await e2e.axe(page, f"call at {name}")
    await e2e.screenshot(page, f"taxpayer-call-{name}")
    await page.click("#hangup")
    await e2e.wait_state(page, "ended")
    await page.wait_for_selector("#rate-form", state="visible")
    await e2e.axe(page, f"after the call at {name}")
    await e2e.screenshot(page, f"taxpayer-after-{name}")
    assert await e2e.error_text(page) == ""
