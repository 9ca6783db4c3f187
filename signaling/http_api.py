"""The REST API: JSON in and out, every body validated, every error `{error: {code, message}}`."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ValidationError
from sqlalchemy import text

from signaling.context import CONTEXT, AppContext
from signaling.fastjson import FastJson
from vtax.app.identity import STAFF_MFA, IdentityError
from vtax.app.signin import SignIn
from vtax.auth import Principal, Role, Unauthorized
from vtax.contract import review
from vtax.contract.endpoints import ENDPOINTS, Endpoint
from vtax.contract.errors import http_status, validation_details
from vtax.contract.openapi import build_openapi
from vtax.errors import DomainError
from vtax.proxies import TrustedProxies
from vtax.review.days import day_start
from vtax.review.records import Scope, SessionFilter
from vtax.unreachable import backend_of, exc_line, is_unreachable

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
MAX_BODY = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def json_response(data: Any, *, status: int = 200, **kwargs: Any) -> web.Response:
    """Every JSON answer of the REST API: orjson (a year of KPIs by day, ~370 rows of 17
    figures, took ~4 ms with the standard library, 0.4 ms with orjson), the standard library
    where orjson refuses a value (`FastJson`)."""
    return web.json_response(data, status=status, dumps=FastJson.dumps, **kwargs)


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return json_response({"error": {"code": code, "message": message, **extra}}, status=status)


def identity_error_response(exc: IdentityError) -> web.Response:
    """A refused sign-in step: its code's status, `Retry-After` for a wait, `step_up` with
    what a fresh sign-in must reach; never cached."""
    extra: dict[str, Any] = {}
    if exc.step_up is not None:
        extra["step_up"] = exc.step_up.model_dump(mode="json")
    answer = error_response(http_status(exc.code), exc.code, exc.message, **extra)
    if exc.retry_after_s > 0:
        answer.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    answer.headers["Cache-Control"] = "no-store"
    return answer


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure on /api answers with the JSON error envelope."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    except DomainError as exc:
        # a refusal's extra facts too (a step-up's `step_up`, a closed queue's next opening)
        extra = {k: v for k, v in exc.as_dict().items() if k not in ("code", "message")}
        return error_response(http_status(exc.code), exc.code, exc.message, **extra)
    except IdentityError as exc:
        return identity_error_response(exc)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status, "http_error"
        )
        answer = error_response(exc.status, code, exc.reason)
        if "Allow" in exc.headers:  # 405: the methods the path has
            answer.headers["Allow"] = exc.headers["Allow"]
        return answer
    except Exception as exc:
        if not is_unreachable(exc):
            incident = uuid.uuid4().hex[:12]
            log.exception(
                "request %s %s failed (incident %s)", request.method, request.path, incident
            )
            return error_response(500, "internal", f"internal error, incident {incident}")
        what = backend_of(exc)
        log.warning(
            "%s %s: %s is unreachable (%s)",
            request.method,
            request.path,
            what,
            exc_line(exc),
            extra={"outage": what},
        )
        return error_response(503, "unavailable", f"the {what} is unreachable; retry shortly")


UPLOAD_CHUNK = 64 * 1024


async def read_limited(part: BodyPartReader | web.Request, limit: int, what: str) -> bytes:
    """A raw body or one multipart part, refused with 413 once it passes `limit` bytes (read in
    chunks: nothing larger than the limit is ever held). `what` names it in the error."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if isinstance(part, BodyPartReader):
            chunk = await part.read_chunk(UPLOAD_CHUNK)
        else:
            chunk = await part.content.read(UPLOAD_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"{what} is at most {limit} bytes")
        chunks.append(chunk)


async def body(request: web.Request, schema: type[M]) -> M:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"the body is larger than {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"the body is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_payload", "the body must be a JSON object") from None
    except RecursionError:  # nested deeper than the parser goes: no message is like that
        raise ApiError(400, "invalid_payload", "the body is nested too deeply") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            400, "invalid_payload", "the body is not valid", details=validation_details(exc)
        ) from None


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
    return token.strip()


async def principal(request: web.Request, ctx: AppContext) -> Principal:
    """The bearer token's caller (vtax.compose `Services.authenticate`: a disabled staff
    account, a revoked or signed-out taxpayer token, an ended grant are refused at once)."""
    try:
        return await ctx.services.authenticate(bearer_token(request))
    except Unauthorized as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None


LINK_PARAM = "dl"


def link_resource(path: str, params: Any) -> str:
    """What a signed link binds: the path and its query without `dl`, in a canonical order
    (the same filters in another order are the same request; any other change is not)."""
    items = sorted((k, v) for k, v in params.items() if k != LINK_PARAM)
    return f"{path}?{urlencode(items, quote_via=quote)}"


