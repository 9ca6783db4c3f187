"""OpenID Connect relying party for the province's identity platform: the authorization code
flow with PKCE (S256), state and nonce; ID-token validation with every check written out
(issuer, audience and azp, expiry and issue time with a leeway, nonce, auth_time, acr, the
signature by a key of the provider's JWKS, re-fetched when an unknown key id appears: key
rotation); RP-initiated logout; back-channel logout tokens.

Authlib supplies the OAuth 2.0 pieces (the authorization request, the token request body,
PKCE's S256 challenge, random tokens) and its JOSE library, joserfc, the JWS/JWK work. The
claims are checked here, not by a library default: an audience check that a library skips
when no audience is configured is how ID tokens of other clients get accepted.

The state of a flow (nonce, PKCE verifier, the level asked) lives in IdentityState for
`flow_ttl_s` and is taken once: a replayed or forged `state` finds nothing."""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from vtax.identity.state import IdentityState

ALLOWED_ALGORITHMS = ("RS256", "PS256", "ES256", "Ed25519")  # asymmetric only
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ACR_LEVELS = {"3": 3, "4": 4, "5": 5}


class OidcError(Exception):
    """The provider's answer failed a check (the message says which; never shown raw to
    the taxpayer, logged)."""


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    post_logout_redirect_uri: str = ""
    scopes: tuple[str, ...] = ("openid", "profile", "vtax")
    clock_skew_s: int = 60
    flow_ttl_s: float = 600.0
    jwks_min_refresh_s: float = 10.0  # at most one re-fetch for unknown keys per this
    metadata_ttl_s: float = 3600.0
    http_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class IdToken:
    """A validated ID token's facts."""

    sub: str
    acr: int
    auth_time: float
    sid: str
    claims: dict[str, Any] = field(repr=False)
    # what the sign-in was started for (`begin(context=...)`: a step-up names its person)
    context: dict[str, str] = field(default_factory=dict)


