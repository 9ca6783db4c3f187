"""The OpenAPI 3.1 document, built from the endpoint table and its models alone (no server
needed: the generator and the server build the same document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from vtax.contract.endpoints import ENDPOINTS, ID_PARAM, Endpoint
from vtax.contract.http import ErrorOut

LINK_PARAM = "dl"
SUCCESS = {200: "OK", 201: "Created", 204: "No content"}
REASONS = {
    400: "the request is not valid (`invalid_payload`, `unknown_category`, ...)",
    401: "no valid token or signed link",
    403: "the caller's role may not do this",
    404: "not found, or not visible to the caller",
    405: "method not allowed",
    409: "not allowed in the current state",
    413: "the body is too large",
    415: "unsupported media type",
    416: "range not satisfiable",
    423: "the account is locked for a while (`Retry-After`)",
    429: "too many requests; retry later",
    500: "internal error",
    503: "a backend is unreachable, or the node is draining",
}


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": endpoint.params.get(name, ID_PARAM),
        }
        for name in endpoint.path_params()
    ]
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


def _codes(e: Endpoint) -> set[int]:
    codes = set(e.errors)
    if e.body is not None or e.query is not None or e.request_content is not None:
        codes.add(400)
    if e.body is not None or e.request_content is not None:
        codes.add(413)
    if e.roles is not None:
        codes |= {401, 403}
    if e.path_params():
        codes.add(404)
    if e.roles is not None or e.body is not None:
        codes.add(503)  # they read the database
    return codes


def operation_models(endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> list[type[BaseModel]]:
    models: set[type[BaseModel]] = {ErrorOut}
    for e in endpoints:
        models.update(m for m in (e.body, e.response) if m is not None)
    return sorted(models, key=lambda m: m.__name__)


def build_openapi(endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> dict[str, Any]:
    """OpenAPI 3.1 of every endpoint: parameters, bodies, every status and content type."""
    models = operation_models(endpoints)
    keyed, defs = models_json_schema(
        [(m, "serialization" if _is_answer(m, endpoints) else "validation") for m in models],
        ref_template="#/components/schemas/{model}",
    )

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return keyed[(model, mode)]  # type: ignore[index]

    error = {"application/json": {"schema": ref(ErrorOut, "serialization")}}
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        content: dict[str, Any] = {}
        if e.response is not None:
            content["application/json"] = {"schema": ref(e.response, "serialization")}
        for media, description in e.produces.items():
            content[media] = {"schema": {"type": "string", "description": description}}
        success: dict[str, Any] = {"description": SUCCESS.get(e.status, "OK")}
        if content:
            success["content"] = content
        if e.headers:
            success["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in e.headers.items()
            }
        responses: dict[str, Any] = {str(e.status): success}
        if e.link == "recording-file":
            responses["206"] = {"description": "Partial content (a Range request)"}
        for code in sorted(_codes(e)):
            responses[str(code)] = {"description": REASONS[code], "content": error}
        if e.second_factor:
            responses["401"]["description"] += (
                "; `second_factor_required`: a sign-in without the authenticator's code "
                "(setting `records_need_second_factor`)"
            )
        # aiohttp's HTTP parser answers a request it cannot read (a request line or a header
        # over 8190 bytes) before any handler runs, in plain text.
        responses["400"] = {
            "description": REASONS[400],
            "content": {**error, "text/plain": {"schema": {"type": "string"}}},
        }
        op: dict[str, Any] = {
            "summary": e.summary,
            "operationId": e.name,
            "tags": list(e.tags),
            "parameters": _parameters(e),
            "responses": responses,
        }
        if e.roles is not None:
            op["security"] = [{"bearer": []}]
            if e.link is not None:
                op["security"].append({"signed_link": []})
            op["x-roles"] = list(e.roles)
            if e.second_factor:
                op["x-second-factor"] = True
        if e.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(e.body, "validation")}},
            }
        elif e.request_content is not None:
            op["requestBody"] = {"required": True, "content": e.request_content}
        paths.setdefault(e.path, {})[e.method.lower()] = op
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


def _is_answer(model: type[BaseModel], endpoints: tuple[Endpoint, ...]) -> bool:
    return model is ErrorOut or any(e.response is model for e in endpoints)
