"""The REST API: JSON in and out, every body validated, every error `{error: {code, message}}`."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy import text

from signaling import schemas
from signaling.context import CONTEXT, AppContext
from signaling.hub import validation_details
from vtax.auth import Principal, Unauthorized
from vtax.errors import DomainError
from vtax.identity import InvalidIdentity
from vtax.review.records import Scope

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
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


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


async def auth_taxpayer(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    req = await body(request, schemas.TaxpayerAuth)
    try:
        taxpayer_id = await ctx.accounts.taxpayer_for(req.id_type, req.id_number, req.name)
    except InvalidIdentity as exc:
        raise ApiError(400, "invalid_id", str(exc)) from None
    token = ctx.issuer.issue(taxpayer_id, "taxpayer", req.name)
    return web.json_response(
        {
            "token": token,
            "taxpayer_id": taxpayer_id,
            "role": "taxpayer",
            "expires_in_s": ctx.issuer.ttl_s,
        }
    )


async def auth_login(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    req = await body(request, schemas.Login)
    staff = await ctx.accounts.authenticate(req.username, req.password)
    if staff is None:
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    token = ctx.issuer.issue(staff.id, staff.role, staff.display_name)  # type: ignore[arg-type]
    return web.json_response(
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
    return web.json_response(request.app[CONTEXT].catalog.data)


async def list_sessions(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = principal(request, ctx)
    limit = query_int(request, "limit", 50, 1, 200)
    before = request.query.get("before") or None
    if before is not None and len(before) > 200:
        raise ApiError(400, "invalid_payload", "before is not a valid cursor")
    rows, cursor = await ctx.records.list(Scope(who.role, who.subject), limit, before)
    return web.json_response({"sessions": rows, "next_before": cursor})


async def get_session(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = principal(request, ctx)
    session_id = request.match_info["session_id"]
    if len(session_id) > 64:
        raise ApiError(404, "not_found", "no such session")
    return web.json_response(await ctx.records.get(session_id, Scope(who.role, who.subject)))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


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
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/taxpayer", auth_taxpayer)
    app.router.add_post("/api/auth/login", auth_login)
    app.router.add_get("/api/catalog", catalog)
    app.router.add_get("/api/sessions", list_sessions)
    app.router.add_get("/api/sessions/{session_id}", get_session)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
