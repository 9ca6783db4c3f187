"""Signing in on the taxpayer page as a person would (docs/identity.md): the mobile number
with its region, the code with its resend countdown, a wrong code refused by its error code,
whom one acts for, the question; a reload stays signed in (the refresh token), signing out
ends the sign-in at the server; errors in the four languages. axe-core on each state, at a
desktop and a phone width. This module's node keeps the real resend pause (60 s)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.signin import derived_resident_id, person_for

pytestmark = pytest.mark.e2e

SECOND_ENTERPRISE = "91440300MA00000077"


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    return {"VTAX_SIGN_IN_CODE_RESEND_S": "60"}  # the countdown as in production


def refresh_status(base_url: str, refresh_token: str) -> int:
    req = urllib.request.Request(
        base_url + "/api/auth/refresh",
        data=json.dumps({"refresh_token": refresh_token}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return int(res.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


@pytest.mark.parametrize(
    ("viewport", "uscc"), [((1280, 800), "91350100M000100Y43"), ((390, 844), SECOND_ENTERPRISE)]
)
async def test_sms_code_then_whom_one_acts_for(
    e2e: Any, viewport: tuple[int, int], uscc: str
) -> None:
    name = f"{viewport[0]}x{viewport[1]}"
    person = person_for(uscc)
    page = await e2e.page("/taxpayer", "taxpayer", viewport=viewport)
    await e2e.axe(page, f"sign-in at {name}")
    code = await e2e.send_code(page, uscc)
    # the countdown: no second code for a minute, and the button says so
    assert await page.is_disabled("#send-code")
    # the code is in the server's log before the answer reaches the page: the button is
    # disabled while the request is out, and says the countdown once the answer is in
    await page.wait_for_function(
        "() => document.getElementById('send-code').textContent.trim().startsWith('New code in')"
    )
    assert await page.is_disabled("#send-code")
    label = (await page.text_content("#send-code") or "").strip()
    assert 50 <= int(label.split()[3]) <= 60, label
    sent = await page.text_content("#code-sent") or ""
    assert person.phone[-4:] in sent and person.phone[6:10] not in sent  # masked
    await e2e.axe(page, f"code sent at {name}")
    await e2e.screenshot(page, f"signin-code-sent-{name}")

    await page.fill("#code", f"{(int(code) + 1) % 10**6:06d}")
    await page.click("#verify")
    await page.wait_for_function("() => window.vtax.lastError?.code === 'invalid_code'")
    assert "wrong or has expired" in await e2e.error_text(page)
    assert await page.is_visible("#step-identity")

    await page.fill("#code", code)
    await page.click("#verify")
    await page.wait_for_selector("#step-acting", state="visible")
    assert await page.is_checked("#acting-self")  # oneself unless one chooses
    assert "Legal representative" in (await page.text_content("#step-acting") or "")
    await e2e.axe(page, f"whom one acts for at {name}")
    await e2e.screenshot(page, f"signin-acting-{name}")
    await page.check(f"#step-acting input[data-uscc='{uscc}']")
    await page.click("#acting-continue")
    await page.wait_for_selector("#step-request", state="visible")
    assert await page.evaluate("() => window.vtax.acting") == {
        "uscc": uscc,
        "role": "legal_representative",
    }
    assert f"Test enterprise {uscc}" in (await page.text_content("#acting-now") or "")
    assert f"Test enterprise {uscc}" in (await page.text_content("header") or "")

    # choosing again: back to oneself
    await page.click("#acting-change")
    await page.check("#acting-self")
    await page.click("#acting-continue")
    await page.wait_for_selector("#step-request", state="visible")
    assert await page.evaluate("() => window.vtax.acting") is None

    # signing out ends the sign-in at the server: the kept refresh token no longer works
    stored = json.loads(
        await page.evaluate("() => sessionStorage.getItem('vtax.auth.taxpayer')") or "{}"
    )
    assert stored.get("refresh_token")
    await page.click("#logout")
    await page.wait_for_selector("#step-identity", state="visible")
    assert await page.evaluate("() => sessionStorage.getItem('vtax.auth.taxpayer')") is None
    assert refresh_status(e2e.server.base_url, stored["refresh_token"]) == 401
    await page.reload()
    await page.wait_for_function("() => window.vtax && window.vtax.page === 'taxpayer'")
    assert await page.is_visible("#step-identity")


async def test_a_reload_stays_signed_in(e2e: Any) -> None:
    """A person without enterprise grants goes straight to the question; a reload keeps the
    sign-in (a refresh with the tab's refresh token, which rotates it)."""
    resident = derived_resident_id("e2e:a")
    page = await e2e.page("/taxpayer", "taxpayer")
    await e2e.sign_in(page, resident, "resident_id")
    await page.wait_for_selector("#step-request", state="visible")
    assert not await page.is_visible("#acting-now")  # no enterprise to choose
    before = await page.evaluate("() => sessionStorage.getItem('vtax.auth.taxpayer')")
    await page.reload()
    await page.wait_for_function("() => window.vtax && window.vtax.page === 'taxpayer'")
    await page.wait_for_selector("#step-request", state="visible")
    after = await page.evaluate("() => sessionStorage.getItem('vtax.auth.taxpayer')")
    assert before and after and before != after  # rotated
    assert refresh_status(e2e.server.base_url, json.loads(before)["refresh_token"]) == 401
    # that reuse of a rotated token ended the whole sign-in (RFC 9700): the page's refresh too
    assert refresh_status(e2e.server.base_url, json.loads(after)["refresh_token"]) == 401


@pytest.mark.parametrize(
    ("locale", "lang", "words"),
    [
        ("zh-CN", "zh-CN", "手机号"),
        ("zh-HK", "zh-HK", "手機號碼"),
        ("en-US", "en", "mobile number"),
        ("pt-PT", "pt", "telemóvel"),
    ],
)
async def test_errors_by_code_in_each_language(
    e2e: Any, locale: str, lang: str, words: str
) -> None:
    page = await e2e.page("/taxpayer", "taxpayer", locale=locale)
    assert await page.evaluate("() => document.documentElement.lang") == lang
    await page.click("#send-code")  # no number
    await page.wait_for_function("() => window.vtax.lastError?.code === 'needPhone'")
    assert words in await e2e.error_text(page)
    await page.fill("#phone", "12345")  # not a mobile a code goes to: the server says
    await page.click("#send-code")
    await page.wait_for_function("() => window.vtax.lastError?.code === 'invalid_phone'")
    assert words in await e2e.error_text(page)
    await e2e.axe(page, f"a sign-in error ({lang})")
