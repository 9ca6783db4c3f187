"""The agent desk over HTTP: `GET /api/desk/today`, `GET /api/desk/sessions/{id}/history`
(vtax/app/desk.py)."""

from __future__ import annotations

from aiohttp import web

from signaling.context import CONTEXT
from signaling.http_api import PRINCIPAL, ApiError, bind, json_response, query
from vtax.app.ports import Caller
from vtax.contract.review import NoQuery


def _caller(request: web.Request) -> Caller:
    who = request[PRINCIPAL]
    return Caller(who.subject, who.role)


async def desk_today(request: web.Request) -> web.Response:
    query(request, NoQuery)
    today = await request.app[CONTEXT].services.desk.today(_caller(request))
    return json_response(today.model_dump(mode="json"))


async def desk_history(request: web.Request) -> web.Response:
    query(request, NoQuery)
    session_id = request.match_info["session_id"]
    if not 1 <= len(session_id) <= 64 or "\x00" in session_id:
        raise ApiError(404, "not_found", "no such live session of yours")
    history = await request.app[CONTEXT].services.desk.history(_caller(request), session_id)
    return json_response(history.model_dump(mode="json"))


def add_desk_routes(app: web.Application) -> None:
    bind(app, {"desk_today": desk_today, "desk_history": desk_history})
