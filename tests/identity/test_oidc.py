"""OpenID Connect against a real OpenID Provider (panva/oidc-provider, started per test on
loopback): the code flow with PKCE, state and nonce end to end, claims mapped to the person
and the enterprises they act for, acr and auth_time kept; the failure cases (wrong audience,
expired, bad signature, wrong nonce, replayed state, unknown key, rotated key, a level below
the one asked); RP-initiated logout with the provider's back-channel logout ending the
sign-in at once."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import poll_until
from tests.identity.conftest import REDIS_URL
from tests.identity.numbers import resident_id, uscc_n
from tests.identity.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT,
    OTHER_SECRET,
    Browser,
    Provider,
    free_port,
    new_key,
)
from tests.identity.world import KEY, TODAY
from vtax.app.identity import IdentityError, OidcSignIn, TaxpayerSignIn
from vtax.auth import TokenIssuer
from vtax.contract.identity import ActFor, BackchannelLogout, OidcCallback, OidcStart, Refresh
from vtax.identity.oidc import OidcClient, OidcConfig, OidcError
from vtax.identity.redis_state import RedisIdentityState
from vtax.identity.state import MemoryIdentityState
from vtax.identity.tokens import TaxpayerTokens
from vtax.redis_client import connect

ACME = uscc_n(1)
ACCOUNTS = {
    "wang": {
        "name": "Wang Fang",
        "acr": 4,
        "document_type": "resident_id",
        "document_number": resident_id(),
        "enterprises": [
            {"uscc": ACME, "name": "Acme Ltd", "role": "legal_representative"},
            {"uscc": ACME[:-1] + "0", "name": "Bad check", "role": "tax_handler"},
            {"uscc": uscc_n(2), "name": "Beta", "role": "owner"},
        ],
    },
    "chan": {
        "name": "Chan Tai Man",
        "acr": 3,
        "document_type": "travel_permit",
        "document_number": "H1234567801",
    },
    "nodoc": {"name": "No Document", "acr": 3},
}


@dataclass
class Oidc:
    provider: Provider
    browser: Browser
    client: OidcClient
    use_case: OidcSignIn
    signin: TaxpayerSignIn
    logout_tokens: list[str]
    logout_results: list[Any]
    redirect_uri: str
    others: list[OidcClient]

    def other_client(self, client_id: str = OTHER_CLIENT, secret: str = OTHER_SECRET) -> OidcClient:
        """Another relying party (closed with the fixture)."""
        client = OidcClient(
            OidcConfig(
                issuer=self.provider.issuer,
                client_id=client_id,
                client_secret=secret,
                redirect_uri=self.redirect_uri,
                jwks_min_refresh_s=0,
            ),
            self.client.state,
        )
        self.others.append(client)
        return client

    async def sign_in(self, account: str = "wang", **begin: Any):
        start = await self.use_case.begin(OidcStart(language="en"), login_hint=account, **begin)
        back = await self.browser.authorize(start.authorization_url, self.redirect_uri)
        return await self.use_case.callback(OidcCallback(code=back["code"], state=back["state"]))

    async def raw_token(self, client: OidcClient, account: str = "wang") -> str:
        url = await client.begin(login_hint=account)
        back = await self.browser.authorize(url, self.redirect_uri)
        _, raw = await client.finish(back["code"], back["state"])
        return raw


@pytest.fixture
async def oidc(request, sqlite_db, tmp_path, redis_prefix) -> AsyncIterator[Oidc]:
    """The provider, our client and use cases; the identity state in memory, or on the real
    Redis for the tests parametrized with "redis" (the flow's state, families, sets)."""
    if getattr(request, "param", "memory") == "redis":
        redis = connect(REDIS_URL, max_connections=8)
        state: Any = RedisIdentityState(redis, redis_prefix)
    else:
        redis, state = None, MemoryIdentityState()
    rp_port = free_port()
    redirect_uri = f"http://127.0.0.1:{rp_port}/api/auth/oidc/callback"
    tokens: list[str] = []
    results: list[Any] = []
    holder: dict[str, OidcSignIn] = {}

    async def backchannel(request: web.Request) -> web.Response:
        form = await request.post()
        tokens.append(str(form["logout_token"]))
        try:
            results.append(
                await holder["use_case"].backchannel_logout(
                    BackchannelLogout(logout_token=str(form["logout_token"]))
                )
            )
        except IdentityError as exc:
            results.append(exc.code)
            return web.json_response({"error": exc.code}, status=400)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/api/auth/oidc/backchannel-logout", backchannel)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", rp_port).start()
    provider = Provider(
        tmp_path,
        free_port(),
        json.loads(json.dumps(ACCOUNTS)),
        f"http://127.0.0.1:{rp_port}/api/auth/oidc/backchannel-logout",
        redirect_uri,
    )
    await provider.start()
    client = OidcClient(
        OidcConfig(
            issuer=provider.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uri=redirect_uri,
            post_logout_redirect_uri=redirect_uri + "/signed-out",
            jwks_min_refresh_s=0,
        ),
        state,
    )
    tokens_ = TaxpayerTokens(
        TokenIssuer(KEY, 3600),
        sqlite_db.registry,
        state,
        access_ttl_s=900,
        refresh_ttl_s=3600,
        today=lambda: TODAY,
    )
    signin = TaxpayerSignIn(tokens_, sqlite_db.registry, step_up_acr=4, step_up_max_age_s=300)
    use_case = OidcSignIn(client, sqlite_db.registry, sqlite_db.sessions, signin, state)
    holder["use_case"] = use_case
    browser = Browser()
    try:
        yield (
            o := Oidc(
                provider, browser, client, use_case, signin, tokens, results, redirect_uri, []
            )
        )
    finally:
        for other in o.others:
            await other.aclose()
        await o.browser.close()
        await client.aclose()
        await provider.stop()
        await runner.cleanup()
        if redis is not None:
            leftover = [k async for k in redis.scan_iter(match=redis_prefix + "*", count=500)]
            if leftover:
                await redis.delete(*leftover)
            await redis.aclose()


