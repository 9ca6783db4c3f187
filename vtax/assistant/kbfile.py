"""The knowledge base as a file: JSON that supervisors export, edit and import, and that the
seed ships in (vtax/data/kb_*.json).

    {"format": "vtax-kb", "version": 1,
     "links": {"etax": {"url": "https://...", "title": {"zh-CN": "...", "en": "..."}}},
     "entries": [{"key": "...", "category": "...", "items": [...],
                  "valid_from": "YYYY-MM-DD" | null, "valid_until": ... | null,
                  "texts": {"zh-CN": {"question": "...", "alternatives": [...],
                                      "answer": "...", "links": ["etax", {"url", "title"}]},
                            "zh-HK": ..., "en": ..., "pt": ...}}]}

A text's link is either a name from the file's `links` table (its title in that language,
else zh-CN's) or an inline `{url, title}`. The export always writes links inline. Every
problem is reported with where it is (line and column of a syntax error; the entry's index,
key and line, and the field path, for a content error), all of them at once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from vtax.assistant.kb import KB_LANGUAGES, Entry, EntryDraft

FORMAT = "vtax-kb"
FORMAT_VERSION = 1
MAX_PROBLEMS = 50


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file, and where."""

    where: str  # "line 3, column 7" or "entries[4] (key 'x', line 80): texts.en.answer"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class KbFileError(ValueError):
    """A file that cannot be imported; `problems` says each thing wrong and where."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        more = "" if len(problems) <= 5 else f" (and {len(problems) - 5} more)"
        super().__init__("; ".join(map(str, problems[:5])) + more)


def _line_of_key(text: str, key: str) -> int | None:
    match = re.search(r'"key"\s*:\s*' + re.escape(json.dumps(key)), text)
    return None if match is None else text.count("\n", 0, match.start()) + 1


def _resolve_links(raw: Any, lang: str, table: dict[str, Any], problems: list[str]) -> Any:
    if not isinstance(raw, list):
        return raw
    out: list[Any] = []
    for i, link in enumerate(raw):
        if isinstance(link, str):
            named = table.get(link)
            if named is None:
                problems.append(f"links[{i}]: no link named {link[:64]!r} in the file's links")
                continue
            titles = named.get("title", {}) if isinstance(named, dict) else {}
            title = titles.get(lang) or titles.get("zh-CN") if isinstance(titles, dict) else None
            out.append({"url": named.get("url"), "title": title})
        else:
            out.append(link)
    return out


def parse(data: bytes | str) -> list[EntryDraft]:
    """The entries of a file, or KbFileError with every problem found."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise KbFileError([Problem(f"byte {exc.start}", "the file is not UTF-8")]) from None
    text = text.removeprefix("\ufeff")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise KbFileError([Problem(where, f"not JSON: {exc.msg}")]) from None
    if not isinstance(doc, dict):
        raise KbFileError([Problem("top level", "expected an object with `entries`")])
    problems: list[Problem] = []
    if doc.get("format") != FORMAT:
        problems.append(Problem("format", f"expected {FORMAT!r}"))
    if doc.get("version") != FORMAT_VERSION:
        problems.append(Problem("version", f"expected {FORMAT_VERSION}"))
    unknown = set(doc) - {"format", "version", "links", "entries"}
    if unknown:
        problems.append(Problem("top level", f"unknown fields: {', '.join(sorted(unknown))}"))
    table = doc.get("links", {})
    if not isinstance(table, dict):
        problems.append(Problem("links", "expected an object of named links"))
        table = {}
    entries = doc.get("entries")
    if not isinstance(entries, list):
        problems.append(Problem("entries", "expected a list"))
        raise KbFileError(problems)
    drafts: list[EntryDraft] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(entries):
        key = raw.get("key") if isinstance(raw, dict) else None
        line = _line_of_key(text, key) if isinstance(key, str) else None
        where = f"entries[{index}]" + (
            f" (key {key!r}" + (f", line {line})" if line else ")") if isinstance(key, str) else ""
        )
        if not isinstance(raw, dict):
            problems.append(Problem(where, "expected an object"))
            continue
        if isinstance(key, str) and key in seen:
            problems.append(Problem(where, f"key repeats entries[{seen[key]}]"))
            continue
        if isinstance(key, str):
            seen[key] = index
        raw = dict(raw)
        texts = raw.get("texts")
        if isinstance(texts, dict):
            resolved: dict[str, Any] = {}
            for lang, t in texts.items():
                link_problems: list[str] = []
                if isinstance(t, dict) and "links" in t:
                    t = {**t, "links": _resolve_links(t["links"], lang, table, link_problems)}
                problems.extend(Problem(f"{where}: texts.{lang}", p) for p in link_problems)
                resolved[lang] = t
            raw["texts"] = resolved
        try:
            drafts.append(EntryDraft.model_validate(raw))
        except ValidationError as exc:
            for err in exc.errors():
                path = ".".join(str(p) for p in err["loc"])
                message = err["msg"].removeprefix("Value error, ")
                problems.append(Problem(f"{where}: {path}" if path else where, message))
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise KbFileError(problems)
    return drafts


def dump(entries: Iterable[Entry | EntryDraft]) -> str:
    """A file of these entries (links inline, languages in the catalog's order)."""
    out: list[dict[str, Any]] = []
    for entry in entries:
        item = entry.model_dump(mode="json", include=set(EntryDraft.model_fields))
        item["texts"] = {
            lang: item["texts"][lang] for lang in KB_LANGUAGES if lang in item["texts"]
        }
        out.append(item)
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "entries": out}
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
