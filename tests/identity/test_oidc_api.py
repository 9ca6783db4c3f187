"""OpenID Connect through a running node's HTTP interface, against the real OpenID Provider
(tests/oidc/provider.mjs): start, the browser's trip to the provider, callback, act-for, a
replayed callback, step-up, sign-out with the provider's end-session URL, and the provider's
back-channel logout posted to the node (a form), which ends the sign-in at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, poll_until
from tests.identity.oidc_provider import (
    REDIRECT,
    Browser,
    Provider,
    free_port,
    node_settings,
    running,
)
from tests.identity.test_identity_api import get, post
from tests.identity.test_oidc import ACCOUNTS, ACME


@pytest.fixture
def provider_port() -> int:
    return free_port()


@pytest.fixture
def settings_overrides(provider_port: int) -> dict[str, Any]:
    return node_settings(provider_port)


@pytest.fixture
async def provider(
    server: RunningServer, provider_port: int, tmp_path: Path
) -> AsyncIterator[Provider]:
    """The provider, its back-channel logout pointed at the running node."""
    async with running(tmp_path, provider_port, ACCOUNTS, server.url) as p:
        yield p


async def browse(browser: Browser, url: str, account: str = "wang") -> dict[str, str]:
    return await browser.authorize(f"{url}&login_hint={account}", REDIRECT)


async def test_oidc_over_http(server: RunningServer, provider: Provider):
    browser = Browser()
    try:
        status, start, headers = await post(server, "/api/auth/oidc/start", {"language": "en"})
        assert status == 200 and headers["Cache-Control"] == "no-store"
        url = start["authorization_url"]
        assert url.startswith(provider.issuer) and "code_challenge_method=S256" in url
        back = await browse(browser, url)
        status, session, _ = await post(
            server, "/api/auth/oidc/callback", {"code": back["code"], "state": back["state"]}
        )
        assert status == 200, session
        assert session["method"] == "oidc" and session["acr"] == 4
        assert session["person"]["name"] == "Wang Fang"
        assert [o["uscc"] for o in session["options"]] == [ACME]
        # the same code and state again: the state was taken once
        status, err, _ = await post(
            server, "/api/auth/oidc/callback", {"code": back["code"], "state": back["state"]}
        )
        assert status == 401 and err["error"]["code"] == "sign_in_failed"

        status, acting, _ = await post(
            server,
            "/api/auth/act-for",
            {
                "refresh_token": session["refresh_token"],
                "enterprise_id": session["options"][0]["enterprise_id"],
                "role": "legal_representative",
            },
        )
        assert status == 200 and acting["acting"]["uscc"] == ACME
        token = acting["access_token"]
        assert await get(server, "/api/sessions", token) == 200

        # step-up: only with the taxpayer's token; a fresh sign-in at the step-up level
        status, err, _ = await post(server, "/api/auth/oidc/start?step_up=true", {})
        assert status == 401
        staff = await server.staff("ann")
        status, err, _ = await post(server, "/api/auth/oidc/start?step_up=true", {}, staff)
        assert status == 403
        status, err, _ = await post(server, "/api/auth/oidc/start?step_up=maybe", {}, token)
        assert status == 400
        status, stepped, _ = await post(server, "/api/auth/oidc/start?step_up=true", {}, token)
        assert status == 200 and "prompt=login" in stepped["authorization_url"]
        assert "max_age=300" in stepped["authorization_url"]

        # sign-out: the provider's end-session URL; the browser goes there, and the
        # provider's back-channel logout (a form posted to the node) ends the sign-in
        status, out, _ = await post(
            server, "/api/auth/logout", {"refresh_token": acting["refresh_token"]}, token
        )
        assert status == 200 and out["provider_logout_url"].startswith(provider.issuer)
        assert await get(server, "/api/sessions", token) == 401
        # a new sign-in, signed out at the provider: the back-channel ends it here
        status, start2, _ = await post(server, "/api/auth/oidc/start", {})
        back2 = await browse(browser, start2["authorization_url"])
        status, again, _ = await post(
            server, "/api/auth/oidc/callback", {"code": back2["code"], "state": back2["state"]}
        )
        assert status == 200, again
        assert await get(server, "/api/sessions", again["access_token"]) == 200
        status, out, _ = await post(server, "/api/auth/logout", {}, again["access_token"])
        assert status == 200 and out["provider_logout_url"]
        await browser.logout(out["provider_logout_url"])
        assert await poll_for_status(server, again["access_token"], 401)
        status, err, _ = await post(
            server, "/api/auth/refresh", {"refresh_token": again["refresh_token"]}
        )
        assert status == 401
    finally:
        await browser.close()


async def poll_for_status(server: RunningServer, token: str, want: int) -> bool:
    async def check() -> bool:
        return await get(server, "/api/sessions", token) == want

    return bool(await poll_until(check, timeout=10, interval=0.1))


async def test_backchannel_logout_is_a_form_and_checked(server: RunningServer, provider: Provider):
    status, err, _ = await post(
        server, "/api/auth/oidc/backchannel-logout", {"logout_token": "x" * 40}
    )
    assert status == 400 and err["error"]["code"] == "invalid_payload"  # JSON is not a form
    status, err, _ = await post(
        server, "/api/auth/oidc/backchannel-logout", data={"logout_token": "x" * 40}
    )
    assert status == 400 and err["error"]["code"] == "invalid_payload"  # not a valid token
    status, err, _ = await post(server, "/api/auth/oidc/backchannel-logout", data={"x": "1"})
    assert status == 400 and err["error"]["code"] == "invalid_payload"
    status, err, _ = await post(
        server,
        "/api/auth/oidc/backchannel-logout",
        data=[("logout_token", "y" * 40), ("logout_token", "z" * 40)],
    )
    assert status == 400
