"""The REST API: JSON in and out, every body validated, every error `{error: {code, message}}`."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlencode

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy import text

from signaling import schemas
from signaling.context import CONTEXT, AppContext
from signaling.hub import validation_details
from signaling.wire import FastJson
from vtax.app.signin import InvalidCredentials, RateLimited, SignIn
from vtax.auth import STAFF_ROLES, Principal, Role, Unauthorized
from vtax.errors import DomainError
from vtax.identity import InvalidIdentity
from vtax.review.records import Scope, SessionFilter

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
MAX_BODY = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATUS = {
    "invalid_payload": 400,
    "invalid_id": 400,
    "unauthorized": 401,
    "invalid_credentials": 401,
    "forbidden": 403,
    "not_found": 404,
    "payload_too_large": 413,
    "invalid_state": 409,
    "already_rated": 409,
    "hash_mismatch": 409,
    "not_in_session": 403,
    "unsupported_media_type": 415,
    "document_corrupted": 500,
}


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


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure on /api answers with the JSON error envelope."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)
    except DomainError as exc:
        return error_response(STATUS.get(exc.code, 409), exc.code, exc.message)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status, "http_error"
        )
        return error_response(exc.status, code, exc.reason)
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("request %s %s failed (incident %s)", request.method, request.path, incident)
        return error_response(500, "internal", f"internal error, incident {incident}")


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
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            400, "invalid_payload", "the body is not valid", details=validation_details(exc)
        ) from None


def principal(request: web.Request, ctx: AppContext) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
    try:
        return ctx.issuer.verify(token.strip())
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


# ---- the endpoint registry and OpenAPI ---------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One documented endpoint: the same schemas validate the request and write the docs."""

    method: str
    path: str  # aiohttp pattern, e.g. /api/sessions/{session_id}
    summary: str
    roles: tuple[str, ...] | None = None  # None: public
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    # other response media, e.g. {"text/csv": "CSV, one row per session"}
    produces: dict[str, str] = field(default_factory=dict)
    # a request body that is not a JSON schema (uploads): OpenAPI `content` as is
    request_content: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    # with roles: a signed link (query parameter `dl`, made by another endpoint for this
    # purpose, this path and this exact query) is accepted instead of the bearer token
    link: str | None = None


@dataclass
class ApiRegistry:
    """Every documented endpoint of this app, kept on the app (`API_REGISTRY`)."""

    endpoints: list[Endpoint] = field(default_factory=list)


API_REGISTRY = web.AppKey("vtax.api_registry", ApiRegistry)
PRINCIPAL = web.RequestKey("vtax.principal", Principal)


def api_registry(app: web.Application) -> ApiRegistry:
    registry = app.get(API_REGISTRY)
    if registry is None:
        registry = app[API_REGISTRY] = ApiRegistry()
    return registry


def route(app: web.Application, handler: Handler, endpoint: Endpoint) -> None:
    """Add a route and its documentation. With `roles`, the bearer token (or, with `link`, a
    signed link `?dl=`) is checked first (401 without a valid one, 403 for another role) and
    the caller's `Principal` is in `request[PRINCIPAL]`. Other modules (e.g.
    signaling/stats_api.py) register this way."""
    roles = endpoint.roles

    async def guarded(request: web.Request) -> web.StreamResponse:
        if roles is not None:
            ctx = request.app[CONTEXT]
            link = endpoint.link
            if link is not None and LINK_PARAM in request.query:  # checked even with a token
                who = await link_principal(request, ctx, link)  # the account's role, read there
            else:
                who = principal(request, ctx)
                if who.role in STAFF_ROLES:  # a disabled account's tokens stop working at once
                    staff = await ctx.accounts.staff(who.subject)
                    if staff is None or staff.role != who.role:
                        raise ApiError(401, "unauthorized", "the account is disabled")
            if who.role not in roles:
                raise ApiError(403, "forbidden", f"this is not allowed for role {who.role}")
            request[PRINCIPAL] = who
        return await handler(request)

    app.router.add_route(endpoint.method, endpoint.path, guarded)
    api_registry(app).endpoints.append(endpoint)


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for part in endpoint.path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1].split(":")[0]
            params.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                }
            )
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            description = prop.pop("description", None)
            prop.pop("title", None)
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
            }
            if description:
                param["description"] = description
            params.append(param)
    return params


