"""Passwords (argon2id), signed, expiring role tokens (JWT, HS256), and short-lived signed
links (HMAC-SHA256) for the few URLs a browser must fetch without an Authorization header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

Role = Literal["taxpayer", "agent", "supervisor", "recorder"]
ROLES: tuple[str, ...] = get_args(Role)
STAFF_ROLES = ("agent", "supervisor")
_ALGORITHM = "HS256"
_LINK_SUBJECT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_LINK_EXPIRY = re.compile(r"[0-9]{1,12}")
_hasher = PasswordHasher()


class Unauthorized(Exception):
    """Missing, malformed, forged or expired credentials."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token speaks for. A taxpayer token (vtax/identity/tokens.py) also says for which
    enterprise and in which role the person acts, how and at what level they proved who they
    are, when, and the person's token version (a newer version revokes it)."""

    subject: str
    role: Role
    expires_at: float
    name: str = ""
    acting_for: str = ""  # an enterprise id; empty: the person acts for themselves
    acting_role: str = ""  # a grant role (legal_representative, ...)
    method: str = ""  # sms | oidc | kiosk
    acr: int = 0  # assurance level 3..5; 0 for staff and legacy tokens
    auth_time: float = 0.0
    version: int = -1  # the person's token version; -1: not versioned (staff, legacy)
    family: str = ""  # the refresh family the token was issued with
    device: str = ""  # the kiosk the person signed in at, if any


# Claims a taxpayer token may carry beyond sub/role/name/iat/exp, and their types.
_EXTRA_CLAIMS: dict[str, type | tuple[type, ...]] = {
    "act": str,
    "act_role": str,
    "amr": str,
    "acr": int,
    "auth_time": (int, float),
    "ver": int,
    "fam": str,
    "dev": str,
}
_RESERVED = {"sub", "role", "name", "iat", "exp", "typ"}


class TokenIssuer:
    def __init__(self, key: str, ttl_s: int) -> None:
        if len(key) < 16:
            raise ValueError("the signing key must have at least 16 characters")
        self._key = key
        self.ttl_s = ttl_s
        # links get their own key, derived from the same secret (a link's MAC is never a
        # valid JWT signature, nor the other way round)
        self._link_key = hashlib.sha256(b"vtax signed link\0" + key.encode()).digest()

    def issue(
        self,
        subject: str,
        role: Role,
        name: str = "",
        now: float | None = None,
        *,
        ttl_s: int | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """An access token; `claims` are a taxpayer token's extras (see `_EXTRA_CLAIMS`)."""
        issued = int(time.time() if now is None else now)
        body: dict[str, Any] = {"sub": subject, "role": role, "name": name, "iat": issued}
        body["exp"] = issued + (self.ttl_s if ttl_s is None else ttl_s)
        for key, value in (claims or {}).items():
            if key in _RESERVED or key not in _EXTRA_CLAIMS:
                raise ValueError(f"claim {key!r} cannot be set")
            body[key] = value
        return jwt.encode(body, self._key, algorithm=_ALGORITHM)

    def verify(self, token: object) -> Principal:
        if not isinstance(token, str) or not token:
            raise Unauthorized("a token is required")
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("the token is not valid") from None
        role = claims.get("role")
        if role not in ROLES or not isinstance(claims["sub"], str) or "typ" in claims:
            raise Unauthorized("the token is not valid")
        for key, kind in _EXTRA_CLAIMS.items():
            value = claims.get(key)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise Unauthorized("the token is not valid")
        return Principal(
            claims["sub"],
            role,
            float(claims["exp"]),
            str(claims.get("name", "")),
            acting_for=claims.get("act", ""),
            acting_role=claims.get("act_role", ""),
            method=claims.get("amr", ""),
            acr=claims.get("acr", 0),
            auth_time=float(claims.get("auth_time", 0.0)),
            version=claims.get("ver", -1),
            family=claims.get("fam", ""),
            device=claims.get("dev", ""),
        )

    # ---- signed links ----------------------------------------------------------------------

    def _link_mac(self, purpose: str, subject: str, resource: str, expires: int) -> str:
        message = "\0".join((purpose, subject, str(expires), resource)).encode()
        digest = hmac.new(self._link_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def link_token(
        self, purpose: str, subject: str, resource: str, ttl_s: int, now: float | None = None
    ) -> tuple[str, int]:
        """(token, expiry as a unix time): a permission for `subject` to fetch exactly
        `resource` (e.g. a path with its canonical query) for `purpose`, until the expiry.
        Stateless, so every node with the same key accepts it."""
        if not _LINK_SUBJECT.fullmatch(subject):
            raise ValueError("a link subject is 1..64 characters of [A-Za-z0-9_.-]")
        expires = int((time.time() if now is None else now) + ttl_s)
        return f"{expires}~{subject}~{self._link_mac(purpose, subject, resource, expires)}", expires

    def verify_link(
        self, token: object, purpose: str, resource: str, now: float | None = None
    ) -> tuple[str, int]:
        """(subject, expiry) of a link token for this purpose and resource; `Unauthorized`
        if it is malformed, forged, for another resource or purpose, or expired."""
        parts = token.split("~") if isinstance(token, str) and len(token) <= 200 else []
        if len(parts) != 3 or not (
            _LINK_EXPIRY.fullmatch(parts[0]) and _LINK_SUBJECT.fullmatch(parts[1])
        ):
            raise Unauthorized("the link is not valid")
        expires, subject, mac = int(parts[0]), parts[1], parts[2]
        good = self._link_mac(purpose, subject, resource, expires)
        if not hmac.compare_digest(good.encode(), mac.encode("utf-8", "replace")):
            raise Unauthorized("the link is not valid (or not for this request)")
        if expires < (time.time() if now is None else now):
            raise Unauthorized("the link has expired")
        return subject, expires
