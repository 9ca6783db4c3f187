"""The assistant over HTTP (docs/assistant.md): conversations' transcripts, agent
suggestions, the supervisors' knowledge base (edit, history, import, export), the unanswered
questions and the assistant's figures. Every handler is one call of vtax/app/consultation.py;
who may call is the endpoint table's (vtax/contract/endpoints.py, `# ---- assistant`), and
the use cases check it again (a taxpayer reads only their own conversations)."""

from __future__ import annotations

import re

from aiohttp import web

from signaling.context import CONTEXT
from signaling.http_api import PRINCIPAL, ApiError, bind, body, json_response, query
from vtax.app.ports import Caller
from vtax.compose import Services
from vtax.contract import consultation as cs
from vtax.contract.review import NoQuery

KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
CONVERSATION = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CHUNK = 64 * 1024


def _caller(request: web.Request) -> Caller:
    who = request[PRINCIPAL]
    return Caller(who.subject, who.role, name=who.name)


def _services(request: web.Request) -> Services:
    return request.app[CONTEXT].services


def _key(request: web.Request) -> str:
    key = request.match_info["key"]
    if not KEY.fullmatch(key):
        raise ApiError(404, "not_found", "no such knowledge-base entry")
    return key


def _answer(model: cs.Out, status: int = 200) -> web.Response:
    return json_response(model.model_dump(mode="json", by_alias=True), status=status)


# ---- conversations, suggestions, figures ------------------------------------------------------


async def get_consultation(request: web.Request) -> web.Response:
    query(request, NoQuery)
    cid = request.match_info["conversation_id"]
    if not CONVERSATION.fullmatch(cid):
        raise ApiError(404, "not_found", "no such conversation")
    view = await _services(request).consultations.transcript(_caller(request), cid)
    return _answer(view)


async def consultation_unanswered(request: web.Request) -> web.Response:
    q = query(request, cs.UnansweredQuery)
    return _answer(await _services(request).consultations.unanswered(_caller(request), q))


async def consultation_kpi(request: web.Request) -> web.Response:
    q = query(request, cs.ConsultationKpiQuery)
    return _answer(await _services(request).consultations.kpi(_caller(request), q))


async def kb_suggest(request: web.Request) -> web.Response:
    q = query(request, cs.SuggestQuery)
    return _answer(await _services(request).consultations.suggest(_caller(request), q))


# ---- the knowledge base -----------------------------------------------------------------------


async def kb_list(request: web.Request) -> web.Response:
    q = query(request, cs.KbListQuery)
    return _answer(await _services(request).knowledge_base.list(_caller(request), q))


async def kb_get(request: web.Request) -> web.Response:
    query(request, NoQuery)
    key = _key(request)
    return _answer(await _services(request).knowledge_base.get(_caller(request), key))


async def kb_history(request: web.Request) -> web.Response:
    query(request, NoQuery)
    key = _key(request)
    return _answer(await _services(request).knowledge_base.history(_caller(request), key))


async def kb_create(request: web.Request) -> web.Response:
    query(request, NoQuery)
    draft = await body(request, cs.KbEntryIn)
    view = await _services(request).knowledge_base.create(_caller(request), draft)
    return _answer(view, status=201)


async def kb_update(request: web.Request) -> web.Response:
    query(request, NoQuery)
    key = _key(request)
    change = await body(request, cs.KbEntryUpdateIn)
    return _answer(await _services(request).knowledge_base.update(_caller(request), key, change))


async def kb_retire(request: web.Request) -> web.Response:
    query(request, NoQuery)
    key = _key(request)
    change = await body(request, cs.KbRetireIn)
    return _answer(await _services(request).knowledge_base.retire(_caller(request), key, change))


async def kb_export(request: web.Request) -> web.Response:
    query(request, NoQuery)
    text = await _services(request).knowledge_base.export(_caller(request))
    return web.Response(
        text=text,
        content_type="application/json",
        headers={"Content-Disposition": "attachment; filename=vtax-kb.json"},
    )


async def read_file(request: web.Request, limit: int) -> bytes:
    """The request body up to `limit` bytes (the documents limit: a knowledge-base file is
    far larger than the 64 KiB of a JSON body)."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"the file is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the file is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def kb_import(request: web.Request) -> web.Response:
    q = query(request, cs.KbImportQuery)
    services = _services(request)
    data = await read_file(request, services.settings.documents_max_bytes)
    if not data.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"{"):
        raise ApiError(400, "invalid_payload", "send the knowledge-base file (a JSON object)")
    return _answer(await services.knowledge_base.import_file(_caller(request), data, q))


def add_assistant_routes(app: web.Application) -> None:
    bind(
        app,
        {
            # before /api/consultations/{conversation_id}, which would match it as well
            "consultation_unanswered": consultation_unanswered,
            "get_consultation": get_consultation,
            "consultation_kpi": consultation_kpi,
            "kb_suggest": kb_suggest,
            "kb_list": kb_list,
            "kb_create": kb_create,
            "kb_get": kb_get,
            "kb_update": kb_update,
            "kb_retire": kb_retire,
            "kb_history": kb_history,
            "kb_export": kb_export,
            "kb_import": kb_import,
        },
    )