def build_openapi(app: web.Application) -> dict[str, Any]:
    """OpenAPI 3.1 from the registry; any /api route registered without documentation is
    still listed (marked `x-undocumented`) so that every endpoint appears."""
    endpoints = list(api_registry(app).endpoints)
    models: set[type[BaseModel]] = {schemas.ErrorOut}
    for e in endpoints:
        models.update(m for m in (e.body, e.response) if m is not None)
    keyed, defs = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return keyed[(model, "validation")]

    error = {"application/json": {"schema": ref(schemas.ErrorOut)}}
    paths: dict[str, dict[str, Any]] = {}
    documented = set()
    for e in endpoints:
        documented.add((e.method.upper(), e.path))
        content: dict[str, Any] = {}
        if e.response is not None:
            content["application/json"] = {"schema": ref(e.response)}
        for media, description in e.produces.items():
            content[media] = {"schema": {"type": "string", "description": description}}
        responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
        codes = set(e.errors) | ({400} if e.body or e.query else set())
        if e.roles is not None:
            codes |= {401, 403}
        for code in sorted(codes):
            responses[str(code)] = {"description": "error", "content": error}
        op: dict[str, Any] = {
            "summary": e.summary,
            "operationId": f"{e.method.lower()}_{e.path.strip('/').replace('/', '_')}".replace(
                "{", ""
            )
            .replace("}", "")
            .replace("-", "_")
            .replace(".", "_"),
            "tags": list(e.tags),
            "parameters": _parameters(e),
            "responses": responses,
        }
        if e.roles is not None:
            op["security"] = [{"bearer": []}]
            if e.link is not None:
                op["security"].append({"signed_link": []})
            op["x-roles"] = list(e.roles)
        if e.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(e.body)}},
            }
        elif e.request_content is not None:
            op["requestBody"] = {"required": True, "content": e.request_content}
        paths.setdefault(e.path, {})[e.method.lower()] = op
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if not path or not (path.startswith("/api/") or path in PLAIN_ENDPOINTS):
            continue
        for r in resource:
            if r.method in ("HEAD", "OPTIONS") or (r.method, path) in documented:
                continue
            paths.setdefault(path, {})[r.method.lower()] = {
                "summary": "(registered without documentation)",
                "x-undocumented": True,
                "responses": {"200": {"description": "OK"}},
            }
    return {
        "openapi": "3.1.0",
        "info": {"title": "V-Tax API", "version": "1"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "signed_link": {
                    "type": "apiKey",
                    "in": "query",
                    "name": LINK_PARAM,
                    "description": "a short-lived signed link for one exact request "
                    "(e.g. from POST /api/review/export-links), instead of the bearer token",
                },
            },
        },
    }


async def openapi(request: web.Request) -> web.Response:
    return json_response(build_openapi(request.app))


