"""Passwords (argon2id), signed, expiring role tokens (JWT, HS256), and short-lived signed
links (HMAC-SHA256) for the few URLs a browser must fetch without an Authorization header."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

if TYPE_CHECKING:
    from vtax.config import Settings

Role = Literal["taxpayer", "agent", "supervisor", "recorder"]
ROLES: tuple[str, ...] = get_args(Role)
STAFF_ROLES = ("agent", "supervisor")
T = TypeVar("T")
_ALGORITHM = "HS256"
_LINK_SUBJECT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_LINK_EXPIRY = re.compile(r"[0-9]{1,12}")
# argon2-cffi's defaults (RFC 9106, second recommendation): ~0.2-0.4 s and 64 MiB a hash here.
DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_KIB = 65536
DEFAULT_PARALLELISM = 4
_hasher = PasswordHasher(DEFAULT_TIME_COST, DEFAULT_MEMORY_KIB, DEFAULT_PARALLELISM)


class Unauthorized(Exception):
    """Missing, malformed, forged or expired credentials."""


class Busy(Exception):
    """Too many password checks are waiting already: refuse rather than queue without end."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Verify with the parameters stored in the hash (whatever cost it was made with)."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Passwords:
    """argon2id hashing off the event loop. A hash costs ~0.3 s of CPU and `memory_kib` of
    memory; run inline it stalls every connection of the node for that long. Here it runs on
    at most `threads` threads (argon2-cffi releases the GIL, so the loop keeps serving), and
    at most `max_waiting` calls wait for a thread: beyond that `Busy` is raised at once, so a
    flood costs bounded CPU, memory and latency. The parameters are settings; tests use cheap
    ones (verification always uses the parameters stored in the hash)."""

    def __init__(
        self,
        time_cost: int = DEFAULT_TIME_COST,
        memory_kib: int = DEFAULT_MEMORY_KIB,
        parallelism: int = DEFAULT_PARALLELISM,
        *,
        threads: int = 2,
        max_waiting: int = 32,
    ) -> None:
        if threads < 1 or max_waiting < 0:
            raise ValueError("threads >= 1 and max_waiting >= 0")
        self._hasher = PasswordHasher(time_cost, memory_kib, parallelism)
        self.threads, self.max_waiting = threads, max_waiting
        self._pool: ThreadPoolExecutor | None = None
        self._slots = 0  # calls running or waiting; at most threads + max_waiting
        self._dummy: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        return cls(
            settings.password_hash_time_cost,
            settings.password_hash_memory_kib,
            settings.password_hash_parallelism,
            threads=settings.password_hash_threads,
            max_waiting=settings.password_hash_max_waiting,
        )

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._slots >= self.threads + self.max_waiting:
            raise Busy("too many sign-ins are being checked; retry in a moment")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vtax-argon2")
        self._slots += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._slots -= 1

    async def hash(self, password: str) -> str:
        return await self._run(self.hash_sync, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        return await self._run(self.verify_sync, stored_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend what a real check costs (an unknown user takes as long as a wrong password)."""
        if self._dummy is None:
            self._dummy = await self.hash("not-a-real-password")
        await self.verify(self._dummy, password)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


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
