"""Kiosk device assertions. Staff register a kiosk with its Ed25519 public key (the private
key never leaves the kiosk). To sign someone in, the kiosk asks for a nonce, reads the ID
card, matches the live face against the card's chip portrait (its own hardware and consent
screen, outside this project: no face data reaches the server), and signs an assertion:

    compact JWS, header {"alg": "Ed25519", "kid": <kiosk id>, "typ": "vtax-kiosk+jwt"}
    payload {"kiosk": <kiosk id>, "nonce": <the server's>, "iat": <unix time>,
             "person": {"name", "document_type", "document_number"},
             "face": {"result": "match" | "no_match", "consent": true}}

The server checks the key is the kiosk's and the kiosk not revoked, the signature (Ed25519
only, by RFC 9864's fully-specified name `Ed25519`), that the nonce is one it issued to that kiosk and unused (taken once), and freshness.
Revoking a kiosk refuses its assertions and ends the sign-ins made at it."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from vtax.db import utcnow
from vtax.identity import InvalidIdentity
from vtax.identity.documents import Document, parse_document
from vtax.identity.state import IdentityState
from vtax.identity.tables import IdentityAudit, Kiosk

ASSERTION_TYPE = "vtax-kiosk+jwt"
KIOSK_ACR = 4  # the ID card's chip read and the live person matched to its portrait


class KioskRefused(Exception):
    """The assertion does not hold (the message says why; logged, not shown as is)."""


@dataclass(frozen=True, slots=True)
class KioskView:
    id: str
    name: str
    branch: str
    location: str
    public_key: str
    registered_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, k: Kiosk) -> KioskView:
        return cls(k.id, k.name, k.branch, k.location, k.public_key, k.registered_at, k.revoked_at)


@dataclass(frozen=True, slots=True)
class KioskAssertion:
    kiosk: KioskView
    document: Document
    name: str
    signed_at: float


def _raw_key(public_key: str) -> str:
    """A raw Ed25519 public key, base64url without padding (32 bytes)."""
    try:
        raw = base64.urlsafe_b64decode(public_key + "=" * (-len(public_key) % 4))
    except ValueError:
        raise ValueError("the public key is not base64url") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Kiosks:
    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        state: IdentityState,
        *,
        nonce_ttl_s: float = 120.0,
        max_age_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions, self.state = sessions, state
        self.nonce_ttl_s, self.max_age_s, self.clock = nonce_ttl_s, max_age_s, clock

    async def register(
        self, name: str, branch: str, location: str, public_key: str, staff_id: str
    ) -> KioskView:
        key = _raw_key(public_key)
        for text, limit in ((name, 100), (branch, 100), (location, 200)):
            if not 1 <= len(text) <= limit or "\x00" in text:
                raise ValueError(f"name, branch and location have 1 to {limit} characters")
        async with self.sessions() as db, db.begin():
            k = Kiosk(
                id=str(uuid.uuid4()),
                name=name,
                branch=branch,
                location=location,
                public_key=key,
                registered_by=staff_id,
                registered_at=utcnow(),
            )
            db.add(k)
            db.add(
                IdentityAudit(
                    actor_role="supervisor",
                    actor_id=staff_id,
                    kind="kiosk_registered",
                    subject=k.id,
                    data={"name": name, "branch": branch, "location": location},
                )
            )
        return KioskView.of(k)

    async def revoke(self, kiosk_id: str, staff_id: str) -> None:
        async with self.sessions() as db, db.begin():
            result = await db.execute(
                update(Kiosk)
                .where(Kiosk.id == kiosk_id, Kiosk.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_by=staff_id)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise KeyError(kiosk_id)
            db.add(
                IdentityAudit(
                    actor_role="supervisor",
                    actor_id=staff_id,
                    kind="kiosk_revoked",
                    subject=kiosk_id,
                    data={},
                )
            )

    async def get(self, kiosk_id: str) -> KioskView | None:
        async with self.sessions() as db:
            k = await db.get(Kiosk, kiosk_id)
        return None if k is None else KioskView.of(k)

    async def active(self, kiosk_id: str) -> bool:
        async with self.sessions() as db:
            found = await db.scalar(
                select(Kiosk.id).where(Kiosk.id == kiosk_id, Kiosk.revoked_at.is_(None))
            )
        return found is not None

    async def challenge(self, kiosk_id: str) -> str:
        """A nonce for the kiosk's next assertion (single use, `nonce_ttl_s`)."""
        if not await self.active(kiosk_id):
            raise KioskRefused("unknown or revoked kiosk")
        nonce = secrets.token_urlsafe(32)
        await self.state.put_once("kiosk-nonce", nonce, kiosk_id, self.nonce_ttl_s)
        return nonce

    async def verify(self, assertion: str) -> KioskAssertion:
        parts = assertion.split(".") if isinstance(assertion, str) and len(assertion) < 8192 else []
        if len(parts) != 3:
            raise KioskRefused("not a compact JWS")
        try:
            header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
        except (ValueError, UnicodeDecodeError):
            raise KioskRefused("not a compact JWS") from None
        if not isinstance(header, dict) or header.get("alg") != "Ed25519":
            raise KioskRefused("kiosk assertions are signed with Ed25519")
        if header.get("typ") != ASSERTION_TYPE or not isinstance(header.get("kid"), str):
            raise KioskRefused("not a kiosk assertion")
        kiosk = await self.get(header["kid"][:36])
        if kiosk is None or kiosk.revoked_at is not None:
            raise KioskRefused("unknown or revoked kiosk")
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": kiosk.public_key})
        try:
            payload = json.loads(
                jws.deserialize_compact(assertion, key, algorithms=["Ed25519"]).payload
            )
        except (JoseError, ValueError):
            raise KioskRefused("the signature is not the kiosk's") from None
        if not isinstance(payload, dict) or payload.get("kiosk") != kiosk.id:
            raise KioskRefused("the assertion names another kiosk")
        iat = payload.get("iat")
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise KioskRefused("the assertion has no time")
        if abs(self.clock() - iat) > self.max_age_s:
            raise KioskRefused("the assertion is stale (or from the future)")
        nonce = payload.get("nonce")
        issued_to = (
            await self.state.take_once("kiosk-nonce", nonce) if isinstance(nonce, str) else None
        )
        if issued_to != kiosk.id:
            raise KioskRefused("the nonce is unknown, used, expired or another kiosk's")
        face = payload.get("face")
        if not isinstance(face, dict) or face.get("consent") is not True:
            raise KioskRefused("no face check with the person's consent")
        if face.get("result") != "match":
            raise KioskRefused("the face did not match the card")
        person = payload.get("person")
        if not isinstance(person, dict):
            raise KioskRefused("the assertion names no person")
        try:
            document = parse_document(
                str(person.get("document_type", "")), str(person.get("document_number", ""))
            )
        except InvalidIdentity as exc:
            raise KioskRefused(f"the card's number is not valid: {exc}") from None
        name = str(person.get("name", ""))[:100]
        if not name:
            raise KioskRefused("the assertion names no person")
        return KioskAssertion(kiosk, document, name, float(iat))