async def link_principal(request: web.Request, ctx: AppContext, purpose: str) -> Principal:
    """The caller of a request authorized by a signed link (`?dl=`): the link must be valid
    for this purpose, path and exact query, and its subject still an enabled staff account."""
    tokens = request.query.getall(LINK_PARAM)
    if len(tokens) != 1:
        raise ApiError(401, "unauthorized", "one signed link (`dl`) at most")
    try:
        subject, expires = ctx.issuer.verify_link(
            tokens[0], purpose, link_resource(request.path, request.query)
        )
    except Unauthorized as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    staff = await ctx.accounts.staff(subject)
    if staff is None:
        raise ApiError(401, "unauthorized", "the account is disabled")
    role = cast(Role, staff.role)
    return Principal(subject, role, float(expires), staff.display_name)


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_payload", f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, "invalid_payload", f"{name} must be between {lo} and {hi}")
    return value


def query(request: web.Request, schema: type[M]) -> M:
    """Validate the query string against a schema (unknown or repeated parameters refused)."""
    if len(request.query) != len(set(request.query.keys())):
        raise ApiError(400, "invalid_payload", "a query parameter is given more than once")
    try:
        return schema.model_validate(dict(request.query))
    except ValidationError as exc:
        raise ApiError(
            400, "invalid_payload", "the query is not valid", details=validation_details(exc)
        ) from None


# ---- the endpoint table (vtax/contract/endpoints.py) and its handlers ------------------------


@dataclass
class Bound:
    """The endpoints bound on this app, by name (each of the contract's exactly once)."""

    names: set[str] = field(default_factory=set)


BOUND = web.AppKey("vtax.bound_endpoints", Bound)
ENDPOINT = {e.name: e for e in ENDPOINTS}
OPENAPI = build_openapi()
PRINCIPAL = web.RequestKey("vtax.principal", Principal)


def _check_answer(endpoint: Endpoint, response: web.StreamResponse) -> None:
    """With outgoing validation on (the suite): a JSON answer is what the endpoint's model
    says, field for field."""
    if (
        endpoint.response is None
        or not isinstance(response, web.Response)
        or response.content_type != "application/json"
        or not 200 <= response.status < 300
        or response.body is None
    ):
        return
    raw = response.body if isinstance(response.body, bytes) else bytes(response.body._value)  # type: ignore[union-attr]
    sent = json.loads(raw)
    dumped = endpoint.response.model_validate(sent).model_dump(mode="json", by_alias=True)
    if dumped != sent:
        raise AssertionError(f"{endpoint.name} answered {sent!r}; the model says {dumped!r}")


def route(app: web.Application, handler: Handler, endpoint: Endpoint) -> None:
    """Add one endpoint of the contract's table. With `roles`, the bearer token (or, with
    `link`, a signed link `?dl=`) is checked first (401 without a valid one, 403 for another
    role) and the caller's `Principal` is in `request[PRINCIPAL]`; a staff account that was
    disabled is refused at once, by token or by link. Recordings and exports (`second_factor`)
    need a token of a sign-in with the second factor, where the settings say so."""
    roles = endpoint.roles
    validate = app[CONTEXT].settings.validate_outgoing
    second_factor = endpoint.second_factor and app[CONTEXT].settings.records_need_second_factor

    async def guarded(request: web.Request) -> web.StreamResponse:
        if roles is not None:
            ctx = request.app[CONTEXT]
            link = endpoint.link
            by_link = link is not None and LINK_PARAM in request.query
            if by_link:  # checked even with a token
                assert link is not None
                who = await link_principal(request, ctx, link)  # the account's role, read there
            else:
                who = await principal(request, ctx)
            if who.role not in roles:
                raise ApiError(403, "forbidden", f"this is not allowed for role {who.role}")
            # a link is made only for such a sign-in (by an endpoint that checked it)
            if second_factor and not by_link and who.method != STAFF_MFA:
                raise ApiError(
                    401,
                    "second_factor_required",
                    "recordings and exports need a sign-in with your authenticator's code",
                )
            request[PRINCIPAL] = who
        response = await handler(request)
        if validate:
            _check_answer(endpoint, response)
        return response

    app.router.add_route(endpoint.method, endpoint.path, guarded)
    bound = app.get(BOUND)
    if bound is None:
        bound = app[BOUND] = Bound()
    if endpoint.name in bound.names:
        raise ValueError(f"endpoint {endpoint.name} is bound twice")
    bound.names.add(endpoint.name)


def bind(app: web.Application, handlers: dict[str, Handler]) -> None:
    """Bind handlers to the contract's endpoints by name."""
    for name, handler in handlers.items():
        route(app, handler, ENDPOINT[name])


