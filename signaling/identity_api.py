"""Sign-in over HTTP (docs/identity.md): taxpayers by SMS code, the identity platform (OpenID
Connect) or a kiosk's assertion; choosing the enterprise acted for, refresh, sign-out; staff
sign-in with the second factor, its set-up, unlocking; kiosk registration. Each handler is
one call of vtax/app/identity.py; an `IdentityError` becomes the error envelope with its
status (signaling/http_api.py `errors_middleware`). Every answer carries
`Cache-Control: no-store`: tokens and secrets are never cached."""

from __future__ import annotations

import re
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ValidationError

from signaling.context import CONTEXT
from signaling.http_api import (
    MAX_BODY,
    PRINCIPAL,
    SIGN_IN,
    ApiError,
    bind,
    body,
    client_address,
    error_response,
    json_response,
    principal,
    query,
)
from vtax.app.identity import (
    IdentityError,
    KioskSignIn,
    OidcSignIn,
    SmsSignIn,
    StaffLogin,
)
from vtax.app.identity_wiring import IdentityServices
from vtax.app.signin import RateLimited
from vtax.auth import Busy
from vtax.contract import identity as c
from vtax.contract.errors import validation_details
from vtax.contract.review import NoQuery

NO_STORE = {"Cache-Control": "no-store"}
KIOSK_ID = re.compile(r"^[0-9a-f-]{1,36}$")  # kiosks' and people's ids (UUIDs)
T = TypeVar("T")


def _answer(model: BaseModel | None, status: int = 200) -> web.Response:
    if model is None:
        return web.Response(status=status, headers=NO_STORE)
    return json_response(model.model_dump(mode="json"), status=status, headers=NO_STORE)


def _identity(request: web.Request) -> IdentityServices:
    return request.app[CONTEXT].services.identity


def _enabled(provider: T | None, name: str) -> T:
    if provider is None:
        raise IdentityError("unknown_provider", f"sign-in by {name} is not enabled here")
    return provider


def _sms(request: web.Request) -> SmsSignIn:
    return _enabled(_identity(request).sms, "SMS code")


def _oidc(request: web.Request) -> OidcSignIn:
    return _enabled(_identity(request).oidc, "the identity platform")


def _kiosk(request: web.Request) -> KioskSignIn:
    return _enabled(_identity(request).kiosk, "kiosk")


def _staff(request: web.Request) -> StaffLogin:
    staff = _identity(request).staff
    assert staff is not None  # vtax.compose always gives the accounts
    return staff


# ---- taxpayers ------------------------------------------------------------------------------


async def methods(request: web.Request) -> web.Response:
    query(request, NoQuery)
    ids = _identity(request)
    found = [
        name for name, on in (("sms", ids.sms), ("oidc", ids.oidc), ("kiosk", ids.kiosk)) if on
    ]
    return _answer(c.SignInMethods(methods=found))  # type: ignore[arg-type]


async def sms_code(request: web.Request) -> web.Response:
    sms = _sms(request)
    req = await body(request, c.SmsCodeRequest)
    return _answer(await sms.request_code(req, client_address(request)))


async def sms_verify(request: web.Request) -> web.Response:
    sms = _sms(request)
    req = await body(request, c.SmsCodeVerify)
    return _answer(await sms.verify(req, client_address(request)))


async def oidc_start(request: web.Request) -> web.Response:
    oidc = _oidc(request)
    q = query(request, c.OidcStartQuery)
    req = await body(request, c.OidcStart)
    who = None
    if q.step_up:  # a fresh sign-in of the person already signed in
        who = await principal(request, request.app[CONTEXT])
        if who.role != "taxpayer":
            raise ApiError(403, "forbidden", "a step-up is for taxpayers")
    return _answer(
        await oidc.begin(req, step_up=q.step_up, address=client_address(request), caller=who)
    )


async def oidc_callback(request: web.Request) -> web.Response:
    oidc = _oidc(request)
    req = await body(request, c.OidcCallback)
    return _answer(await oidc.callback(req))


async def oidc_backchannel_logout(request: web.Request) -> web.Response:
    """The provider posts `logout_token` as a form (OpenID Connect Back-Channel Logout 2.5);
    200 with an empty body, 400 for a token that does not validate."""
    oidc = _oidc(request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise ApiError(400, "invalid_payload", "send the logout token as a form")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"the body is larger than {MAX_BODY} bytes")
    try:
        form = await request.post()
    except ValueError:
        raise ApiError(400, "invalid_payload", "the form cannot be read") from None
    fields: dict[str, Any] = {}
    for key in form:
        values = form.getall(key)
        if len(values) != 1 or not isinstance(values[0], str):
            raise ApiError(400, "invalid_payload", f"{key[:40]} must be given once, as text")
        fields[key] = values[0]
    try:
        req = c.BackchannelLogout.model_validate(fields)
    except ValidationError as exc:
        raise ApiError(
            400, "invalid_payload", "the form is not valid", details=validation_details(exc)
        ) from None
    await oidc.backchannel_logout(req)
    return _answer(None)


async def kiosk_challenge(request: web.Request) -> web.Response:
    kiosk = _kiosk(request)
    req = await body(request, c.KioskChallengeRequest)
    return _answer(await kiosk.challenge(req))


async def kiosk_sign_in(request: web.Request) -> web.Response:
    kiosk = _kiosk(request)
    req = await body(request, c.KioskSignIn)
    return _answer(await kiosk.sign_in(req))


async def act_for(request: web.Request) -> web.Response:
    req = await body(request, c.ActFor)
    return _answer(await _identity(request).signin.act_for(req))


async def refresh(request: web.Request) -> web.Response:
    req = await body(request, c.Refresh)
    return _answer(await _identity(request).signin.refresh(req))