BOTH = pytest.mark.parametrize("oidc", ["memory", "redis"], indirect=True)


@BOTH
async def test_sign_in_choose_enterprise(oidc):
    before = time.time()
    session = await oidc.sign_in()
    assert session.method == "oidc" and session.acr == 4
    assert session.person.name == "Wang Fang" and session.person.document_type == "resident_id"
    # the two bad entries of the claim (a wrong check character, an unknown role) give nothing
    assert [(o.uscc, o.role) for o in session.options] == [(ACME, "legal_representative")]
    acting = await oidc.signin.act_for(
        ActFor(
            refresh_token=session.refresh_token,
            enterprise_id=session.options[0].enterprise_id,
            role="legal_representative",
        )
    )
    p = await oidc.signin.authenticate(acting.access_token)
    assert (p.method, p.acr, p.acting_role) == ("oidc", 4, "legal_representative")
    assert before - 5 <= p.auth_time <= time.time() + 1


async def test_travel_permit_holder_and_no_document(oidc):
    session = await oidc.sign_in("chan")
    assert (session.acr, session.options, session.person.document_type) == (3, [], "travel_permit")
    await oidc.browser.close()  # another person on a fresh browser (no provider session)
    oidc.browser = Browser()
    with pytest.raises(IdentityError) as e:
        await oidc.sign_in("nodoc")
    assert e.value.code == "sign_in_failed"


async def test_replayed_and_forged_state(oidc):
    start = await oidc.use_case.begin(OidcStart(), login_hint="wang")
    back = await oidc.browser.authorize(start.authorization_url, oidc.redirect_uri)
    await oidc.use_case.callback(OidcCallback(code=back["code"], state=back["state"]))
    for state in (back["state"], "x" * 43):
        with pytest.raises(IdentityError) as e:
            await oidc.use_case.callback(OidcCallback(code=back["code"], state=state))
        assert e.value.code == "sign_in_failed"