def check_bound(app: web.Application) -> None:
    """Every endpoint of the contract has its handler (called once the app is built)."""
    missing = set(ENDPOINT) - app.get(BOUND, Bound()).names
    if missing:
        raise ValueError(f"endpoints without a handler: {', '.join(sorted(missing))}")


async def openapi(request: web.Request) -> web.Response:
    query(request, review.NoQuery)
    return json_response(OPENAPI)


SIGN_IN = web.AppKey("vtax.sign_in", SignIn)
PROXIES = web.AppKey("vtax.trusted_proxies", TrustedProxies)


def client_address(request: web.Request) -> str:
    """The client's address, the one every per-address limit counts: the TCP peer, or behind
    a trusted proxy (`VTAX_TRUSTED_PROXIES`) the rightmost `X-Forwarded-For` entry that is
    not itself a trusted proxy (vtax/proxies.py). The one place an address is taken."""
    forwarded = request.headers.getall("X-Forwarded-For", ())
    return request.app[PROXIES].client(request.remote, forwarded)


async def catalog(request: web.Request) -> web.Response:
    query(request, review.NoQuery)
    ctx = request.app[CONTEXT]
    return json_response({**ctx.catalog.data, "timezone": ctx.settings.service_timezone})


def session_filter(q: review.SessionFilterQuery, ctx: AppContext) -> SessionFilter:
    """The domain filter from a validated query; categories checked against the catalog."""
    ctx.catalog.check_categories(q.category, q.asked_category)
    zone = ZoneInfo(ctx.settings.service_timezone)  # the KPIs' days too (vtax/review/days.py)
    if q.date_from and q.date_to and q.date_to < q.date_from:
        raise ApiError(400, "invalid_payload", "`to` is before `from`")
    if q.rating is not None and (q.min_rating is not None or q.max_rating is not None):
        raise ApiError(400, "invalid_payload", "give `rating` or `min_rating`/`max_rating`")
    return SessionFilter(
        joined_from=day_start(q.date_from, zone) if q.date_from else None,
        joined_to=day_start(q.date_to + timedelta(days=1), zone) if q.date_to else None,
        agent_id=q.agent,
        category=q.category,
        asked_category=q.asked_category,
        channel=q.channel,
        language=q.language,
        min_rating=q.rating if q.rating is not None else q.min_rating,
        max_rating=q.rating if q.rating is not None else q.max_rating,
        rated=q.rated,
        flag=q.flag,
        outcome=q.outcome,
        check=q.check,
        follow_up=q.follow_up,
        sort=q.sort,
    )


async def list_sessions(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = request[PRINCIPAL]
    q = query(request, review.SessionListQuery)
    rows, cursor = await ctx.records.list(
        Scope(who.role, who.subject, who.acting_for, who.acting_role),
        q.limit,
        q.before,
        session_filter(q, ctx),
    )
    return json_response({"sessions": rows, "next_before": cursor})


async def get_session(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = request[PRINCIPAL]
    session_id = request.match_info["session_id"]
    query(request, review.NoQuery)
    if len(session_id) > 64 or "\x00" in session_id:
        raise ApiError(404, "not_found", "no such session")
    scope = Scope(who.role, who.subject, who.acting_for, who.acting_role)
    return json_response(await ctx.records.get(session_id, scope))


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def database_check(ctx: AppContext) -> tuple[str, str]:
    """The database answers a query on the records (bounded to 2 s)."""
    try:

        async def query() -> None:
            async with ctx.engine.connect() as conn:
                await conn.execute(text("SELECT 1 FROM service_sessions LIMIT 1"))

        await asyncio.wait_for(query(), 2.0)
        return "database", "ok"
    except Exception as exc:
        return "database", f"failed: {exc_line(exc)}"


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    name, state = await database_check(ctx)
    checks: dict[str, str] = {name: state}
    for check in ctx.ready_checks:  # registered by other parts: queue backend, Redis, pub/sub
        name, state = await check()
        checks[name] = state
    ready = all(v == "ok" for v in checks.values()) and not ctx.draining
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


def add_routes(app: web.Application) -> None:
    """The core endpoints, then the review module's (signaling/review_api.py)."""
    ctx = app[CONTEXT]
    app[SIGN_IN] = SignIn.from_settings(ctx.accounts, ctx.settings)
    app[PROXIES] = TrustedProxies.of(ctx.settings.trusted_proxies)
    bind(
        app,
        {
            "catalog": catalog,
            "list_sessions": list_sessions,
            "get_session": get_session,
            "openapi": openapi,
            "healthz": healthz,
            "readyz": readyz,
        },
    )
    # Imported here: the review endpoints build on this module's plumbing.
    from signaling.review_api import add_review_routes

    add_review_routes(app)
