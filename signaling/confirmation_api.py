"""The confirmation form over HTTP: the items' field definitions and a session's version
history (vtax/app/confirmation.py). Proposing and deciding are Socket.IO events."""

from __future__ import annotations

from aiohttp import web

from signaling.context import CONTEXT
from signaling.http_api import bind, json_response, query
from signaling.review_api import visible_session
from vtax.contract.review import NoQuery


async def form_definitions(request: web.Request) -> web.Response:
    query(request, NoQuery)
    forms = request.app[CONTEXT].services.confirmation.definitions()
    return json_response(forms.model_dump(mode="json"))


async def form_history(request: web.Request) -> web.Response:
    """Who may see the session (its taxpayer, its agent, supervisors) sees its form."""
    query(request, NoQuery)
    ctx = request.app[CONTEXT]
    session_id = await visible_session(request, ctx)
    history = await ctx.services.confirmation.history(session_id)
    return json_response(history.model_dump(mode="json"))


def add_confirmation_routes(app: web.Application) -> None:
    bind(app, {"form_definitions": form_definitions, "form_history": form_history})
