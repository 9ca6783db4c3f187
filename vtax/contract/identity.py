"""Taxpayer sign-in messages (docs/identity.md): SMS codes, OpenID Connect, choosing the
enterprise a person acts for, refresh, sign-out. The lead binds them to endpoints (the
list in docs/identity.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from vtax.contract.base import Day, Message, Out, Query, Timestamp

PageLanguage = Literal["zh-CN", "zh-HK", "en", "pt"]
GrantRole = Literal["legal_representative", "finance_officer", "tax_handler", "invoice_purchaser"]
AuthMethod = Literal["sms", "oidc", "kiosk"]
PhoneText = Annotated[
    str,
    StringConstraints(min_length=5, max_length=24, pattern=r"^[+0-9 ()\-.]+$"),
    Field(description="E.164 or a local mainland number; +86, +852 and +853 mobiles"),
]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$"), Field(description="6 digits")]
OpaqueToken = Annotated[str, StringConstraints(min_length=16, max_length=4096)]
Uuid = Annotated[str, StringConstraints(min_length=1, max_length=36, pattern=r"^[0-9a-f-]+$")]


class SignInMethods(Out):
    """What `GET /api/auth/methods` answers: the taxpayer sign-in methods enabled here."""

    methods: list[AuthMethod] = Field(description="sms, oidc (an issuer configured), kiosk")


# ---- SMS code ---------------------------------------------------------------------------------


class SmsCodeRequest(Message):
    """Ask for a sign-in code. The answer is the same for registered and unknown numbers."""

    phone: PhoneText
    language: PageLanguage = "zh-CN"


class SmsCodeSent(Out):
    phone: str = Field(description="the number masked, as it will appear")
    expires_in_s: int
    resend_in_s: int


class SmsCodeVerify(Message):
    phone: PhoneText
    code: Code


# ---- acting for an enterprise ---------------------------------------------------------------


class ActFor(Message):
    """Act for this enterprise in this role (one of the session's `options`); omit both
    fields to act for oneself. The sign-in's refresh token is rotated by the switch."""

    refresh_token: OpaqueToken
    enterprise_id: Uuid | None = None
    role: GrantRole | None = None


class ActingOption(Out):
    enterprise_id: str
    uscc: str
    enterprise_name: str
    role: GrantRole
    functions: list[str]
    valid_until: str | None = Field(description="last day (service time zone), YYYY-MM-DD")


class PersonView(Out):
    person_id: str
    name: str
    document_type: str
    document: str = Field(description="the document number masked")


class Acting(Out):
    enterprise_id: str
    uscc: str
    enterprise_name: str
    role: GrantRole


class KioskRef(Out):
    kiosk_id: str
    name: str
    branch: str
    location: str


class TaxpayerSession(Out):
    """What a taxpayer sign-in, an enterprise choice or a refresh answers."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in_s: int
    person: PersonView
    acting: Acting | None = Field(description="the enterprise and role acted for; null: oneself")
    options: list[ActingOption] = Field(description="every enterprise and role one may act for")
    method: AuthMethod
    acr: int = Field(description="assurance level: 3 name and number, 4 live person, 5 in person")
    auth_time: Timestamp
    kiosk: KioskRef | None = Field(None, description="the kiosk signed in at, if any")


class Refresh(Message):
    refresh_token: OpaqueToken


class Logout(Message):
    refresh_token: OpaqueToken | None = None
    everywhere: Annotated[bool, Field(strict=True)] = Field(
        False, description="revoke every token of the person at once"
    )


class LoggedOut(Out):
    everywhere: bool
    provider_logout_url: str | None = Field(
        description="OIDC: send the browser here to end the provider's session too"
    )


# ---- OpenID Connect -------------------------------------------------------------------------


class OidcStart(Message):
    language: PageLanguage = "zh-CN"


class OidcStartQuery(Message):
    step_up: bool = Field(
        False, description="a fresh sign-in at the step-up level (send the taxpayer's token)"
    )


class OidcRedirect(Out):
    authorization_url: str


class OidcCallback(Message):
    code: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    state: Annotated[str, StringConstraints(min_length=16, max_length=128)]


class BackchannelLogout(Message):
    """The provider's back-channel logout (an application/x-www-form-urlencoded body)."""

    logout_token: OpaqueToken


# ---- step-up --------------------------------------------------------------------------------


class StepUpNeeded(Out):
    """With `step_up_required`: what a fresh sign-in must reach."""

    acr: int
    max_age_s: int


# ---- kiosks ---------------------------------------------------------------------------------

KioskText = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class KioskChallengeRequest(Message):
    kiosk_id: Uuid


class KioskChallenge(Out):
    nonce: str
    expires_in_s: int


class KioskSignIn(Message):
    """The kiosk's signed assertion (compact JWS, Ed25519; docs/identity.md)."""

    assertion: Annotated[str, StringConstraints(min_length=20, max_length=8192)]


class KioskRegister(Message):
    name: KioskText
    branch: KioskText
    location: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    public_key: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}=?$"),
        Field(description="raw Ed25519 public key, base64url (32 bytes)"),
    ]