async def logout(request: web.Request) -> web.Response:
    who = request[PRINCIPAL]
    req = await body(request, c.Logout)
    if who.version < 0:
        raise IdentityError(
            "invalid_state",
            "this token comes from the legacy identity step: it has no sign-in to end and "
            "expires by itself",
        )
    services = _identity(request)
    provider_url = None
    if who.method == "oidc" and services.oidc is not None:
        provider_url = await services.oidc.logout_url()
    return _answer(await services.signin.logout(who, req, provider_url))


# ---- staff ----------------------------------------------------------------------------------


async def staff_login(request: web.Request) -> web.Response:
    """Staff sign-in: rate-limited per client address and per username (vtax/app/signin.py,
    429 with Retry-After), the password checked off the event loop, then the second factor
    and the lockout (vtax/app/identity.py)."""
    ctx = request.app[CONTEXT]
    req = await body(request, c.StaffLogin2)
    gate = request.app[SIGN_IN]
    try:
        gate.admit(client_address(request), req.username)
        signed = await _staff(request).login(req)
    except (RateLimited, Busy) as exc:
        wait = exc.retry_after_s if isinstance(exc, RateLimited) else 1
        answer = error_response(429, "rate_limited", str(exc), retry_after_s=wait)
        answer.headers["Retry-After"] = str(wait)
        return answer
    except IdentityError as exc:
        if exc.code == "invalid_credentials":
            gate.failed(req.username)
        raise
    m = signed.member
    return json_response(
        {
            "token": signed.token,
            "role": m.role,
            "expires_in_s": ctx.issuer.ttl_s,
            "user": {"id": m.id, "username": m.username, "display_name": m.display_name},
            "second_factor": signed.second_factor,
        },
        headers=NO_STORE,
    )


async def totp_enroll(request: web.Request) -> web.Response:
    query(request, NoQuery)
    who = request[PRINCIPAL]
    member = await request.app[CONTEXT].accounts.staff(who.subject)
    if member is None:  # the guard checked it a moment ago
        raise ApiError(401, "unauthorized", "the account is disabled")
    return _answer(await _staff(request).enroll(who, member.username))


async def totp_confirm(request: web.Request) -> web.Response:
    req = await body(request, c.TotpConfirm)
    await _staff(request).confirm(request[PRINCIPAL], req)
    return _answer(None, 204)


async def staff_unlock(request: web.Request) -> web.Response:
    req = await body(request, c.StaffUnlock)
    if await request.app[CONTEXT].accounts.staff(req.user_id) is None:
        raise ApiError(404, "not_found", "no such staff account")
    await _staff(request).unlock(request[PRINCIPAL], req)
    return _answer(None, 204)


async def kiosk_register(request: web.Request) -> web.Response:
    req = await body(request, c.KioskRegister)
    kiosk = _kiosk(request)
    return _answer(await kiosk.register(request[PRINCIPAL], req), 201)


async def kiosk_revoke(request: web.Request) -> web.Response:
    query(request, NoQuery)
    kiosk_id = request.match_info["kiosk_id"]
    kiosk = _kiosk(request)
    if not KIOSK_ID.match(kiosk_id):
        raise ApiError(404, "not_found", "no such kiosk")
    return _answer(await kiosk.revoke(request[PRINCIPAL], kiosk_id))


# ---- people's access (supervisors) -------------------------------------------------------


def _person_id(request: web.Request) -> str:
    person_id = request.match_info["person_id"]
    if not KIOSK_ID.match(person_id):  # a person's id is a UUID too
        raise ApiError(404, "not_found", "no such person")
    return person_id


async def find_person(request: web.Request) -> web.Response:
    req = await body(request, c.PersonLookup)
    return _answer(await _identity(request).signin.find_person(request[PRINCIPAL], req))


async def get_person(request: web.Request) -> web.Response:
    query(request, NoQuery)
    signin = _identity(request).signin
    return _answer(await signin.person_account(request[PRINCIPAL], _person_id(request)))


async def disable_person(request: web.Request) -> web.Response:
    return await _set_disabled(request, True)


async def enable_person(request: web.Request) -> web.Response:
    return await _set_disabled(request, False)


async def _set_disabled(request: web.Request, disabled: bool) -> web.Response:
    person_id = _person_id(request)
    req = await body(request, c.PersonAccessChange)
    signin = _identity(request).signin
    return _answer(await signin.disable_person(request[PRINCIPAL], person_id, disabled, req.reason))


async def identity_audit(request: web.Request) -> web.Response:
    q = query(request, c.IdentityAuditQuery)
    signin = _identity(request).signin
    zone = ZoneInfo(request.app[CONTEXT].settings.service_timezone)
    return _answer(await signin.identity_audit(request[PRINCIPAL], q, zone))


def add_identity_routes(app: web.Application) -> None:
    bind(
        app,
        {
            "auth_login": staff_login,
            "auth_methods": methods,
            "auth_sms_code": sms_code,
            "auth_sms_verify": sms_verify,
            "auth_oidc_start": oidc_start,
            "auth_oidc_callback": oidc_callback,
            "auth_oidc_backchannel_logout": oidc_backchannel_logout,
            "auth_kiosk_challenge": kiosk_challenge,
            "auth_kiosk": kiosk_sign_in,
            "auth_act_for": act_for,
            "auth_refresh": refresh,
            "auth_logout": logout,
            "staff_totp_enroll": totp_enroll,
            "staff_totp_confirm": totp_confirm,
            "staff_unlock": staff_unlock,
            "kiosk_register": kiosk_register,
            "kiosk_revoke": kiosk_revoke,
            "find_person": find_person,
            "get_person": get_person,
            "disable_person": disable_person,
            "enable_person": enable_person,
            "identity_audit": identity_audit,
        },
    )
