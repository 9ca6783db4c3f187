"""Signing in through the identity platform in Chromium, against the real OpenID Provider of
the identity tests (tests/oidc/provider.mjs, oidc-provider on loopback): the page's button
starts the authorization code flow, the provider signs the person in (its login page is the
test's: `login_hint` names the account, as a person would type it) and sends the browser back
to the taxpayer page, which finishes the sign-in; the person chooses the enterprise the
platform says they represent and asks a question. Signing out ends the sign-in at the node
and sends the browser to the platform's end-session page."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import free_port
from tests.e2e.test_signin import refresh_status
from tests.identity.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDC_DIR, Provider
from tests.identity.test_oidc import ACCOUNTS, ACME

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ports() -> tuple[int, int]:
    return free_port(), free_port()  # the node's, the provider's


@pytest.fixture(scope="module")
def provider(
    ports: tuple[int, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Provider]:
    """The provider as a subprocess for the module (its config as the identity tests write
    it), redirecting to the node's taxpayer page."""
    node, port = ports
    folder = tmp_path_factory.mktemp("oidc-provider")
    p = Provider(
        folder,
        port,
        json.loads(json.dumps(ACCOUNTS)),
        f"http://127.0.0.1:{node}/api/auth/oidc/backchannel-logout",
        f"http://127.0.0.1:{node}/taxpayer",
    )
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("the test provider is not installed: make install (npm ci in tests/oidc)")
    config = folder / "provider-config.json"
    config.write_text(json.dumps(p._config()))
    with open(folder / "provider.log", "wb") as log:
        proc = subprocess.Popen(
            ["node", str(OIDC_DIR / "provider.mjs"), str(config)],
            cwd=str(OIDC_DIR),
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                url = f"{p.issuer}/.well-known/openid-configuration"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the provider did not start: " + (folder / "provider.log").read_text())
            time.sleep(0.1)
        yield p
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def node_env(ports: tuple[int, int], provider: Provider) -> dict[str, str]:
    node, _ = ports
    page = f"http://127.0.0.1:{node}/taxpayer"
    return {
        "VTAX_PORT": str(node),
        "VTAX_IDENTITY_PROVIDERS": "sms,oidc",
        "VTAX_OIDC_ISSUER": provider.issuer,
        "VTAX_OIDC_CLIENT_ID": CLIENT_ID,
        "VTAX_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "VTAX_OIDC_REDIRECT_URI": page,
        "VTAX_OIDC_POST_LOGOUT_REDIRECT_URI": page + "/signed-out",
    }


async def test_the_platform_signs_a_person_in_and_out(e2e: Any, provider: Provider) -> None:
    page = await e2e.page("/taxpayer", "taxpayer")
    # the person's own login at the platform: the test's provider takes the account by name
    await page.route(
        f"{provider.issuer}/auth?*",
        lambda route: route.continue_(url=route.request.url + "&login_hint=wang"),
    )
    await page.wait_for_selector("#oidc-start", state="visible")
    assert await page.is_visible("#send-code")  # SMS stays on beside it
    await e2e.axe(page, "sign-in with the platform's button")
    await page.click("#oidc-start")
    await page.wait_for_url("**/taxpayer", timeout=15000)  # back, the code taken off the URL
    await page.wait_for_selector("#step-acting", state="visible")
    assert "code=" not in page.url and "state=" not in page.url
    assert "Wang Fang" in (await page.text_content("#step-acting") or "")
    await page.check(f"#step-acting input[data-uscc='{ACME}']")
    await page.click("#acting-continue")
    await page.wait_for_selector("#step-request", state="visible")
    assert await page.evaluate("() => window.vtax.acting") == {
        "uscc": ACME,
        "role": "legal_representative",
    }
    stored = json.loads(
        await page.evaluate("() => sessionStorage.getItem('vtax.auth.taxpayer')") or "{}"
    )
    # a reload of the page that came back from the platform does not replay the code
    await page.reload()
    await page.wait_for_selector("#step-request", state="visible")
    assert await e2e.error_text(page) == ""

    await page.click("#logout")
    await page.wait_for_url(f"{provider.issuer}/**", timeout=15000)  # the platform's logout
    assert "post_logout_redirect_uri" in page.url and f"client_id={CLIENT_ID}" in page.url
    assert refresh_status(e2e.server.base_url, stored["refresh_token"]) == 401


async def test_a_risky_item_asks_to_verify_again(e2e: Any, provider: Provider) -> None:
    """A person signed in at level 3 (the platform's account `chan`) asks for a risky item:
    the page shows "verify again", which goes back to the platform for a fresh level-4
    sign-in (acr_values, prompt=login, max_age) and, back, sends the join again: the agent
    gets the offer (docs/identity.md, Step-up)."""
    agent = await e2e.agent_page()
    await e2e.agent_available(agent)
    page = await e2e.page("/taxpayer", "taxpayer")
    asked: list[str] = []

    async def as_chan(route: Any) -> None:
        asked.append(route.request.url)
        await route.continue_(url=route.request.url + "&login_hint=chan")

    await page.route(f"{provider.issuer}/auth?*", as_chan)
    await page.wait_for_selector("#oidc-start", state="visible")
    await page.click("#oidc-start")
    await page.wait_for_url("**/taxpayer", timeout=15000)
    await page.wait_for_selector("#step-request", state="visible")
    await page.select_option("#category", "invoices")
    assert (
        await page.get_attribute(
            "#item option[value='invoices.invoice_collection']", "data-step-up"
        )
        == "true"
    )
    await page.select_option("#item", "invoices.invoice_collection")
    await page.select_option("#language", "en")
    await page.fill("#question", "I need to collect invoices")
    await page.click("#start")
    await page.wait_for_selector("#step-up", state="visible")
    assert (await page.evaluate("() => window.vtax.lastError"))["code"] == "step_up_required"
    await e2e.axe(page, "verify again")

    await page.click("#step-up-verify")
    await page.wait_for_url("**/taxpayer", timeout=15000)
    await agent.wait_for_selector("#accept", state="visible", timeout=15000)
    assert "I need to collect invoices" in (await agent.text_content("#offer-question") or "")
    assert await page.is_hidden("#step-up")
    step_up = asked[-1]
    assert "prompt=login" in step_up and "max_age=300" in step_up and "acr_values=4+5" in step_up