async def test_pkce_and_state_are_in_the_request(oidc):
    start = await oidc.use_case.begin(OidcStart(), login_hint="wang")
    url = start.authorization_url
    for part in (
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "state=",
        "scope=openid",
    ):
        assert part in url
    # a code redeemed without the verifier (someone else's flow state) is refused by the
    # provider: PKCE holds
    back = await oidc.browser.authorize(url, oidc.redirect_uri)
    other = await oidc.client.begin(login_hint="wang")
    other_state = dict(p.split("=", 1) for p in other.split("?", 1)[1].split("&"))["state"]
    with pytest.raises(OidcError, match="refused the code"):
        await oidc.client.finish(back["code"], other_state)


async def test_wrong_audience(oidc):
    raw = await oidc.raw_token(oidc.other_client())
    claims = json.loads(base64.urlsafe_b64decode(raw.split(".")[1] + "=="))
    assert claims["aud"] == OTHER_CLIENT
    with pytest.raises(OidcError, match="audience"):
        await oidc.client.validate_id_token(raw, claims["nonce"])


async def test_expired_bad_signature_wrong_nonce_low_level(oidc):
    client = oidc.other_client(CLIENT_ID, CLIENT_SECRET)
    raw = await oidc.raw_token(client)
    claims = json.loads(base64.urlsafe_b64decode(raw.split(".")[1] + "=="))
    good = await oidc.client.validate_id_token(raw, claims["nonce"])
    assert good.acr == 4 and good.sid
    with pytest.raises(OidcError, match="expired"):
        await oidc.client.validate_id_token(raw, claims["nonce"], now=claims["exp"] + 61)
    head, body, sig = raw.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    with pytest.raises(OidcError, match="signature"):
        await oidc.client.validate_id_token(f"{head}.{body}.{flipped}", claims["nonce"])
    forged_body = (
        base64.urlsafe_b64encode(json.dumps({**claims, "sub": "someone-else"}).encode())
        .decode()
        .rstrip("=")
    )
    with pytest.raises(OidcError, match="signature"):
        await oidc.client.validate_id_token(f"{head}.{forged_body}.{sig}", claims["nonce"])
    with pytest.raises(OidcError, match="nonce"):
        await oidc.client.validate_id_token(raw, "another-nonce")
    with pytest.raises(OidcError, match="level"):
        await oidc.client.validate_id_token(raw, claims["nonce"], min_acr=5)
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    with pytest.raises(OidcError, match="algorithm"):
        await oidc.client.validate_id_token(f"{none_alg}.{body}.", claims["nonce"])


async def test_unknown_key_then_rotated_key(oidc):
    first = await oidc.sign_in()
    assert first.acr == 4
    # a token made with a key the provider never published, with every claim right
    rogue = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
    now = int(time.time())
    claims = {
        "iss": oidc.provider.issuer,
        "aud": CLIENT_ID,
        "sub": "wang",
        "nonce": "n",
        "iat": now,
        "exp": now + 600,
        "auth_time": now,
        "acr": "5",
    }
    forged = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, rogue)
    with pytest.raises(OidcError, match="signature"):
        await oidc.client.validate_id_token(forged, "n")
    unknown = jwt.encode({"alg": "RS256", "kid": "k9"}, claims, rogue)
    with pytest.raises(OidcError, match="does not publish"):
        await oidc.client.validate_id_token(unknown, "n")
    # the provider rotates to k2 (k1 withdrawn): the client re-fetches the JWKS on the new kid
    old_raw = await oidc.raw_token(oidc.other_client(CLIENT_ID, CLIENT_SECRET))
    await oidc.provider.restart([new_key("k2")])
    rotated = await oidc.sign_in()
    assert rotated.acr == 4
    old_claims = json.loads(base64.urlsafe_b64decode(old_raw.split(".")[1] + "=="))
    with pytest.raises(OidcError, match="does not publish"):  # k1 is gone from the JWKS
        await oidc.client.validate_id_token(old_raw, old_claims["nonce"])


