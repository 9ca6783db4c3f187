"""Identity use cases: taxpayer sign-in by SMS code, OpenID Connect (vtax/identity/oidc.py)
or kiosk assertion; choosing the enterprise acted for, refresh, sign-out, step-up,
disabling; staff sign-in with a second factor and lockout. Each returns a contract
model (vtax/contract/identity.py) or raises IdentityError with a code of
vtax/contract/errors.py; the transport maps one request onto one call (docs/identity.md
lists the endpoints).

One module (~660 lines) on purpose: the three sign-ins, the token family and the staff
factor share one set of checks (token versions, grants in force, step-up, audit); split, each
part would re-read the same state with its own copy of those rules."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from vtax import identity as numbers
from vtax.accounts import Accounts, StaffMember
from vtax.auth import Principal, TokenIssuer, Unauthorized
from vtax.contract import identity as c
from vtax.identity import InvalidIdentity, otp
from vtax.identity.documents import InvalidPhone, parse_document, parse_phone
from vtax.identity.kiosk import KIOSK_ACR, KioskRefused, Kiosks, KioskView
from vtax.identity.oidc import IdToken, OidcClient, OidcError
from vtax.identity.registry import (
    ActiveGrant,
    PersonRecord,
    ProvidedGrant,
    Registry,
    upsert_from_provider,
)
from vtax.identity.staff import StaffFactors
from vtax.identity.state import CodeLimits, IdentityState
from vtax.identity.tables import GRANT_ROLES
from vtax.identity.tokens import (
    ActForDenied,
    RefreshReused,
    SignIn,
    StepUpRequired,
    TaxpayerTokens,
    TokenPair,
    require_step_up,
)
from vtax.models import User
from vtax.review.days import day_start
from vtax.sms import SmsError, SmsSender, masked

log = logging.getLogger(__name__)

# The assurance a phone code gives: the registry's person (name and number checked by the
# tax system when it verified the number) holding the phone: level 3.
SMS_ACR = 3


class IdentityError(Exception):
    """A refusal with a contract error code; `retry_after_s` for the rate limits."""

    def __init__(
        self,
        code: str,
        message: str,
        retry_after_s: float = 0.0,
        step_up: c.StepUpNeeded | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.retry_after_s = retry_after_s
        self.step_up = step_up


def today_in(timezone: str) -> Callable[[], date]:
    zone = ZoneInfo(timezone)
    return lambda: datetime.now(zone).date()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _option(g: ActiveGrant) -> c.ActingOption:
    return c.ActingOption(
        enterprise_id=g.enterprise_id,
        uscc=g.uscc,
        enterprise_name=g.enterprise_name,
        role=g.role,  # type: ignore[arg-type]
        functions=list(g.functions),
        valid_until=None if g.valid_until is None else g.valid_until.isoformat(),
    )


class TaxpayerSignIn:
    """Tokens for a person who proved who they are, and what follows from them."""

    def __init__(
        self,
        tokens: TaxpayerTokens,
        registry: Registry,
        *,
        step_up_acr: int = 4,
        step_up_max_age_s: int = 300,
        on_revoked: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.tokens, self.registry = tokens, registry
        self.step_up_acr, self.step_up_max_age_s = step_up_acr, step_up_max_age_s
        # called with a person id when every token of theirs died (sign-out everywhere,
        # disabled): the transport cuts their open sockets there
        self.on_revoked = on_revoked

    async def _revoked(self, person_id: str) -> None:
        if self.on_revoked is not None:
            await self.on_revoked(person_id)

    async def session(self, pair: TokenPair) -> c.TaxpayerSession:
        options = await self.registry.active_grants(pair.person.id, self.tokens.today())
        p = pair.principal
        acting = None
        if pair.acting is not None:
            g = pair.acting
            acting = c.Acting(
                enterprise_id=g.enterprise_id,
                uscc=g.uscc,
                enterprise_name=g.enterprise_name,
                role=g.role,  # type: ignore[arg-type]
            )
        return c.TaxpayerSession(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type="Bearer",
            expires_in_s=pair.expires_in_s,
            person=c.PersonView(
                person_id=pair.person.id,
                name=pair.person.name,
                document_type=pair.person.doc_type,
                document=numbers.mask(pair.person.doc_number),
            ),
            acting=acting,
            options=[_option(g) for g in options],
            method=p.method,  # type: ignore[arg-type]
            acr=p.acr,
            auth_time=_iso(p.auth_time),
            kiosk=None,
        )

    async def start(self, person: PersonRecord, sign_in: SignIn) -> c.TaxpayerSession:
        """A new sign-in; the person acts for themselves until they choose (`act_for`).
        The person's id is their taxpayer id in the sessions (a `taxpayers` row is made
        for a person who has none)."""
        try:
            pair = await self.tokens.issue(person, sign_in)
            await self.registry.ensure_taxpayer(person)
        except Unauthorized as exc:
            raise IdentityError("unauthorized", str(exc)) from None
        return await self.session(pair)

    async def act_for(self, body: c.ActFor) -> c.TaxpayerSession:
        if (body.enterprise_id is None) != (body.role is None):
            raise IdentityError("invalid_payload", "enterprise_id and role come together")
        try:
            pair = await self.tokens.act_for(
                body.refresh_token, body.enterprise_id or "", body.role or ""
            )
        except ActForDenied as exc:
            raise IdentityError("act_for_denied", str(exc)) from None
        except RefreshReused as exc:
            raise IdentityError("refresh_reused", str(exc)) from None
        except Unauthorized as exc:
            raise IdentityError("unauthorized", str(exc)) from None
        return await self.session(pair)

    async def refresh(self, body: c.Refresh) -> c.TaxpayerSession:
        try:
            pair = await self.tokens.refresh(body.refresh_token)
        except RefreshReused as exc:
            raise IdentityError("refresh_reused", str(exc)) from None
        except Unauthorized as exc:
            raise IdentityError("unauthorized", str(exc)) from None
        return await self.session(pair)

    async def authenticate(self, token: object) -> Principal:
        """The guard of every taxpayer request and socket (re-run on resume)."""
        try:
            return await self.tokens.authenticate(token)
        except Unauthorized as exc:
            raise IdentityError("unauthorized", str(exc)) from None

    async def logout(
        self, caller: Principal, body: c.Logout, provider_logout_url: str | None = None
    ) -> c.LoggedOut:
        await self.tokens.logout(body.refresh_token, body.everywhere, caller.subject)
        if body.everywhere:
            await self._revoked(caller.subject)
        return c.LoggedOut(everywhere=body.everywhere, provider_logout_url=provider_logout_url)

    def require_step_up(self, caller: Principal, now: float | None = None) -> None:
        """Risky items (a catalog flag) and signing a delivery receipt call this first."""
        try:
            require_step_up(caller, self.step_up_acr, self.step_up_max_age_s, now)
        except StepUpRequired as exc:
            raise IdentityError(
                "step_up_required",
                str(exc),
                step_up=c.StepUpNeeded(acr=exc.acr, max_age_s=exc.max_age_s),
            ) from None

    @staticmethod
    def _supervisor(caller: Principal) -> None:
        if caller.role != "supervisor":
            raise IdentityError("forbidden", "only supervisors manage people's access")

    async def _account(self, person_id: str) -> c.PersonAccount | None:
        """A person's access as a supervisor sees it (document masked, latest change)."""
        person = await self.registry.person(person_id)
        if person is None:
            return None
        change = await self.registry.access_change(person_id)
        return c.PersonAccount(
            person_id=person.id,
            name=person.name,
            document_type=person.doc_type,
            document=numbers.mask(person.doc_number),
            disabled=person.disabled,
            last_change=None
            if change is None
            else c.PersonAccessEvent(
                state="disabled" if change.disabled else "enabled",
                at=change.at.astimezone(UTC).isoformat(),
                by_role=change.actor_role,
                by=change.actor_id,
                reason=change.reason,
            ),
        )

    async def identity_audit(
        self, caller: Principal, q: c.IdentityAuditQuery, zone: ZoneInfo
    ) -> c.IdentityAuditPage:
        """The identity audit for a supervisor, newest first, a page at a time. Reading it is
        audited too (`identity_audit_read`, the filters as given): who looked at whose
        history is itself history."""
        self._supervisor(caller)
        since = day_start(q.date_from, zone) if q.date_from is not None else None
        until = day_start(q.date_to + timedelta(days=1), zone) if q.date_to is not None else None
        filters = q.model_dump(mode="json", exclude_none=True, exclude={"limit", "before"})
        rows = await self.registry.audit_rows(
            subject=q.subject,
            kind=q.kind,
            actor_id=q.actor,
            since=since,
            until=until,
            before_id=q.before,
            limit=q.limit + 1,
        )
        # written after the read (a page does not show its own read) and before the answer
        # (no rows leave without their row)
        await self.registry.audit(
            "identity_audit_read", q.subject or "", (caller.role, caller.subject), filters
        )
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        return c.IdentityAuditPage(
            rows=[
                c.IdentityAuditRow(
                    id=r.id,
                    at=r.at.astimezone(zone).isoformat(),
                    actor_role=r.actor_role,
                    actor=r.actor_id,
                    kind=r.kind,
                    subject=r.subject,
                    data=r.data,
                )
                for r in rows
            ],
            next_before=rows[-1].id if more else None,
        )

    async def person_account(self, caller: Principal, person_id: str) -> c.PersonAccount:
        """A person's access, for a supervisor; every read is audited (`person_access_read`:
        who, when, which person, whether there was one)."""
        self._supervisor(caller)
        account = await self._account(person_id)
        outcome = "not_found" if account is None else "found"
        await self.registry.audit(
            "person_access_read", person_id, (caller.role, caller.subject), {"outcome": outcome}
        )
        if account is None:
            raise IdentityError("not_found", "no such person")
        return account

    async def find_person(self, caller: Principal, body: c.PersonLookup) -> c.PersonAccount:
        """The person with this document (its number checked as at sign-in; a travel permit
        found by its lifelong number, whichever card's number is given). Every lookup is
        audited (`person_looked_up`: who, when, the person found or none, and what was
        searched, the number masked as on receipts), a refused number too."""
        self._supervisor(caller)
        searched: dict[str, object] = {
            "document_type": body.document_type,
            "document": numbers.mask(numbers.normalize(body.document)),
        }
        actor = (caller.role, caller.subject)
        try:
            doc = parse_document(body.document_type, body.document)
        except InvalidIdentity as exc:
            await self.registry.audit(
                "person_looked_up", "", actor, {**searched, "outcome": "invalid_id"}
            )
            raise IdentityError("invalid_id", str(exc)) from None
        person = await self.registry.person_by_document(doc.type, doc.key)
        account = None if person is None else await self._account(person.id)
        await self.registry.audit(
            "person_looked_up",
            "" if account is None else account.person_id,
            actor,
            {**searched, "outcome": "not_found" if account is None else "found"},
        )
        if account is None:
            raise IdentityError("not_found", "no person with this document in the registry")
        return account

    async def disable_person(
        self, caller: Principal, person_id: str, disabled: bool = True, reason: str = ""
    ) -> c.PersonAccount:
        """A supervisor disables (or enables) a person, audited with the reason: every token
        of theirs dies at once (the transport also cuts their open sockets)."""
        self._supervisor(caller)
        try:
            await self.registry.set_disabled(
                person_id, disabled, (caller.role, caller.subject), reason
            )
        except KeyError:
            raise IdentityError("not_found", "no such person") from None
        if disabled:
            await self._revoked(person_id)
        account = await self._account(person_id)  # the change's own row audits this answer
        if account is None:
            raise IdentityError("not_found", "no such person")
        return account


