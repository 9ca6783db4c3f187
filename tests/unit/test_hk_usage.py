"""The pages' zh-HK strings follow Hong Kong's written usage: the knowledge base's review rules
(vtax/assistant/hkfill.py `review`) change none of them. The strings are read from the
catalogs' source (web/src/i18n): the zh-HK locale file whole, and each area file's `'zh-HK'`
block (up to its matching brace, braces inside strings not counted)."""

from __future__ import annotations

import re
from pathlib import Path

from vtax.assistant.hkfill import review

I18N = Path(__file__).resolve().parents[2] / "web" / "src" / "i18n"
STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _block(source: str, start: int) -> str:
    """From the `{` at or after `start` to its matching `}`, outside string literals."""
    i = source.index("{", start)
    depth, quoted = 0, False
    for j in range(i, len(source)):
        ch = source[j]
        if quoted:
            if ch == "\\":
                continue
            if ch == "'" and source[j - 1] != "\\":
                quoted = False
        elif ch == "'":
            quoted = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return source[i : j + 1]
    raise AssertionError("unbalanced braces")


def hk_strings() -> list[tuple[str, str]]:
    found = []
    whole = (I18N / "locales" / "zh-HK.ts").read_text("utf-8")
    found += [("locales/zh-HK.ts", m.group(1)) for m in STRING.finditer(whole)]
    for path in sorted((I18N / "areas").glob("*.ts")):
        source = path.read_text("utf-8")
        at = source.find("'zh-HK':")
        if at < 0:
            continue
        found += [(path.name, m.group(1)) for m in STRING.finditer(_block(source, at))]
    return [(name, text) for name, text in found if CJK.search(text)]


def test_the_pages_zh_hk_strings_follow_hong_kong_usage() -> None:
    strings = hk_strings()
    assert len(strings) > 500  # the locale and every area were read
    wrong = [(name, text, review(text)) for name, text in strings if review(text) != text]
    assert wrong == []


def test_the_reader_finds_a_mainland_form() -> None:
    # the check can fail: a mainland form in a block of the same shape is found
    source = (
        "export default {\n  'zh-HK': {\n    a: { b: '共享{name}的屏幕' },\n  },\n  en: {},\n};"
    )
    block = _block(source, source.index("'zh-HK':"))
    texts = [m.group(1) for m in STRING.finditer(block)]
    assert texts == ["共享{name}的屏幕"] and review(texts[0]) == "共享{name}的螢幕"
