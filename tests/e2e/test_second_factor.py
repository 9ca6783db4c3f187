"""Recordings and exports need the authenticator (docs/identity.md, "Staff: second factor and
lockout"), on a node with `records_need_second_factor` on, as in production: a supervisor
signed in with the password only is told why and refused the CSV export; they set up the
authenticator on the page (the key and its QR code, then the app's code), sign in again with
a code, and the export downloads. In Chromium, at a desktop and a phone width; axe-core."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import pyotp
import pytest

from tests.e2e.conftest import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    return {"VTAX_RECORDS_NEED_SECOND_FACTOR": "true"}  # the production default


@pytest.mark.parametrize("viewport", [(1280, 800), (390, 844)])
async def test_set_up_the_authenticator_then_export(e2e: Any, viewport: tuple[int, int]) -> None:
    name, password = f"sup-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    await asyncio.to_thread(
        run_cli, ["user", "add", name, "--role", "supervisor"], e2e.server.env, password + "\n"
    )
    page = await e2e.page("/supervisor", "supervisor", viewport=viewport)
    await e2e.login(page, name, password, "#sessions")

    # Signed in without a code: the page says why recordings and exports are closed ...
    await page.wait_for_selector("#factor-needed", state="visible")
    assert "authenticator" in (await page.text_content("#factor-needed") or "")
    await page.click("#export-csv")
    await page.wait_for_function(
        "() => window.vtax.lastError && window.vtax.lastError.code === 'second_factor_required'"
    )
    assert "six-digit code" in await e2e.error_text(page)

    # ... and sets the authenticator up: the key (grouped by four) and its QR code.
    await page.click("#factor-needed a")  # to the set-up card
    await page.click("#totp-setup")
    await page.wait_for_selector("#totp-form", state="visible")
    shown = (await page.text_content("#totp-secret") or "").replace(" ", "")
    enrolment = await page.evaluate("() => window.vtax.totpEnrolment")
    assert shown == enrolment["secret"] and len(shown) >= 16
    assert (await page.get_attribute("#totp-uri", "href") or "").startswith("otpauth://totp/")
    drawn = await page.evaluate(
        "() => { const c = document.getElementById('totp-qr');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let dark = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) dark++;"
        " return dark / (d.length / 4); }"
    )
    assert 0.2 < drawn < 0.7, f"the QR code is not drawn ({drawn:.2f} dark)"
    await e2e.axe(page, f"supervisor, the authenticator set-up, {viewport[0]}")
    await e2e.screenshot(page, f"supervisor-authenticator-{viewport[0]}x{viewport[1]}")
    totp = pyotp.TOTP(shown)
    wrong = f"{(int(totp.now()) + 500_000) % 1_000_000:06d}"
    await page.fill("#totp-confirm-code", wrong)
    await page.click("#totp-confirm")
    await page.wait_for_function(
        "() => window.vtax.lastError && window.vtax.lastError.code === 'totpWrongCode'"
    )
    # the previous step's code (accepted, one step either way), so the sign-in below can use
    # the current one: each step counts once
    await page.fill("#totp-confirm-code", totp.at(int(time.time()), -1))
    await page.click("#totp-confirm")
    await page.wait_for_selector("#totp-state", state="visible")

    # Sign in again, now with a code: the export downloads.
    await page.click("#signout")
    await e2e.login_with_code(page, name, password, totp, "#sessions")
    assert not await page.is_visible("#factor-needed")
    async with page.expect_download() as dl_info:
        await page.click("#export-csv")
    exported = await dl_info.value
    assert await exported.failure() is None
    assert exported.suggested_filename == "sessions.csv"