def _b64json(part: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise OidcError("the token is not a JWT") from None
    if not isinstance(value, dict):
        raise OidcError("the token is not a JWT")
    return value


class OidcClient:
    def __init__(
        self,
        config: OidcConfig,
        state: IdentityState,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.state, self.clock, self.monotonic = config, state, clock, monotonic
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = -1e18
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.http_timeout_s)
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._session().get(url) as r:
                if r.status != 200:
                    raise OidcError(f"{url} answered {r.status}")
                data = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OidcError(f"the provider is unreachable: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise OidcError(f"{url} did not answer a JSON object")
        return data

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached), whose issuer must be ours exactly."""
        now = self.monotonic()
        if self._metadata is None or now - self._metadata_at > self.config.metadata_ttl_s:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            meta = await self._get_json(url)
            if meta.get("issuer") != self.config.issuer:
                raise OidcError("the discovery document names another issuer")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(meta.get(key), str):
                    raise OidcError(f"the discovery document has no {key}")
            self._metadata, self._metadata_at = meta, now
        return self._metadata

    async def _key_set(self, kid: str | None) -> KeySet:
        """The JWKS, fetched again when a token names a key id it does not hold (rotation),
        at most once per `jwks_min_refresh_s`."""
        known = self._keys is not None and (
            kid is None or any(k.kid == kid for k in self._keys.keys)
        )
        if known:
            assert self._keys is not None
            return self._keys
        if self._keys is None or self.monotonic() - self._keys_at >= self.config.jwks_min_refresh_s:
            meta = await self.metadata()
            jwks = await self._get_json(meta["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError):
                raise OidcError("the provider's JWKS cannot be read") from None
            self._keys_at = self.monotonic()
        assert self._keys is not None
        return self._keys

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        """The claims of a JWT whose signature a key of the provider's JWKS verifies."""
        parts = token.split(".") if isinstance(token, str) and len(token) < 16384 else []
        if len(parts) != 3:
            raise OidcError("the token is not a signed JWT")
        header = _b64json(parts[0])
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise OidcError(f"the token's algorithm {alg!r} is not accepted")
        keys = await self._key_set(kid if isinstance(kid, str) else None)
        if isinstance(kid, str) and not any(k.kid == kid for k in keys.keys):
            raise OidcError("the token is signed by a key the provider does not publish")
        try:
            decoded = jwt.decode(token, keys, algorithms=[alg])
        except JoseError as exc:
            raise OidcError(f"the token's signature does not verify: {exc.error}") from None
        return dict(decoded.claims)

    def _check_times(self, claims: dict[str, Any], now: float) -> None:
        skew = self.config.clock_skew_s
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise OidcError("the token has no expiry")
        if now > exp + skew:
            raise OidcError("the token has expired")
        if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now + skew:
            raise OidcError("the token's issue time is missing or in the future")

    def _check_audience(self, claims: dict[str, Any]) -> None:
        if claims.get("iss") != self.config.issuer:
            raise OidcError("the token is from another issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self.config.client_id not in audiences:
            raise OidcError("the token is for another audience")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise OidcError("the token was issued to another party (azp)")

    async def validate_id_token(
        self, token: str, nonce: str, min_acr: int = 0, now: float | None = None
    ) -> IdToken:
        """Every check of OpenID Connect Core 3.1.3.7, written out."""
        claims = await self._verified_claims(token)
        t = self.clock() if now is None else now
        self._check_audience(claims)
        self._check_times(claims, t)
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise OidcError("the token's nonce is not this sign-in's")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise OidcError("the token has no subject")
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
            raise OidcError("the token has no auth_time")
        if auth_time > t + self.config.clock_skew_s:
            raise OidcError("the token's auth_time is in the future")
        acr = ACR_LEVELS.get(str(claims.get("acr", "3")))
        if acr is None:
            raise OidcError("the token's acr is not one of the levels 3, 4, 5")
        if acr < min_acr:
            raise OidcError(f"the sign-in reached level {acr}, {min_acr} was asked")
        sid = claims.get("sid", "")
        return IdToken(sub, acr, float(auth_time), sid if isinstance(sid, str) else "", claims)

    # ---- the flow ---------------------------------------------------------------------------

    async def begin(
        self,
        *,
        min_acr: int = 0,
        max_age_s: int | None = None,
        login_hint: str = "",
        ui_locales: str = "",
        context: dict[str, str] | None = None,
    ) -> str:
        """The provider's authorization URL for a new sign-in (state, nonce and the PKCE
        verifier kept for `flow_ttl_s`, with `context`, which `finish` gives back)."""
        meta = await self.metadata()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        flow = {
            "nonce": nonce,
            "verifier": verifier,
            "acr": min_acr,
            "max_age": max_age_s,
            "context": context or {},
        }
        await self.state.put_once("oidc", state, json.dumps(flow), self.config.flow_ttl_s)
        extra: dict[str, Any] = {
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        # the acceptable levels, lowest first: the provider then states the level in `acr`
        extra["acr_values"] = " ".join(str(n) for n in range(max(3, min_acr), 6))
        if min_acr:
            extra["prompt"] = "login"
        if max_age_s is not None:
            extra["max_age"] = max_age_s
        if login_hint:
            extra["login_hint"] = login_hint
        if ui_locales:
            extra["ui_locales"] = ui_locales
        uri: str = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.config.client_id,
            "code",
            redirect_uri=self.config.redirect_uri,
            scope=" ".join(self.config.scopes),
            state=state,
            **extra,
        )
        return uri

    async def finish(self, code: str, state: str) -> tuple[IdToken, str]:
        """The callback: the flow's state taken once, the code exchanged with the PKCE
        verifier, the ID token validated; (the token's facts, the raw ID token)."""
        kept = await self.state.take_once("oidc", state)
        if kept is None:
            raise OidcError("unknown, used or expired state")
        flow = json.loads(kept)
        meta = await self.metadata()
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.config.redirect_uri,
            code_verifier=flow["verifier"],
        )
        # client_secret_basic: each part form-urlencoded first (RFC 6749 section 2.3.1)
        pair = (
            f"{quote(self.config.client_id, safe='')}:{quote(self.config.client_secret, safe='')}"
        )
        auth = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            async with self._session().post(
                meta["token_endpoint"],
                data=body,
                headers={
                    "Authorization": auth,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            ) as r:
                answer = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError(f"the token endpoint failed: {type(exc).__name__}") from None
        if status != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise OidcError(f"the token endpoint refused the code: {error or status}")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the token endpoint gave no ID token")
        token = await self.validate_id_token(id_token, flow["nonce"], int(flow["acr"]))
        max_age = flow.get("max_age")
        # max_age asked: the proof must be that fresh (OpenID Connect Core 3.1.3.7, item 13)
        if (
            max_age is not None
            and self.clock() - token.auth_time > max_age + self.config.clock_skew_s
        ):
            raise OidcError(f"the sign-in is older than the {max_age} s asked for")
        access = answer.get("access_token")
        if isinstance(meta.get("userinfo_endpoint"), str) and isinstance(access, str):
            token = await self._with_userinfo(token, meta["userinfo_endpoint"], access)
        context = flow.get("context") or {}
        return replace(token, context={str(k): str(v) for k, v in context.items()}), id_token

    async def _with_userinfo(self, token: IdToken, endpoint: str, access: str) -> IdToken:
        """The profile claims from the UserInfo endpoint (a provider may keep them out of the
        ID token); its `sub` must be the ID token's (OpenID Connect Core 5.3.2). What the ID
        token says wins."""
        try:
            async with self._session().get(
                endpoint, headers={"Authorization": f"Bearer {access}"}
            ) as r:
                info = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError(f"the userinfo endpoint failed: {type(exc).__name__}") from None
        if status != 200 or not isinstance(info, dict):
            raise OidcError(f"the userinfo endpoint answered {status}")
        if info.get("sub") != token.sub:
            raise OidcError("the userinfo is about another subject")
        return replace(token, claims={**info, **token.claims})

    async def end_session_url(self, id_token_hint: str = "", state: str = "") -> str | None:
        """RP-initiated logout: where to send the browser (None if the provider has none)."""
        meta = await self.metadata()
        endpoint = meta.get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        params = {"client_id": self.config.client_id}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        if self.config.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = self.config.post_logout_redirect_uri
        if state:
            params["state"] = state
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    async def validate_logout_token(self, token: str, now: float | None = None) -> tuple[str, str]:
        """A back-channel logout token (OpenID Connect Back-Channel Logout 1.0, 2.6):
        (sub, sid), either may be empty but not both; each token is accepted once."""
        claims = await self._verified_claims(token)
        t = self.clock() if now is None else now
        self._check_audience(claims)
        self._check_times(claims, t)
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
            raise OidcError("not a back-channel logout token")
        if "nonce" in claims:
            raise OidcError("a logout token has no nonce")
        sub, sid, jti = claims.get("sub", ""), claims.get("sid", ""), claims.get("jti")
        if not isinstance(sub, str) or not isinstance(sid, str) or not (sub or sid):
            raise OidcError("a logout token names a subject or a session")
        if not isinstance(jti, str) or not jti:
            raise OidcError("a logout token has a jti")
        ttl = max(1.0, float(claims["exp"]) + self.config.clock_skew_s - t)
        if not await self.state.claim_once("oidc-logout", jti, ttl):
            raise OidcError("the logout token was used already")
        return sub, sid