class KioskOut(Out):
    kiosk_id: str
    name: str
    branch: str
    location: str
    registered_at: Timestamp
    revoked_at: Timestamp | None


# ---- staff second factor --------------------------------------------------------------------

TotpCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]


class StaffLogin2(Message):
    """Staff sign-in with the second factor (replaces `Login` once TOTP is on)."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    code: TotpCode | None = None


class TotpEnrolment(Out):
    secret: str = Field(description="base32; shown once")
    provisioning_uri: str = Field(description="otpauth:// for the authenticator app's QR code")


class TotpConfirm(Message):
    code: TotpCode


class StaffUnlock(Message):
    user_id: Uuid


# ---- people's access (a supervisor disables and enables) ------------------------------------

DocumentType = Literal["resident_id", "residence_permit", "travel_permit", "passport"]


class PersonLookup(Message):
    """Find a person by their document (the number as on the card; checked like at sign-in)."""

    document_type: DocumentType
    document: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class PersonAccessChange(Message):
    """Why a person is disabled or enabled again: kept in the identity audit."""

    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class PersonAccessEvent(Out):
    state: Literal["disabled", "enabled"]
    at: Timestamp
    by_role: str = Field(description="supervisor (the pages, the API) or operator (the CLI)")
    by: str | None = Field(description="the supervisor's user id, the operator's login name")
    reason: str


class PersonAccount(Out):
    """A person as a supervisor manages their access (the document masked)."""

    person_id: str
    name: str
    document_type: str
    document: str = Field(description="the document number masked")
    disabled: bool
    last_change: PersonAccessEvent | None = Field(
        description="the latest disabling or enabling, if any"
    )


# ---- the identity audit (supervisors) ------------------------------------------------------

AuditKind = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$"),
    Field(description="a row kind: person_disabled, person_looked_up, kiosk_revoked, ..."),
]


class IdentityAuditQuery(Query):
    """Filters of the identity audit; all optional, all must hold. Days are the service's
    time zone's days."""

    subject: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="what a row is about: a person's id, a staff user id, a kiosk id"
    )
    kind: AuditKind | None = None
    actor: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="who did it: a supervisor's user id, an operator's login name"
    )
    date_from: Day | None = Field(None, alias="from", description="first day (inclusive)")
    date_to: Day | None = Field(None, alias="to", description="last day (inclusive)")
    before: Annotated[int, Field(ge=1)] | None = Field(
        None, description="cursor: `next_before` of the last page"
    )
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class IdentityAuditRow(Out):
    id: int
    at: Timestamp
    actor_role: str = Field(description="supervisor, operator (the CLI), taxpayer, system")
    actor: str | None = Field(description="the supervisor's user id, the operator's login name")
    kind: str
    subject: str
    data: dict[str, Any] = Field(description="the row's facts; numbers in it are masked")


class IdentityAuditPage(Out):
    """Newest first. Reading it is itself audited (`identity_audit_read`)."""

    rows: list[IdentityAuditRow]
    next_before: int | None = Field(description="the cursor of the next (older) page, if any")
