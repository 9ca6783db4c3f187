"""Kiosk device assertions: registered by supervisors with an Ed25519 key; a signed
assertion over a server nonce signs the person in at level 4 and records the kiosk; forged,
tampered, stale, replayed, another kiosk's nonce, no face match or consent, and a revoked
kiosk are refused, and revoking ends the sign-ins made at it. On both state backends."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jws
from joserfc.jwk import OKPKey

from tests.identity.numbers import resident_id
from tests.identity.world import TODAY, make_world
from vtax.app.identity import IdentityError, KioskSignIn, TaxpayerSignIn
from vtax.auth import Principal
from vtax.contract.identity import (
    KioskChallengeRequest,
    KioskRegister,
    Refresh,
)
from vtax.contract.identity import (
    KioskSignIn as KioskSignInBody,
)
from vtax.identity.kiosk import ASSERTION_TYPE, Kiosks
from vtax.identity.tokens import TaxpayerTokens

BOSS = Principal("boss-id", "supervisor", time.time() + 600)
AGENT = Principal("agent-id", "agent", time.time() + 600)
RID = resident_id("44030019800101123")


def public(key: OKPKey) -> str:
    return str(key.as_dict()["x"])


class Device:
    """A kiosk: its private key never leaves it."""

    def __init__(self, key: OKPKey | None = None) -> None:
        self.key = key or OKPKey.generate_key("Ed25519")
        self.id = ""

    def sign(
        self,
        nonce: str,
        *,
        iat: float | None = None,
        face="match",
        consent=True,
        kid: str | None = None,
        kiosk: str | None = None,
        key: OKPKey | None = None,
        number: str = RID,
    ) -> str:
        payload = {
            "kiosk": kiosk or self.id,
            "nonce": nonce,
            "iat": int(time.time() if iat is None else iat),
            "person": {
                "name": "Li Ming",
                "document_type": "resident_id",
                "document_number": number,
            },
            "face": {"result": face, "consent": consent},
        }
        header = {"alg": "Ed25519", "kid": kid or self.id, "typ": ASSERTION_TYPE}
        return jws.serialize_compact(
            header, json.dumps(payload), key or self.key, algorithms=["Ed25519"]
        )


@pytest.fixture
async def kiosk_world(sqlite_db, state):
    world = await make_world(sqlite_db, state)
    kiosks = Kiosks(sqlite_db.sessions, state, nonce_ttl_s=60, max_age_s=30)
    tokens = TaxpayerTokens(
        world.issuer,
        sqlite_db.registry,
        state,
        access_ttl_s=900,
        refresh_ttl_s=3600,
        today=lambda: TODAY,
        device_active=kiosks.active,
    )
    signin = TaxpayerSignIn(tokens, sqlite_db.registry)
    use_case = KioskSignIn(kiosks, sqlite_db.sessions, signin)
    device = Device()
    registered = await use_case.register(
        BOSS,
        KioskRegister(
            name="Kiosk 3",
            branch="Shunde tax office",
            location="Lecong village",
            public_key=public(device.key),
        ),
    )
    device.id = registered.kiosk_id
    return use_case, signin, device


async def nonce(use_case, device) -> str:
    return (await use_case.challenge(KioskChallengeRequest(kiosk_id=device.id))).nonce


async def refused(use_case, assertion: str) -> None:
    with pytest.raises(IdentityError) as e:
        await use_case.sign_in(KioskSignInBody(assertion=assertion))
    assert e.value.code == "sign_in_failed"


async def test_sign_in_at_a_kiosk(kiosk_world):
    use_case, signin, device = kiosk_world
    session = await use_case.sign_in(
        KioskSignInBody(assertion=device.sign(await nonce(use_case, device)))
    )
    assert (session.method, session.acr, session.person.name) == ("kiosk", 4, "Li Ming")
    assert (
        session.kiosk.branch == "Shunde tax office" and session.kiosk.location == "Lecong village"
    )
    p = await signin.authenticate(session.access_token)
    assert p.device == device.id and p.acr == 4
    signin.require_step_up(p)  # a kiosk sign-in is level 4: enough for step-up while fresh


async def test_only_supervisors_register_and_keys_are_checked(kiosk_world):
    use_case, _, device = kiosk_world
    body = KioskRegister(name="K", branch="B", location="L", public_key=public(device.key))
    with pytest.raises(IdentityError) as e:
        await use_case.register(AGENT, body)
    assert e.value.code == "forbidden"
    with pytest.raises(ValueError):
        KioskRegister(name="K", branch="B", location="L", public_key="too-short")


async def test_forged_and_tampered(kiosk_world):
    use_case, _, device = kiosk_world
    n = await nonce(use_case, device)
    await refused(use_case, device.sign(n, key=OKPKey.generate_key("Ed25519")))
    good = device.sign(n)
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["person"]["name"] = "Someone Else"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    await refused(use_case, f"{head}.{forged_body}.{sig}")
    hs = (
        base64.urlsafe_b64encode(
            json.dumps({"alg": "HS256", "kid": device.id, "typ": ASSERTION_TYPE}).encode()
        )
        .decode()
        .rstrip("=")
    )
    await refused(use_case, f"{hs}.{body}.{sig}")
    await refused(use_case, device.sign(n, kid="0" * 36))
    # the forgeries did not burn the nonce: the real assertion still signs in
    await use_case.sign_in(KioskSignInBody(assertion=good))


async def test_stale_future_and_replayed(kiosk_world):
    use_case, _, device = kiosk_world
    await refused(use_case, device.sign(await nonce(use_case, device), iat=time.time() - 45))
    await refused(use_case, device.sign(await nonce(use_case, device), iat=time.time() + 45))
    good = device.sign(await nonce(use_case, device))
    await use_case.sign_in(KioskSignInBody(assertion=good))
    await refused(use_case, good)  # replayed
    await refused(use_case, device.sign("made-up-nonce-" + "x" * 20))


async def test_another_kiosks_nonce(kiosk_world):
    use_case, _, device = kiosk_world
    other = Device()
    other.id = (
        await use_case.register(
            BOSS, KioskRegister(name="K2", branch="B", location="L", public_key=public(other.key))
        )
    ).kiosk_id
    await refused(use_case, device.sign(await nonce(use_case, other)))


async def test_face_result_and_consent(kiosk_world):
    use_case, _, device = kiosk_world
    await refused(use_case, device.sign(await nonce(use_case, device), face="no_match"))
    await refused(use_case, device.sign(await nonce(use_case, device), consent=False))
    await refused(use_case, device.sign(await nonce(use_case, device), number=RID[:-1] + "0"))


async def test_revoking_a_kiosk_stops_it_at_once(kiosk_world):
    use_case, signin, device = kiosk_world
    session = await use_case.sign_in(
        KioskSignInBody(assertion=device.sign(await nonce(use_case, device)))
    )
    pending = device.sign(await nonce(use_case, device))
    revoked = await use_case.revoke(BOSS, device.id)
    assert revoked.revoked_at is not None
    await refused(use_case, pending)
    with pytest.raises(IdentityError):
        await use_case.challenge(KioskChallengeRequest(kiosk_id=device.id))
    with pytest.raises(IdentityError):
        await signin.authenticate(session.access_token)
    with pytest.raises(IdentityError):
        await signin.refresh(Refresh(refresh_token=session.refresh_token))
    with pytest.raises(IdentityError) as e:
        await use_case.revoke(BOSS, device.id)
    assert e.value.code == "not_found"


async def test_challenges_per_kiosk_are_limited(kiosk_world):
    use_case, _, device = kiosk_world
    use_case.challenges_per_minute = 3
    for _ in range(3):
        await nonce(use_case, device)
    with pytest.raises(IdentityError) as e:
        await nonce(use_case, device)
    assert e.value.code == "rate_limited" and 0 < e.value.retry_after_s <= 60
