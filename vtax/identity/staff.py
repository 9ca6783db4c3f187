"""Staff second factor and lockout: a TOTP secret per account (RFC 6238 with pyotp, 30 s
steps, one step of drift either way, each step usable once), kept sealed with AES-GCM under a
key derived from the deployment secret; failed sign-ins (password or code) counted per
account, locked out after `max_failures` for `lockout_s`, audited; a supervisor unlocks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtax.db import utcnow
from vtax.identity.tables import IdentityAudit, StaffSecurity

ISSUER_NAME = "V-Tax"


def _aead(secret: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"vtax totp seal\0" + secret.encode()).digest())


def seal(secret: str, user_id: str, totp_secret: str) -> str:
    nonce = os.urandom(12)
    sealed = _aead(secret).encrypt(nonce, totp_secret.encode(), user_id.encode())
    return "v1:" + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(secret: str, user_id: str, sealed: str) -> str:
    raw = base64.urlsafe_b64decode(sealed.removeprefix("v1:"))
    return _aead(secret).decrypt(raw[:12], raw[12:], user_id.encode()).decode()


class StaffFactors:
    def __init__(
        self,
        sessions: async_sessionmaker[Any],
        secret: str,
        *,
        max_failures: int = 5,
        lockout_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions, self.secret = sessions, secret
        self.max_failures, self.lockout_s, self.clock = max_failures, lockout_s, clock

    async def _row(self, db: AsyncSession, user_id: str) -> StaffSecurity:
        row = await db.get(StaffSecurity, user_id, with_for_update=True)
        if row is None:
            row = StaffSecurity(user_id=user_id, totp_confirmed=False, totp_last_step=0, failures=0)
            db.add(row)
        return row

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def locked_for(self, user_id: str) -> float:
        """Seconds the account stays locked (0: not locked)."""
        async with self.sessions() as db:
            row = await db.get(StaffSecurity, user_id)
        if row is None or row.locked_until is None:
            return 0.0
        return max(0.0, (row.locked_until - self._now()).total_seconds())

    async def failed(self, user_id: str, what: str) -> bool:
        """Count a failed sign-in; True if this one locked the account."""
        async with self.sessions() as db, db.begin():
            row = await self._row(db, user_id)
            row.failures += 1
            row.updated_at = utcnow()
            if row.failures < self.max_failures:
                return False
            row.failures = 0
            row.locked_until = datetime.fromtimestamp(self.clock() + self.lockout_s, UTC)
            db.add(
                IdentityAudit(
                    actor_role="system",
                    actor_id=None,
                    kind="staff_locked",
                    subject=user_id,
                    data={"after": what, "for_s": self.lockout_s},
                )
            )
            return True

    async def succeeded(self, user_id: str) -> None:
        async with self.sessions() as db, db.begin():
            row = await db.get(StaffSecurity, user_id)
            if row is not None and (row.failures or row.locked_until):
                row.failures, row.locked_until, row.updated_at = 0, None, utcnow()

    async def unlock(self, user_id: str, supervisor_id: str) -> None:
        async with self.sessions() as db, db.begin():
            row = await self._row(db, user_id)
            row.failures, row.locked_until, row.updated_at = 0, None, utcnow()
            db.add(
                IdentityAudit(
                    actor_role="supervisor",
                    actor_id=supervisor_id,
                    kind="staff_unlocked",
                    subject=user_id,
                    data={},
                )
            )

    async def enroll(self, user_id: str, username: str) -> tuple[str, str]:
        """A new secret (not in force until confirmed with a code): (secret, otpauth URI)."""
        totp_secret = pyotp.random_base32()
        async with self.sessions() as db, db.begin():
            row = await self._row(db, user_id)
            if row.totp_confirmed:
                raise ValueError("a second factor is already set up")
            row.totp_sealed = seal(self.secret, user_id, totp_secret)
            row.updated_at = utcnow()
        uri = pyotp.TOTP(totp_secret).provisioning_uri(name=username, issuer_name=ISSUER_NAME)
        return totp_secret, uri

    async def has_factor(self, user_id: str) -> bool:
        async with self.sessions() as db:
            row = await db.get(StaffSecurity, user_id)
        return row is not None and row.totp_confirmed

    async def check(self, user_id: str, code: str, *, confirming: bool = False) -> bool:
        """The code is right for now (+-1 step) and its step was not used yet; `confirming`
        turns an enrolled secret on."""
        async with self.sessions() as db, db.begin():
            row = await db.get(StaffSecurity, user_id, with_for_update=True)
            # confirming needs an enrolled secret not yet on; a sign-in needs one that is on
            if row is None or row.totp_sealed is None or row.totp_confirmed == confirming:
                return False
            totp = pyotp.TOTP(unseal(self.secret, user_id, row.totp_sealed))
            now = self._now()
            current = totp.timecode(now)
            for step in (current - 1, current, current + 1):
                good = totp.generate_otp(step)
                if hmac.compare_digest(good.encode(), code.encode()) and step > row.totp_last_step:
                    row.totp_last_step = step
                    row.totp_confirmed = True
                    row.updated_at = utcnow()
                    return True
            return False
