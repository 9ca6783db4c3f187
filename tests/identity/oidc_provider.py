"""Starts the real OpenID Provider (tests/oidc/provider.mjs, panva/oidc-provider) on a free
loopback port with keys, clients and accounts the test chooses, and drives a browser's part
of the authorization code flow over HTTP (following the provider's redirects with a cookie
jar, stopping at the redirect back to us)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
from joserfc.jwk import RSAKey

from tests.conftest import poll_until

OIDC_DIR = Path(__file__).resolve().parent.parent / "oidc"
CLIENT_ID, CLIENT_SECRET = "vtax", "vtax-client-secret-0123456789abcdef"
OTHER_CLIENT, OTHER_SECRET = "other-rp", "other-client-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_key(kid: str) -> dict[str, Any]:
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})
    return dict(key.as_dict(private=True))


#: The page's OIDC redirect in the API tests (the browser stops there).
REDIRECT = "http://127.0.0.1:9/oidc/callback"


def node_settings(provider_port: int) -> dict[str, Any]:
    """A node's settings for SMS and OIDC sign-in against the provider on `provider_port`."""
    return {
        "identity_providers": ["sms", "oidc"],
        "oidc_issuer": f"http://127.0.0.1:{provider_port}",
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_redirect_uri": REDIRECT,
        "oidc_post_logout_redirect_uri": REDIRECT + "/signed-out",
    }


@asynccontextmanager
async def running(
    folder: Path, port: int, accounts: dict[str, Any], node_url: str
) -> AsyncIterator[Provider]:
    """The provider with `accounts` (a copy), its back-channel logout pointed at the node."""
    p = Provider(
        folder,
        port,
        json.loads(json.dumps(accounts)),
        f"{node_url}/api/auth/oidc/backchannel-logout",
        REDIRECT,
    )
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


@dataclass
class Provider:
    folder: Path
    port: int
    accounts: dict[str, Any]
    backchannel_uri: str
    redirect_uri: str
    keys: list[dict[str, Any]] = field(default_factory=lambda: [new_key("k1")])
    id_token_ttl_s: int = 3600
    process: asyncio.subprocess.Process | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> dict[str, Any]:
        client = {
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
            "require_auth_time": True,
        }
        return {
            "port": self.port,
            "issuer": self.issuer,
            "keys": self.keys,
            "id_token_ttl_s": self.id_token_ttl_s,
            "accounts": self.accounts,
            "clients": [
                {
                    **client,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [self.redirect_uri],
                    "post_logout_redirect_uris": [self.redirect_uri + "/signed-out"],
                    "backchannel_logout_uri": self.backchannel_uri,
                    "backchannel_logout_session_required": True,
                },
                {
                    **client,
                    "client_id": OTHER_CLIENT,
                    "client_secret": OTHER_SECRET,
                    "redirect_uris": [self.redirect_uri],
                },
            ],
        }

    async def start(self) -> None:
        if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            raise AssertionError(
                "the test provider is not installed: make install (npm ci in tests/oidc)"
            )
        path = self.folder / "provider-config.json"
        path.write_text(json.dumps(self._config()))
        self.log = (self.folder / "provider.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            "node",
            str(OIDC_DIR / "provider.mjs"),
            str(path),
            cwd=str(OIDC_DIR),
            stdout=self.log,
            stderr=self.log,
        )

        async def up() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(
                    "the provider exited: " + (self.folder / "provider.log").read_text()
                )
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"{self.issuer}/.well-known/openid-configuration") as r,
                ):
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await poll_until(up, timeout=20, interval=0.1)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self.process = None
        if hasattr(self, "log"):
            self.log.close()

    async def restart(self, keys: list[dict[str, Any]]) -> None:
        """The provider again with other keys (the first signs): a key rotation."""
        await self.stop()
        self.keys = keys
        await self.start()


class Browser:
    """The browser's part: a cookie jar that follows the provider's redirects."""

    def __init__(self) -> None:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    async def authorize(self, url: str, redirect_uri: str) -> dict[str, str]:
        """Follow the authorization request to the redirect back to `redirect_uri`; its query
        (code and state, or error)."""
        for _ in range(20):
            if url.startswith(redirect_uri):
                return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            async with self.http.get(url, allow_redirects=False) as r:
                location = r.headers.get("Location")
                if r.status not in (302, 303) or location is None:
                    raise AssertionError(f"{url}: {r.status} {await r.text()}")
            url = urljoin(url, location)
        raise AssertionError("too many redirects")

    async def logout(self, end_session_url: str) -> str:
        """RP-initiated logout: open the provider's page and confirm; where it sends back."""
        async with self.http.get(end_session_url, allow_redirects=False) as r:
            page = await r.text()
            assert r.status == 200, page
        action = re.search(r'action="([^"]+)"', page)
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
        assert action is not None and "xsrf" in fields, page
        async with self.http.post(
            urljoin(end_session_url, action.group(1)),
            data={**fields, "logout": "yes"},
            allow_redirects=False,
        ) as r:
            assert r.status in (302, 303), await r.text()
            return r.headers["Location"]