@dataclass(frozen=True, slots=True)
class SmsPolicy:
    limits: CodeLimits
    max_attempts: int
    tries_per_address: int = 50  # per limits.window_s, over every number


class SmsSignIn:
    """Sign-in by a code sent to a verified number of the registry.

    No enumeration: a number the registry does not know gets the same answer, the same
    throttles and a code record of its own (never sent, never matching), so neither the
    request nor the tries tell registered numbers from others. The text is sent after the
    answer, so the answer's timing does not tell them apart either."""

    def __init__(
        self,
        registry: Registry,
        state: IdentityState,
        sender: SmsSender,
        signin: TaxpayerSignIn,
        *,
        secret: str,
        policy: SmsPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry, self.state, self.sender, self.signin = registry, state, sender, signin
        self.policy, self.clock = policy, clock
        self._key = otp.code_key(secret)
        self._sending: set[asyncio.Task[None]] = set()

    @staticmethod
    def _phone(raw: str) -> str:
        try:
            return parse_phone(raw)
        except InvalidPhone as exc:
            raise IdentityError("invalid_phone", str(exc)) from None

    async def request_code(self, body: c.SmsCodeRequest, address: str) -> c.SmsCodeSent:
        phone = self._phone(body.phone)
        person = await self.registry.person_by_phone(phone)
        code = otp.new_code()
        # unknown numbers store a digest no code has (the key never signs a "!" code)
        digest = otp.digest(self._key, phone, code if person is not None else "!" + code)
        issued = await self.state.issue_code(
            phone, otp.address_key(address), digest, self.policy.limits
        )
        if issued.status != "issued":
            raise IdentityError(
                "rate_limited",
                {
                    "throttled": "a code was sent a moment ago: wait before asking again",
                    "number_limited": "too many codes for this number: try again later",
                    "address_limited": "too many codes from this address: try again later",
                }[issued.status],
                retry_after_s=issued.retry_after_s,
            )
        if person is not None:
            text = otp.text(body.language, code, self.policy.limits.ttl_s)
            task = asyncio.create_task(self._send(phone, text))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return c.SmsCodeSent(
            phone=masked(phone),
            expires_in_s=int(self.policy.limits.ttl_s),
            resend_in_s=int(self.policy.limits.resend_s),
        )

    async def _send(self, phone: str, text: str) -> None:
        try:
            await self.sender.send(phone, text)
        except SmsError as exc:
            log.warning("sign-in code to %s not sent: %s", masked(phone), exc)

    async def drain(self) -> None:
        """Wait for the texts being sent (shutdown, tests)."""
        while self._sending:
            await asyncio.gather(*list(self._sending))

    async def verify(self, body: c.SmsCodeVerify, address: str = "") -> c.TaxpayerSession:
        """`address`: the client's; one address may try `tries_per_address` codes per
        window whatever the numbers (guessing across many numbers)."""
        phone = self._phone(body.phone)
        if address:
            wait = await self.state.hit(
                "code-tries",
                otp.address_key(address),
                self.policy.tries_per_address,
                self.policy.limits.window_s,
            )
            if wait:
                raise IdentityError(
                    "rate_limited", "too many tries from this address", retry_after_s=wait
                )
        attempt = await self.state.attempt_code(phone)
        wrong = IdentityError("invalid_code", "the code is wrong, expired or already used")
        if attempt is None:
            raise wrong
        if attempt.attempts > self.policy.max_attempts:
            await self.state.burn_code(phone)
            raise IdentityError("too_many_attempts", "too many tries: ask for a new code")
        digest = otp.digest(self._key, phone, body.code)
        if not otp.same(digest, attempt.digest):
            if attempt.attempts >= self.policy.max_attempts:
                await self.state.burn_code(phone)
                raise IdentityError("too_many_attempts", "too many tries: ask for a new code")
            raise wrong
        if not await self.state.consume_code(phone, digest):
            raise wrong  # a concurrent try used it first
        person = await self.registry.person_by_phone(phone)
        if person is None:  # removed or disabled since the code was sent
            raise wrong
        return await self.signin.start(person, SignIn("sms", SMS_ACR, self.clock()))


class OidcSignIn:
    """Sign-in through the province's identity platform (OpenID Connect).

    Claims: `name`, `vtax_document_type` and `vtax_document_number` (the person, created on
    first sight), the enterprises claim (setting `oidc_enterprises_claim`, a list of
    `{uscc, name, role, valid_until?, functions?}`: the grants from this provider, replaced at
    every sign-in), `acr` (3..5) and `auth_time` (kept in the tokens), `sid` (back-channel
    logout ends every sign-in of that provider session)."""

    def __init__(
        self,
        client: OidcClient,
        registry: Registry,
        sessions: async_sessionmaker[Any],
        signin: TaxpayerSignIn,
        state: IdentityState,
        *,
        enterprises_claim: str = "vtax_enterprises",
        refresh_ttl_s: float = 12 * 3600,
    ) -> None:
        self.client, self.registry, self.sessions = client, registry, sessions
        self.signin, self.state = signin, state
        self.enterprises_claim, self.refresh_ttl_s = enterprises_claim, refresh_ttl_s

    async def begin(
        self,
        body: c.OidcStart,
        *,
        step_up: bool = False,
        login_hint: str = "",
        address: str = "",
        starts_per_minute: int = 30,
        caller: Principal | None = None,
    ) -> c.OidcRedirect:
        """The provider URL to send the browser to; `step_up`: a fresh sign-in at the
        step-up level (acr_values, prompt=login, max_age) of `caller`, the taxpayer signed
        in: the flow keeps who they are and for whom they act, and the callback refuses
        anyone else. Each start keeps a flow state for a while, so one client address may
        start `starts_per_minute` a minute."""
        if step_up and (caller is None or caller.role != "taxpayer"):
            raise IdentityError("forbidden", "a step-up is for a signed-in taxpayer")
        if address:
            wait = await self.state.hit(
                "oidc-start", otp.address_key(address), starts_per_minute, 60.0
            )
            if wait:
                raise IdentityError("rate_limited", "too many sign-ins started", retry_after_s=wait)
        try:
            url = await self.client.begin(
                min_acr=self.signin.step_up_acr if step_up else 0,
                max_age_s=self.signin.step_up_max_age_s if step_up else None,
                login_hint=login_hint,
                ui_locales=body.language,
                context=None
                if caller is None or not step_up
                else {
                    "step_up_for": caller.subject,
                    "act": caller.acting_for,
                    "act_role": caller.acting_role,
                },
            )
        except OidcError as exc:
            log.warning("OIDC sign-in could not start: %s", exc)
            raise IdentityError("unavailable", "the identity platform is unreachable") from None
        return c.OidcRedirect(authorization_url=url)

    def _grants(self, claims: dict[str, Any]) -> list[ProvidedGrant]:
        raw = claims.get(self.enterprises_claim, [])
        out: list[ProvidedGrant] = []
        for item in raw if isinstance(raw, list) else []:
            try:
                if not isinstance(item, dict):
                    raise ValueError("not an object")
                role = item.get("role")
                if role not in GRANT_ROLES:
                    raise ValueError(f"unknown role {role!r}")
                until = item.get("valid_until")
                functions = item.get("functions", [])
                if not isinstance(functions, list) or not all(
                    isinstance(f, str) and 0 < len(f) <= 64 for f in functions
                ):
                    raise ValueError("functions")
                out.append(
                    ProvidedGrant(
                        numbers.validate("uscc", str(item.get("uscc", ""))),
                        str(item.get("name", ""))[:200] or str(item.get("uscc")),
                        role,
                        date.fromisoformat(until) if until else None,
                        tuple(sorted(set(functions))),
                    )
                )
            except (ValueError, TypeError) as exc:
                log.warning("OIDC enterprise claim entry ignored: %s", exc)
        return out

    async def callback(self, body: c.OidcCallback) -> c.TaxpayerSession:
        failed = IdentityError("sign_in_failed", "the sign-in could not be verified: try again")
        try:
            token, _ = await self.client.finish(body.code, body.state)
        except OidcError as exc:
            log.warning("OIDC sign-in refused: %s", exc)
            raise failed from None
        claims = token.claims
        try:
            doc = parse_document(
                str(claims.get("vtax_document_type", "")),
                str(claims.get("vtax_document_number", "")),
            )
        except InvalidIdentity as exc:
            log.warning("OIDC sign-in without a valid document: %s", exc)
            raise failed from None
        expected = token.context.get("step_up_for", "")
        if expected:
            await self._same_person(expected, doc.type, doc.key, token)
        name = str(claims.get("name", ""))[:100] or doc.number
        person = await upsert_from_provider(
            self.sessions,
            doc.type,
            doc.key,
            doc.number,
            name,
            self._grants(claims),
            self.signin.tokens.today(),
        )
        session = await self.signin.start(
            person, SignIn("oidc", token.acr, token.auth_time, token.sid)
        )
        family = session.refresh_token.split(".")[1]
        if token.sid:
            await self.state.add_member("oidc-sid", token.sid, family, self.refresh_ttl_s)
        await self.state.add_member("oidc-sub", token.sub, family, self.refresh_ttl_s)
        if expected:
            session = await self._stepped_up(session, token)
        return session

    async def _same_person(
        self, expected: str, doc_type: str, doc_key: str, token: IdToken
    ) -> None:
        """A step-up proves the person signed in, again: another person is refused (and
        nothing of theirs is written), audited `step_up_refused`."""
        found = await self.registry.person_by_document(doc_type, doc_key)
        if found is not None and found.id == expected:
            return
        await self.registry.audit(
            "step_up_refused",
            expected,
            ("taxpayer", expected),
            {"reason": "another person", "other": found.id if found else "", "acr": token.acr},
        )
        raise IdentityError(
            "step_up_refused", "the new sign-in is of another person: sign in as yourself"
        )

    async def _stepped_up(self, session: c.TaxpayerSession, token: IdToken) -> c.TaxpayerSession:
        """The fresh sign-in acts for the enterprise the step-up was started under, and
        is audited `step_up_done`."""
        person_id = session.person.person_id
        act, act_role = token.context.get("act", ""), token.context.get("act_role", "")
        if act and act_role:
            try:
                session = await self.signin.act_for(
                    c.ActFor(
                        refresh_token=session.refresh_token,
                        enterprise_id=act,
                        role=act_role,  # type: ignore[arg-type]
                    )
                )
            except IdentityError as exc:  # the grant ended meanwhile: for themselves
                log.info("step-up of %s: not acting for %s any more: %s", person_id, act, exc)
        await self.registry.audit(
            "step_up_done",
            person_id,
            ("taxpayer", person_id),
            {"acr": token.acr, "auth_time": int(token.auth_time), "act": act},
        )
        return session

    async def backchannel_logout(self, body: c.BackchannelLogout) -> int:
        """The provider ended a session: every sign-in made through it ends (their refresh
        families, and with them their access tokens). How many ended."""
        try:
            sub, sid = await self.client.validate_logout_token(body.logout_token)
        except OidcError as exc:
            log.warning("back-channel logout refused: %s", exc)
            raise IdentityError("invalid_payload", "the logout token is not valid") from None
        families = await self.state.take_members("oidc-sid", sid) if sid else []
        if not sid:
            families = await self.state.take_members("oidc-sub", sub)
        for family in families:
            await self.state.drop_family(family)
        return len(families)

    async def logout_url(self) -> str | None:
        """RP-initiated logout: the provider's end-session URL for the page to open."""
        try:
            return await self.client.end_session_url()
        except OidcError:
            return None


class KioskSignIn:
    """Sign-in at a registered kiosk (vtax/identity/kiosk.py): acr 4, the kiosk recorded in
    the tokens (revoking it ends them)."""

    def __init__(
        self,
        kiosks: Kiosks,
        sessions: async_sessionmaker[Any],
        signin: TaxpayerSignIn,
        *,
        challenges_per_minute: int = 10,
    ) -> None:
        self.kiosks, self.sessions, self.signin = kiosks, sessions, signin
        self.challenges_per_minute = challenges_per_minute

    async def challenge(self, body: c.KioskChallengeRequest) -> c.KioskChallenge:
        """A nonce for the kiosk's next assertion; at most `challenges_per_minute` per
        kiosk (a stolen or broken kiosk cannot flood the queue with sign-ins)."""
        wait = await self.kiosks.state.hit(
            "kiosk-challenge", body.kiosk_id, self.challenges_per_minute, 60.0
        )
        if wait:
            raise IdentityError("rate_limited", "this kiosk asks too often", retry_after_s=wait)
        try:
            nonce = await self.kiosks.challenge(body.kiosk_id)
        except KioskRefused:
            raise IdentityError("unauthorized", "unknown or revoked kiosk") from None
        return c.KioskChallenge(nonce=nonce, expires_in_s=int(self.kiosks.nonce_ttl_s))

    async def sign_in(self, body: c.KioskSignIn) -> c.TaxpayerSession:
        try:
            found = await self.kiosks.verify(body.assertion)
        except KioskRefused as exc:
            log.warning("kiosk assertion refused: %s", exc)
            raise IdentityError("sign_in_failed", "the kiosk's assertion did not verify") from None
        person = await upsert_from_provider(
            self.sessions,
            found.document.type,
            found.document.key,
            found.document.number,
            found.name,
            None,
            self.signin.tokens.today(),
        )
        session = await self.signin.start(
            person, SignIn("kiosk", KIOSK_ACR, found.signed_at, device=found.kiosk.id)
        )
        k = found.kiosk
        kiosk = c.KioskRef(kiosk_id=k.id, name=k.name, branch=k.branch, location=k.location)
        return session.model_copy(update={"kiosk": kiosk})

    async def register(self, caller: Principal, body: c.KioskRegister) -> c.KioskOut:
        if caller.role != "supervisor":
            raise IdentityError("forbidden", "only supervisors register kiosks")
        try:
            k = await self.kiosks.register(
                body.name, body.branch, body.location, body.public_key, caller.subject
            )
        except ValueError as exc:
            raise IdentityError("invalid_payload", str(exc)) from None
        return _kiosk_out(k)

    async def revoke(self, caller: Principal, kiosk_id: str) -> c.KioskOut:
        if caller.role != "supervisor":
            raise IdentityError("forbidden", "only supervisors revoke kiosks")
        try:
            await self.kiosks.revoke(kiosk_id, caller.subject)
        except KeyError:
            raise IdentityError("not_found", "no such kiosk, or revoked already") from None
        k = await self.kiosks.get(kiosk_id)
        assert k is not None
        return _kiosk_out(k)


def _kiosk_out(k: KioskView) -> c.KioskOut:
    return c.KioskOut(
        kiosk_id=k.id,
        name=k.name,
        branch=k.branch,
        location=k.location,
        registered_at=k.registered_at.isoformat(),
        revoked_at=None if k.revoked_at is None else k.revoked_at.isoformat(),
    )


STAFF_MFA = "pwd+otp"


@dataclass(frozen=True, slots=True)
class StaffSignedIn:
    """A staff sign-in: the token (its `amr` claim says whether a second factor was used)
    and the account; the transport answers `StaffToken` from it."""

    token: str
    member: StaffMember
    second_factor: bool


class StaffLogin:
    """Staff sign-in with password and, once set up, a TOTP code; lockout after repeated
    failures (either kind); supervisors need the second factor for recordings and exports
    (the token's `amr` is STAFF_MFA: the route guard checks it, signaling/http_api.py)."""

    def __init__(
        self,
        accounts: Accounts,
        sessions: async_sessionmaker[Any],
        factors: StaffFactors,
        issuer: TokenIssuer,
    ) -> None:
        self.accounts, self.sessions, self.factors, self.issuer = (
            accounts,
            sessions,
            factors,
            issuer,
        )

    async def _user_id(self, username: str) -> str | None:
        async with self.sessions() as db:
            found = await db.scalar(select(User.id).where(User.username == username))
        return None if found is None else str(found)

    async def login(self, body: c.StaffLogin2) -> StaffSignedIn:
        wrong = IdentityError("invalid_credentials", "wrong username, password or code")
        user_id = await self._user_id(body.username)
        if user_id is not None:
            wait = await self.factors.locked_for(user_id)
            if wait > 0:
                raise IdentityError(
                    "account_locked", "too many failed sign-ins: locked", retry_after_s=wait
                )
        member = await self.accounts.authenticate(body.username, body.password)
        if member is None:
            if user_id is not None:
                await self.factors.failed(user_id, "password")
            raise wrong
        has_factor = await self.factors.has_factor(member.id)
        if has_factor:
            if body.code is None:
                raise IdentityError("second_factor_required", "enter the authenticator's code")
            if not await self.factors.check(member.id, body.code):
                await self.factors.failed(member.id, "code")
                raise wrong
        await self.factors.succeeded(member.id)
        token = self.issuer.issue(
            member.id,
            member.role,  # type: ignore[arg-type]
            member.display_name,
            claims={"amr": STAFF_MFA if has_factor else "pwd"},
        )
        return StaffSignedIn(token, member, has_factor)

    async def enroll(self, caller: Principal, username: str) -> c.TotpEnrolment:
        if caller.role not in ("agent", "supervisor"):
            raise IdentityError("forbidden", "staff only")
        try:
            secret, uri = await self.factors.enroll(caller.subject, username)
        except ValueError as exc:
            raise IdentityError("invalid_state", str(exc)) from None
        return c.TotpEnrolment(secret=secret, provisioning_uri=uri)

    async def confirm(self, caller: Principal, body: c.TotpConfirm) -> None:
        if not await self.factors.check(caller.subject, body.code, confirming=True):
            raise IdentityError("invalid_code", "the code does not match: try the next one")

    async def unlock(self, caller: Principal, body: c.StaffUnlock) -> None:
        if caller.role != "supervisor":
            raise IdentityError("forbidden", "only supervisors unlock accounts")
        await self.factors.unlock(body.user_id, caller.subject)
