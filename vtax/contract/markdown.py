"""docs/protocol.md's message tables, rendered from the JSON Schema of the models."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vtax.contract.typescript import ref_name

CATALOG_NAMES = {"category": "catalog category", "language": "catalog language"}


def cell(text: str) -> str:
    """Text for a Markdown table cell (pipes escaped, one line)."""
    return " ".join(text.split()).replace("|", "\\|")


def _bounds(schema: dict[str, Any]) -> str:
    lo, hi = schema.get("minLength"), schema.get("maxLength")
    if lo is None and hi is None:
        lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is None and hi is None:
        return ""
    if lo is None or lo == 0:
        return f" (<= {hi})"
    if hi is None:
        return f" (>= {lo})"
    return f" ({lo}..{hi})"


def shape(schema: dict[str, Any]) -> str:
    """A compact signature: `{field: type, optional?: type}`, names for referenced models."""
    if "$ref" in schema:
        return ref_name(schema["$ref"])
    if "x-catalog" in schema:
        return f"catalog {schema['x-catalog']}"
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    if "enum" in schema:
        return "\\|".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    if "anyOf" in schema:
        parts = [shape(s) for s in schema["anyOf"]]
        return "\\|".join(dict.fromkeys(parts))
    kind = schema.get("type")
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date":
            return '"YYYY-MM-DD"'
        return "str" + _bounds(schema)
    if kind == "integer":
        return "int" + _bounds(schema)
    if kind == "number":
        return "number"
    if kind == "boolean":
        return "bool"
    if kind == "null":
        return "null"
    if kind == "array":
        return f"[{shape(schema.get('items', {}))}]"
    if kind == "object":
        if "properties" in schema:
            return fields(schema)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return f"{{str: {shape(extra)}}}"
        return "object"
    return "any"


def fields(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    parts = [
        f"{name}{'' if name in required else '?'}: {shape(prop)}"
        for name, prop in schema.get("properties", {}).items()
    ]
    return "{" + ", ".join(parts) + "}" if parts else "{}"


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def doc_of(schema: dict[str, Any]) -> str:
    return " ".join(str(schema.get("description", "")).split())
