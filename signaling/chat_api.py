"""The in-call chat over HTTP: `GET /api/sessions/{id}/messages`, a session's messages for
whoever may see the session (a supervisor: any; the taxpayer and the agent: their own),
read-only (vtax/app/chat.py). Writing is Socket.IO's `chat:send`, inside the live call."""

from __future__ import annotations

from aiohttp import web

from signaling.context import CONTEXT
from signaling.http_api import bind, json_response, query
from signaling.review_api import visible_session
from vtax.contract.chat import ChatMessagesQuery


async def chat_messages(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session_id = await visible_session(request, ctx)  # 404 when not visible to the caller
    q = query(request, ChatMessagesQuery)
    transcript = await ctx.services.chat.transcript(session_id, q.after_seq, q.limit)
    return json_response(transcript.model_dump(mode="json", by_alias=True))


def add_chat_routes(app: web.Application) -> None:
    bind(app, {"chat_messages": chat_messages})
