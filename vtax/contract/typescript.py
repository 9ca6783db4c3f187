"""TypeScript declarations from JSON Schema: the subset pydantic writes for this contract
(objects, arrays, maps, enums, constants, unions, nullables, references)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


class SchemaError(ValueError):
    """The schema uses something this emitter does not translate."""


def ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def prop_key(name: str) -> str:
    return name if IDENT.match(name) else json.dumps(name)


def type_of(schema: dict[str, Any]) -> str:
    """The TypeScript type of one schema (references become their interface names)."""
    if "$ref" in schema:
        return ref_name(schema["$ref"])
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    if "enum" in schema:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    for union in ("anyOf", "oneOf"):
        if union in schema:
            parts = list(dict.fromkeys(type_of(s) for s in schema[union]))
            return " | ".join(f"({p})" if "=>" in p else p for p in parts)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(type_of({**schema, "type": k}) for k in kind)
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        items = schema.get("items")
        inner = type_of(items) if items else "unknown"
        return f"Array<{inner}>"
    if kind == "object" or "properties" in schema:
        if "properties" in schema:
            return inline_object(schema)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return f"Record<string, {type_of(extra)}>"
        return "Record<string, unknown>"
    if not schema:
        return "unknown"
    raise SchemaError(f"cannot translate {json.dumps(schema)[:200]}")


def _members(schema: dict[str, Any], indent: str) -> list[str]:
    required = set(schema.get("required", []))
    lines: list[str] = []
    for name, prop in schema.get("properties", {}).items():
        doc = prop.get("description")
        if doc:
            lines.append(f"{indent}/** {' '.join(doc.split())} */")
        optional = "" if name in required else "?"
        lines.append(f"{indent}{prop_key(name)}{optional}: {type_of(prop)};")
    return lines


def inline_object(schema: dict[str, Any]) -> str:
    members = _members(schema, "")
    return "{ " + " ".join(m for m in members if not m.startswith("/**")) + " }"


def interface(name: str, schema: dict[str, Any]) -> str:
    """One `export interface` (or `export type` for what is not an object) with its docs."""
    out: list[str] = []
    doc = schema.get("description")
    if doc:
        out.append("/**")
        out.extend(f" * {line}".rstrip() for line in doc.strip().splitlines())
        out.append(" */")
    if schema.get("type") == "object" and "properties" in schema:
        out.append(f"export interface {name} {{")
        out.extend(_members(schema, "  "))
        out.append("}")
    elif schema.get("type") == "object" and not schema.get("properties"):
        extra = schema.get("additionalProperties")
        if extra is False:
            out.append(f"export type {name} = Record<string, never>;")
        else:
            out.append(f"export type {name} = {type_of(schema)};")
    else:
        out.append(f"export type {name} = {type_of(schema)};")
    return "\n".join(out)


def interfaces(defs: dict[str, dict[str, Any]], names: Iterable[str] | None = None) -> str:
    chosen = sorted(defs) if names is None else list(names)
    return "\n\n".join(interface(name, defs[name]) for name in chosen)


def references(schema: Any) -> set[str]:
    """Every definition a schema refers to, directly."""
    found: set[str] = set()
    if isinstance(schema, dict):
        if "$ref" in schema:
            found.add(ref_name(schema["$ref"]))
        for value in schema.values():
            found |= references(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= references(value)
    return found
