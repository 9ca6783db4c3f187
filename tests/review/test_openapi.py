"""/api/openapi.json: every endpoint is in it, built from the schemas that validate requests;
and a property-based run against it (seeded random requests from the spec, good and bad, as
every role) finds no server error, while every success matches its documented schema."""

from __future__ import annotations

import json
import random
import re
import string
from typing import Any

import pytest

from tests.review.helpers import PDF, call, people, served
from vtax.contract.client_events import RatingBody
from vtax.contract.endpoints import ENDPOINTS
from vtax.contract.openapi import build_openapi, operation_models

PLAIN = ("/healthz", "/readyz", "/metrics")
MODELS = operation_models(ENDPOINTS)
NASTY = [
    "' OR '1'='1",
    "1; DROP TABLE service_sessions; --",
    "../../etc/passwd",
    "%00",
    "\u202e\u0000",
    "a\x00b",
    "粤语",
    '=HYPERLINK("x")',
    "x" * 3000,
    "",
    " ",
]


async def test_every_route_is_documented(server):
    status, spec = await call(server, "GET", "/api/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    for resource in server.app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if not path or not (path.startswith("/api/") or path in PLAIN):
            continue
        for r in resource:
            if r.method not in ("HEAD", "OPTIONS"):
                assert (r.method, path) in documented, (r.method, path)
    ours = [
        op
        for path, ops in spec["paths"].items()
        for op in ops.values()
        if path.startswith(("/api/sessions", "/api/deliveries", "/api/review", "/api/auth"))
        or path in ("/api/stats/kpi", "/api/catalog", "/api/openapi.json", "/healthz", "/readyz")
        if "materials" not in op.get("tags", [])  # the in-call materials count on their own
    ]
    # 26, the identity sign-in endpoints under /api/auth, the confirmation form's history, the chat
    # transcript
    assert len(ours) == 38
    # The served document is the contract's, built from the same table the server binds.
    assert spec == build_openapi()
    assert {op["operationId"] for ops in spec["paths"].values() for op in ops.values()} == {
        e.name for e in ENDPOINTS
    }
    for op in ours:
        assert "x-undocumented" not in op and op["summary"]
        if "x-roles" in op:
            assert {"401", "403"} <= set(op["responses"])
    # request bodies are the very models the handlers validate with
    rating = spec["paths"]["/api/sessions/{session_id}/rating"]["post"]["requestBody"]
    ref = rating["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/RatingBody")
    assert spec["components"]["schemas"]["RatingBody"] == _component(RatingBody, spec)
    params = {p["name"] for p in spec["paths"]["/api/sessions"]["get"]["parameters"]}
    assert {"from", "to", "agent", "rating", "flag", "outcome", "sort", "before"} <= params


def _component(model: Any, spec: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


# ---- a small generator of values from JSON Schema ------------------------------------------


class Gen:
    def __init__(self, spec: dict[str, Any], rng: random.Random) -> None:
        self.components = spec["components"]["schemas"]
        self.rng = rng

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def junk(self) -> Any:
        return self.rng.choice(
            [None, True, -1, 10**12, 3.5, "", "x" * 5000, [], {}, {"a": 1}, self.rng.choice(NASTY)]
        )

    def value(self, schema: dict[str, Any], depth: int = 0) -> Any:
        rng = self.rng
        schema = self.resolve(schema)
        if rng.random() < 0.08 or depth > 4:
            return self.junk()
        if "anyOf" in schema:
            return self.value(rng.choice(schema["anyOf"]), depth + 1)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return rng.choice(schema["enum"])
        kind = schema.get("type")
        if kind == "string":
            if schema.get("format") == "date":
                return rng.choice(["2026-11-02", "2026-02-30", "1999-01-01", "2100-12-31", "x"])
            if "pattern" in schema:
                return "".join(rng.choice("0123456789abcdef") for _ in range(64))
            lo, hi = schema.get("minLength", 0), min(schema.get("maxLength", 40), 60)
            return rng.choice(
                [
                    "".join(rng.choice(string.printable) for _ in range(rng.randint(lo, hi))),
                    rng.choice(NASTY),
                ]
            )
        if kind == "integer":
            lo, hi = schema.get("minimum", -5), schema.get("maximum", 1000)
            return rng.choice([lo, hi, rng.randint(lo, hi), lo - 1, hi + 1])
        if kind == "number":
            return rng.uniform(-10, 10)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "array":
            return [
                self.value(schema.get("items", {}), depth + 1) for _ in range(rng.randint(0, 3))
            ]
        if kind == "object" or "properties" in schema:
            out = {}
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                if name in required or rng.random() < 0.6:
                    out[name] = self.value(prop, depth + 1)
            if required and rng.random() < 0.1:
                out.pop(rng.choice(sorted(required)), None)
            if rng.random() < 0.1:
                out["unexpected"] = 1
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                for _ in range(rng.randint(0, 3)):
                    out[rng.choice(["greeting", "accuracy", "x", "record"])] = self.value(extra)
            return out
        return self.junk()


def response_model(op: dict[str, Any], status: int) -> Any:
    content = op["responses"].get("200", {}).get("content", {}).get("application/json")
    if status >= 300 or content is None or "$ref" not in content["schema"]:
        return None
    name = content["schema"]["$ref"].rsplit("/", 1)[-1]
    return next((m for m in MODELS if m.__name__ == name), None)


@pytest.mark.parametrize("seed", [1, 2])
async def test_property_based_run_finds_no_server_error(server, cast, seed):
    p = await people(server, cast)
    records = server.ctx.records
    sid = await served(records, p.taxpayer_id, p.agent_id)
    await served(records, p.taxpayer_id, None)
    _, d = await call(
        server, "POST", f"/api/sessions/{sid}/deliveries?filename=a.pdf", p.agent, data=PDF
    )
    status, spec = await call(server, "GET", "/api/openapi.json")
    rng = random.Random(seed)
    gen = Gen(spec, rng)
    tokens = [p.supervisor, p.agent, p.taxpayer, p.other_taxpayer, None]
    failures: list[str] = []
    requests = 0
    for path, ops in spec["paths"].items():
        if path in PLAIN or not path.startswith("/api/") or path.startswith("/api/recordings"):
            continue  # other modules' endpoints are fuzzed by their owners
        for method, op in ops.items():
            if op.get("x-undocumented"):
                continue
            for _ in range(12):
                url = re.sub(
                    r"\{(\w+)\}",
                    lambda m: rng.choice(
                        [sid if "session" in m.group(1) else d["id"], "nope", "%27--", "x" * 70]
                    ),
                    path,
                )
                params = {}
                for param in op.get("parameters", []):
                    if param["in"] == "query" and (param["required"] or rng.random() < 0.3):
                        value = gen.value(param["schema"])
                        params[param["name"]] = (
                            value if isinstance(value, str) else json.dumps(value)
                        )
                kwargs: dict[str, Any] = {"params": params}
                body = op.get("requestBody", {}).get("content", {})
                if "application/json" in body:
                    value = gen.value(body["application/json"]["schema"])
                    kwargs["data"] = json.dumps(value) if rng.random() < 0.95 else b"{not json"
                    kwargs["headers"] = {"Content-Type": "application/json"}
                elif body:
                    kwargs["data"] = rng.choice([PDF, b"MZ\x90", b"", b"%PDF" + b"x" * 100])
                token = rng.choice(tokens)
                status, data = await call(server, method.upper(), url, token, **kwargs)
                requests += 1
                if status >= 500:
                    failures.append(f"{method.upper()} {url} {kwargs} -> {status} {data}")
                    continue
                if status == 400 and isinstance(data, bytes) and len(str(params)) > 7000:
                    continue  # aiohttp's HTTP parser refuses an over-long request line
                if status >= 400:
                    if not (isinstance(data, dict) and data["error"]["code"]):
                        failures.append(f"{method.upper()} {url}: no error envelope {status}")
                    continue
                model = response_model(op, status)
                if model is not None:
                    try:
                        model.model_validate(data)
                    except Exception as exc:  # the documented shape is wrong
                        failures.append(f"{method.upper()} {path}: {exc}")
    assert requests > 250
    assert failures == []
