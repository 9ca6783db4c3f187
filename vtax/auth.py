"""Passwords (argon2id) and signed, expiring role tokens (JWT, HS256)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, get_args

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

Role = Literal["taxpayer", "agent", "supervisor", "recorder"]
ROLES: tuple[str, ...] = get_args(Role)
STAFF_ROLES = ("agent", "supervisor")
_ALGORITHM = "HS256"
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
    """Who a token speaks for."""

    subject: str
    role: Role
    expires_at: float
    name: str = ""


class TokenIssuer:
    def __init__(self, key: str, ttl_s: int) -> None:
        if len(key) < 16:
            raise ValueError("the signing key must have at least 16 characters")
        self._key = key
        self.ttl_s = ttl_s

    def issue(self, subject: str, role: Role, name: str = "", now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims = {"sub": subject, "role": role, "name": name, "iat": issued}
        claims["exp"] = issued + self.ttl_s
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

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
        if role not in ROLES or not isinstance(claims["sub"], str):
            raise Unauthorized("the token is not valid")
        return Principal(claims["sub"], role, float(claims["exp"]), str(claims.get("name", "")))