async def auth_taxpayer(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    req = await body(request, schemas.TaxpayerAuth)
    try:
        taxpayer_id = await ctx.accounts.taxpayer_for(req.id_type, req.id_number, req.name)
    except InvalidIdentity as exc:
        raise ApiError(400, "invalid_id", str(exc)) from None
    token = ctx.issuer.issue(taxpayer_id, "taxpayer", req.name)
    return json_response(
        {
            "token": token,
            "taxpayer_id": taxpayer_id,
            "role": "taxpayer",
            "expires_in_s": ctx.issuer.ttl_s,
        }
    )


SIGN_IN = web.AppKey("vtax.sign_in", SignIn)


async def auth_login(request: web.Request) -> web.Response:
    """Staff sign-in, rate-limited per client address and per username (vtax/app/signin.py;
    429 `rate_limited` with Retry-After), the password checked off the event loop."""
    ctx = request.app[CONTEXT]
    req = await body(request, schemas.Login)
    try:
        staff = await request.app[SIGN_IN].attempt(request.remote or "", req.username, req.password)
    except RateLimited as exc:
        answer = error_response(429, exc.code, exc.message, retry_after_s=exc.retry_after_s)
        answer.headers["Retry-After"] = str(exc.retry_after_s)
        return answer
    except InvalidCredentials as exc:
        raise ApiError(401, exc.code, exc.message) from None
    token = ctx.issuer.issue(staff.id, staff.role, staff.display_name)  # type: ignore[arg-type]
    return json_response(
        {
            "token": token,
            "role": staff.role,
            "expires_in_s": ctx.issuer.ttl_s,
            "user": {
                "id": staff.id,
                "username": staff.username,
                "display_name": staff.display_name,
            },
        }
    )


async def catalog(request: web.Request) -> web.Response:
    return json_response(request.app[CONTEXT].catalog.data)


def session_filter(q: schemas.SessionFilterQuery, ctx: AppContext) -> SessionFilter:
    """The domain filter from a validated query; categories checked against the catalog."""
    ctx.catalog.check_categories(q.category, q.asked_category)
    if q.date_from and q.date_to and q.date_to < q.date_from:
        raise ApiError(400, "invalid_payload", "`to` is before `from`")
    if q.rating is not None and (q.min_rating is not None or q.max_rating is not None):
        raise ApiError(400, "invalid_payload", "give `rating` or `min_rating`/`max_rating`")
    return SessionFilter(
        joined_from=day_start(q.date_from) if q.date_from else None,
        joined_to=day_start(q.date_to + timedelta(days=1)) if q.date_to else None,
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


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


async def list_sessions(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = request[PRINCIPAL]
    q = query(request, schemas.SessionListQuery)
    rows, cursor = await ctx.records.list(
        Scope(who.role, who.subject), q.limit, q.before, session_filter(q, ctx)
    )
    return json_response({"sessions": rows, "next_before": cursor})


async def get_session(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = request[PRINCIPAL]
    session_id = request.match_info["session_id"]
    if len(session_id) > 64 or "\x00" in session_id:
        raise ApiError(404, "not_found", "no such session")
    return json_response(await ctx.records.get(session_id, Scope(who.role, who.subject)))


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    checks: dict[str, str] = {}
    try:
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1 FROM service_sessions LIMIT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    for check in ctx.ready_checks:  # registered by other parts: queue backend, Redis, pub/sub
        name, state = await check()
        checks[name] = state
    ready = all(v == "ok" for v in checks.values()) and not ctx.draining
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


ALL_ROLES = ("taxpayer", "agent", "supervisor")
PLAIN_ENDPOINTS = ("/healthz", "/readyz", "/metrics")  # endpoints outside /api/


def add_routes(app: web.Application) -> None:
    """The core endpoints, then the review module's (signaling/review_api.py)."""
    core = [
        (
            auth_taxpayer,
            Endpoint(
                "POST",
                "/api/auth/taxpayer",
                "Taxpayer identity step: a verified USCC or resident ID number to a token",
                body=schemas.TaxpayerAuth,
                response=schemas.TaxpayerAuthOut,
                tags=("auth",),
                errors=(400, 413),
            ),
        ),
        (
            auth_login,
            Endpoint(
                "POST",
                "/api/auth/login",
                "Staff sign-in (agent, supervisor)",
                body=schemas.Login,
                response=schemas.LoginOut,
                tags=("auth",),
                errors=(400, 401, 413, 429),
            ),
        ),
        (
            catalog,
            Endpoint(
                "GET",
                "/api/catalog",
                "Business categories with their items, languages and channels",
                response=schemas.CatalogOut,
                tags=("catalog",),
            ),
        ),
        (
            list_sessions,
            Endpoint(
                "GET",
                "/api/sessions",
                "Sessions visible to the caller, filtered, newest first (keyset pagination)",
                roles=ALL_ROLES,
                query=schemas.SessionListQuery,
                response=schemas.SessionPage,
                tags=("sessions",),
            ),
        ),
        (
            get_session,
            Endpoint(
                "GET",
                "/api/sessions/{session_id}",
                "One session with its loop state (404 when not visible to the caller)",
                roles=ALL_ROLES,
                response=schemas.SessionOut,
                tags=("sessions",),
                errors=(404,),
            ),
        ),
        (
            openapi,
            Endpoint(
                "GET",
                "/api/openapi.json",
                "This document",
                produces={"application/json": "OpenAPI 3.1"},
                tags=("meta",),
            ),
        ),
    ]
    ctx = app[CONTEXT]
    app[SIGN_IN] = SignIn.from_settings(ctx.accounts, ctx.settings)
    for handler, endpoint in core:
        route(app, handler, endpoint)
    route(
        app,
        healthz,
        Endpoint("GET", "/healthz", "Liveness", response=schemas.HealthOut, tags=("health",)),
    )
    route(
        app,
        readyz,
        Endpoint(
            "GET",
            "/readyz",
            "Readiness: the database answers and the queue is up (503 otherwise)",
            response=schemas.HealthOut,
            tags=("health",),
            errors=(503,),
        ),
    )
    # Imported here: the review endpoints build on this module's plumbing.
    from signaling.review_api import add_review_routes

    add_review_routes(app)
