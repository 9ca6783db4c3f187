"""Taxpayer tokens: a short-lived access token (the project's HS256 JWT, vtax/auth.py) that
says who the person is, for which enterprise and in which role they act, how and at what
level they signed in and when; and an opaque refresh token, rotated at each use, whose
reuse revokes its whole family (RFC 9700 section 4.14.2).

Revocation: each person has a token version (identity_people.token_version). An access token
carries the version it was issued under; `authenticate` refuses it once the version moved
(sign-out everywhere, a disabled person), on every node at once since the version lives in
the database. Refresh families carry it too, so they die with it."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import date

from vtax.auth import Principal, TokenIssuer, Unauthorized
from vtax.identity.registry import ActiveGrant, PersonRecord, Registry
from vtax.identity.state import IdentityState

_REFRESH_PREFIX = "vrt1"


class RefreshReused(Unauthorized):
    """A refresh token that was already rotated: its family is revoked."""


class ActForDenied(Exception):
    """No grant in force lets the person act for that enterprise in that role."""


class StepUpRequired(Exception):
    def __init__(self, acr: int, max_age_s: int) -> None:
        super().__init__(f"a sign-in at level {acr} within {max_age_s} s is needed")
        self.acr, self.max_age_s = acr, max_age_s


@dataclass(frozen=True, slots=True)
class SignIn:
    """How the person proved who they are (what the tokens carry)."""

    method: str  # sms | oidc | kiosk
    acr: int  # 3 name and number checked, 4 live person matched, 5 in person / certificate
    auth_time: float  # Unix time of that proof
    sid: str = ""  # the provider's session id (OIDC back-channel logout), if any
    device: str = ""  # the kiosk that vouched, if any


@dataclass(frozen=True, slots=True)
class FamilyRecord:
    person_id: str
    version: int
    method: str
    acr: int
    auth_time: float
    enterprise_id: str = ""
    role: str = ""
    sid: str = ""
    device: str = ""


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in_s: int
    principal: Principal
    person: PersonRecord
    acting: ActiveGrant | None


def _hash(token_id: str) -> str:
    return hashlib.sha256(token_id.encode()).hexdigest()


def parse_refresh(token: str) -> tuple[str, str]:
    parts = token.split(".") if isinstance(token, str) and len(token) < 200 else []
    if len(parts) != 3 or parts[0] != _REFRESH_PREFIX or not all(parts[1:]):
        raise Unauthorized("the refresh token is not valid")
    return parts[1], parts[2]


def require_step_up(
    principal: Principal, acr: int, max_age_s: int, now: float | None = None
) -> None:
    """Risky items: the token's sign-in must be at least level `acr` and at most
    `max_age_s` old, else StepUpRequired (the page signs in again at that level)."""
    t = time.time() if now is None else now
    if principal.acr < acr or principal.auth_time <= 0 or t - principal.auth_time > max_age_s:
        raise StepUpRequired(acr, max_age_s)


class TaxpayerTokens:
    def __init__(
        self,
        issuer: TokenIssuer,
        registry: Registry,
        state: IdentityState,
        *,
        access_ttl_s: int,
        refresh_ttl_s: int,
        today: Callable[[], date],
        clock: Callable[[], float] = time.time,
        device_active: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.issuer, self.registry, self.state = issuer, registry, state
        # a kiosk's sign-ins end when it is revoked (vtax/identity/kiosk.py)
        self.device_active = device_active
        self.access_ttl_s, self.refresh_ttl_s = access_ttl_s, refresh_ttl_s
        self.today, self.clock = today, clock

    async def _grant(self, person_id: str, enterprise_id: str, role: str) -> ActiveGrant | None:
        if not enterprise_id and not role:
            return None
        grant = await self.registry.grant(person_id, enterprise_id, role, self.today())
        if grant is None:
            raise ActForDenied("no grant in force for that enterprise and role")
        return grant

    def _access(self, person: PersonRecord, record: FamilyRecord, family: str) -> str:
        claims: dict[str, object] = {
            "amr": record.method,
            "acr": record.acr,
            "auth_time": int(record.auth_time),
            "ver": record.version,
            "fam": family,
        }
        if record.enterprise_id:
            claims["act"], claims["act_role"] = record.enterprise_id, record.role
        if record.device:
            claims["dev"] = record.device
        return self.issuer.issue(
            person.id, "taxpayer", person.name, self.clock(), ttl_s=self.access_ttl_s, claims=claims
        )

    async def _pair(
        self, person: PersonRecord, record: FamilyRecord, family: str, token_id: str
    ) -> TokenPair:
        access = self._access(person, record, family)
        grant = await self._grant(person.id, record.enterprise_id, record.role)
        return TokenPair(
            access,
            f"{_REFRESH_PREFIX}.{family}.{token_id}",
            self.access_ttl_s,
            self.issuer.verify(access),
            person,
            grant,
        )

    async def issue(
        self, person: PersonRecord, sign_in: SignIn, enterprise_id: str = "", role: str = ""
    ) -> TokenPair:
        """A new family for a person who just proved who they are."""
        if person.disabled:
            raise Unauthorized("the account is disabled")
        await self._grant(person.id, enterprise_id, role)
        record = FamilyRecord(
            person.id,
            person.token_version,
            sign_in.method,
            sign_in.acr,
            sign_in.auth_time,
            enterprise_id,
            role,
            sign_in.sid,
            sign_in.device,
        )
        family, token_id = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
        await self.state.put_family(
            family, json.dumps(asdict(record)), _hash(token_id), self.refresh_ttl_s
        )
        return await self._pair(person, record, family, token_id)

    async def _rotate(self, refresh_token: str) -> tuple[FamilyRecord, PersonRecord, str, str]:
        family, token_id = parse_refresh(refresh_token)
        new_id = secrets.token_urlsafe(32)
        rotated = await self.state.rotate_family(
            family, _hash(token_id), _hash(new_id), self.refresh_ttl_s
        )
        if rotated.status == "reused":
            raise RefreshReused("the refresh token was already used: sign in again")
        if rotated.status != "rotated":
            raise Unauthorized("the refresh token is not valid or has expired")
        record = FamilyRecord(**json.loads(rotated.record))
        person = await self.registry.person(record.person_id)
        if (
            person is None
            or person.disabled
            or person.token_version != record.version
            or not await self._device_ok(record.device)
        ):
            await self.state.drop_family(family)
            raise Unauthorized("the sign-in was revoked")
        return record, person, family, new_id

    async def _device_ok(self, device: str) -> bool:
        if not device:
            return True
        return self.device_active is not None and await self.device_active(device)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """A new pair for the same sign-in (the grant acted under is checked again)."""
        record, person, family, new_id = await self._rotate(refresh_token)
        try:
            return await self._pair(person, record, family, new_id)
        except ActForDenied:
            await self.state.drop_family(family)
            raise Unauthorized("the grant acted under has ended: sign in again") from None

    async def act_for(self, refresh_token: str, enterprise_id: str, role: str) -> TokenPair:
        """Switch the enterprise and role acted for (both empty: oneself), rotating the
        refresh token; the sign-in (method, level, time) stays what it was. Refused with
        ActForDenied, the presented refresh token stays the current one."""
        record, person, family, new_id = await self._rotate(refresh_token)
        try:
            await self._grant(person.id, enterprise_id, role)
        except ActForDenied:
            _, old_id = parse_refresh(refresh_token)  # undo the rotation: nothing was issued
            await self.state.put_family(
                family, json.dumps(asdict(record)), _hash(old_id), self.refresh_ttl_s
            )
            raise
        changed = FamilyRecord(**{**asdict(record), "enterprise_id": enterprise_id, "role": role})
        await self.state.put_family(
            family, json.dumps(asdict(changed)), _hash(new_id), self.refresh_ttl_s
        )
        return await self._pair(person, changed, family, new_id)

    async def authenticate(self, token: object) -> Principal:
        """A taxpayer access token, checked against the person's current token version, its
        sign-in (refresh family: ended by sign-out or the provider's back-channel logout) and,
        when acting for an enterprise, the grant in force today."""
        principal = self.issuer.verify(token)
        if principal.role != "taxpayer" or principal.version < 0:
            raise Unauthorized("not a taxpayer token")
        person = await self.registry.person(principal.subject)
        if person is None or person.disabled or person.token_version != principal.version:
            raise Unauthorized("the token was revoked")
        if principal.family and not await self.state.family_alive(principal.family):
            raise Unauthorized("the sign-in has ended")
        if not await self._device_ok(principal.device):
            raise Unauthorized("the kiosk signed in at was revoked")
        if principal.acting_for:
            grant = await self.registry.grant(
                person.id, principal.acting_for, principal.acting_role, self.today()
            )
            if grant is None:
                raise Unauthorized("the grant acted under has ended")
        return principal

    async def logout(self, refresh_token: str | None, everywhere: bool, person_id: str) -> None:
        """End this sign-in (its refresh family, if the token is its current one and the
        person's), or every token of the person at once."""
        if refresh_token:
            try:
                family, token_id = parse_refresh(refresh_token)
            except Unauthorized:
                family = token_id = ""
            if family:  # only the holder of the current token can end its family
                rotated = await self.state.rotate_family(
                    family, _hash(token_id), _hash(secrets.token_urlsafe(32)), 1
                )
                if rotated.status == "rotated":
                    await self.state.drop_family(family)
        if everywhere:
            await self.registry.bump_token_version(person_id)

    async def end_provider_session(self, families: list[str]) -> None:
        """Back-channel logout: the provider ended these sign-ins."""
        for family in families:
            await self.state.drop_family(family)
