"""Materials from the taxpayer over HTTP (vtax/app/materials.py; the endpoints are the
`material_*` rows of vtax/contract/endpoints.py): the upload (multipart `file`, `source`,
`replaces`, or a raw body with them in the query), the session's list, a material's bytes,
the agent's review. The document's content type from the client is ignored: the type is
sniffed from the bytes."""

from __future__ import annotations

import re
import warnings
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from signaling.context import CONTEXT
from signaling.http_api import (
    PRINCIPAL,
    UPLOAD_CHUNK,
    ApiError,
    bind,
    body,
    json_response,
    query,
    read_limited,
)
from vtax.app.materials import Materials
from vtax.app.ports import Caller
from vtax.contract import materials as mt
from vtax.contract.errors import validation_details
from vtax.contract.review import NoQuery

PATH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
FIELD_MAX = 200  # `source` and `replaces` are short


def _caller(request: web.Request) -> Caller:
    who = request[PRINCIPAL]
    return Caller(who.subject, who.role, expires_at=who.expires_at)


def _use_cases(request: web.Request) -> Materials:
    return request.app[CONTEXT].services.materials


def _id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not PATH_ID.match(value):
        raise ApiError(404, "not_found", "no such resource")
    return value


def _check_name(filename: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in filename):
        raise ApiError(400, "invalid_payload", "the file name has control characters")
    return filename


async def read_material(request: web.Request, limit: int) -> tuple[bytes, mt.MaterialUploadQuery]:
    """The bytes and their fields, from a multipart form or a raw body; every field checked
    by the contract's model (`MaterialUploadQuery`)."""
    if request.content_length is not None and request.content_length > limit + UPLOAD_CHUNK:
        raise ApiError(413, "payload_too_large", f"materials are at most {limit} bytes")
    if request.content_type != "multipart/form-data":
        q = query(request, mt.MaterialUploadQuery)
        _check_name(q.filename)
        return await read_limited(request, limit, "a material"), q
    if request.query:
        raise ApiError(400, "invalid_payload", "a multipart upload takes no query parameters")
    fields: dict[str, str] = {}
    data: bytes | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a malformed header is refused below, not warned
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise ApiError(400, "invalid_payload", "nested multipart is not accepted")
                if part.name == "file" and data is None:
                    fields["filename"] = _check_name((part.filename or "document")[:200])
                    data = await read_limited(part, limit, "a material")
                elif part.name in ("source", "replaces") and part.name not in fields:
                    raw = await read_limited(part, FIELD_MAX, f"`{part.name}`")
                    fields[part.name] = raw.decode("utf-8")
                else:
                    raise ApiError(
                        400, "invalid_payload", "the form takes `file`, `source` and `replaces`"
                    )
    except (ValueError, RuntimeError, LookupError, AssertionError, HttpProcessingError) as exc:
        raise ApiError(400, "invalid_payload", f"the multipart body is not valid: {exc}") from None
    if data is None:
        raise ApiError(400, "invalid_payload", "the form has no `file` part")
    try:
        q = mt.MaterialUploadQuery.model_validate(fields)
    except ValidationError as exc:
        raise ApiError(
            400, "invalid_payload", "the form is not valid", details=validation_details(exc)
        ) from None
    return data, q


async def upload(request: web.Request) -> web.Response:
    use_cases = _use_cases(request)
    session_id = _id(request, "session_id")
    data, q = await read_material(request, use_cases.max_bytes)
    view = await use_cases.submit(
        _caller(request),
        session_id,
        filename=q.filename,
        data=data,
        source=q.source,
        replaces=q.replaces,
    )
    return json_response(view.model_dump(mode="json"), status=201)


async def list_materials(request: web.Request) -> web.Response:
    query(request, NoQuery)
    found = await _use_cases(request).of_session(_caller(request), _id(request, "session_id"))
    return json_response(found.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


async def content(request: web.Request) -> web.Response:
    query(request, NoQuery)
    session_id, material_id = _id(request, "session_id"), _id(request, "material_id")
    view, data = await _use_cases(request).open(_caller(request), session_id, material_id)
    return web.Response(
        body=data,
        content_type=view.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(view.filename)}",
            "X-Content-SHA256": view.sha256,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


async def review(request: web.Request) -> web.Response:
    p = await body(request, mt.MaterialReviewIn)
    session_id, material_id = _id(request, "session_id"), _id(request, "material_id")
    view = await _use_cases(request).review(_caller(request), session_id, material_id, p)
    return json_response(view.model_dump(mode="json"))


def add_materials_routes(app: web.Application) -> None:
    bind(
        app,
        {
            "material_upload": upload,
            "material_list": list_materials,
            "material_content": content,
            "material_review": review,
        },
    )