async def test_step_up_sign_in(oidc):
    first = await oidc.signin.authenticate((await oidc.sign_in("chan")).access_token)
    assert first.acr == 3
    with pytest.raises(IdentityError, match="signed-in taxpayer"):  # a step-up is of someone
        await oidc.use_case.begin(OidcStart(language="en"), step_up=True)
    # acr_values=4 5, prompt=login, max_age; the same person again
    session = await oidc.sign_in("chan", step_up=True, caller=first)
    p = await oidc.signin.authenticate(session.access_token)
    assert p.acr == 4 and p.subject == first.subject
    oidc.signin.require_step_up(p)
    # another person (on a browser of their own) is refused
    start = await oidc.use_case.begin(
        OidcStart(language="en"), login_hint="wang", step_up=True, caller=first
    )
    other = Browser()
    try:
        back = await other.authorize(start.authorization_url, oidc.redirect_uri)
    finally:
        await other.close()
    with pytest.raises(IdentityError) as e:
        await oidc.use_case.callback(OidcCallback(code=back["code"], state=back["state"]))
    assert e.value.code == "step_up_refused"


async def test_provider_grants_are_replaced_at_each_sign_in(oidc):
    first = await oidc.sign_in()
    acting = await oidc.signin.act_for(
        ActFor(
            refresh_token=first.refresh_token,
            enterprise_id=first.options[0].enterprise_id,
            role="legal_representative",
        )
    )
    oidc.provider.accounts["wang"]["enterprises"] = []
    await oidc.provider.restart(oidc.provider.keys)
    again = await oidc.sign_in()
    assert again.options == []
    with pytest.raises(IdentityError):  # the grant is gone: so is the token acting under it
        await oidc.signin.authenticate(acting.access_token)


@BOTH
async def test_rp_initiated_and_backchannel_logout(oidc):
    session = await oidc.sign_in()
    await oidc.signin.authenticate(session.access_token)
    url = await oidc.use_case.logout_url()
    assert url is not None and "post_logout_redirect_uri=" in url
    back = await oidc.browser.logout(url)
    assert back.startswith(oidc.redirect_uri + "/signed-out")
    await poll_until(lambda: oidc.logout_results, timeout=10)
    assert oidc.logout_results == [1]  # the one sign-in of that provider session ended
    with pytest.raises(IdentityError):
        await oidc.signin.authenticate(session.access_token)
    with pytest.raises(IdentityError):
        await oidc.signin.refresh(Refresh(refresh_token=session.refresh_token))
    # the same logout token again: refused (single use)
    with pytest.raises(IdentityError) as e:
        await oidc.use_case.backchannel_logout(
            BackchannelLogout(logout_token=oidc.logout_tokens[0])
        )
    assert e.value.code == "invalid_payload"
    # an ID token is not a logout token
    raw = await oidc.raw_token(oidc.other_client(CLIENT_ID, CLIENT_SECRET))
    with pytest.raises(IdentityError):
        await oidc.use_case.backchannel_logout(BackchannelLogout(logout_token=raw))


async def test_starts_per_address_are_limited(oidc):
    for _ in range(3):
        await oidc.use_case.begin(OidcStart(), address="192.0.2.1", starts_per_minute=3)
    with pytest.raises(IdentityError) as e:
        await oidc.use_case.begin(OidcStart(), address="192.0.2.1", starts_per_minute=3)
    assert e.value.code == "rate_limited"
    await oidc.use_case.begin(OidcStart(), address="192.0.2.2", starts_per_minute=3)
