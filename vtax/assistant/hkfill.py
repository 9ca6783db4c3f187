"""zh-HK texts of the knowledge base: fill the ones a file lacks from its zh-CN texts
(OpenCC's s2hk, Simplified to Traditional with Hong Kong glyphs), and hold every zh-HK text,
filled or written, to Hong Kong's written usage (HK_WORDS, HK_RULES: the words and forms Hong
Kong writes differently from the mainland). The rules are a reviewer's checklist made code,
not a replacement for a Hong Kong reader: entries that already have zh-HK are only put
through the rules (`review`), never rewritten from zh-CN.

    python -m vtax.assistant.hkfill vtax/data/kb_*.json            # fill the missing ones
    python -m vtax.assistant.hkfill --review vtax/data/kb_*.json   # and apply the rules to all
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

# Mainland word -> Hong Kong word (applied after the script conversion).
HK_WORDS: dict[str, str] = {
    "信息": "資訊",
    "視頻": "視像",
    "打印": "列印",
    "登錄": "登入",
    "上傳": "上載",
    "默認": "預設",
    "短信": "短訊",
    "税": "稅",  # OpenCC's HK glyph; the Inland Revenue Department and most users write 稅
    "户": "戶",  # Hong Kong's standard glyph (開戶, 帳戶, 個體工商戶)
    "賬戶": "帳戶",
    "賬號": "帳號",
    "什麼": "甚麼",  # Hong Kong's written form (為甚麼, 甚麼時候)
    "郵箱": "電郵",
    "在線": "網上",
    "線上": "網上",
    "搜索": "搜尋",
    "屏幕": "螢幕",
    "小程序": "小程式",
    "掃碼": "掃描二維碼",
    # Hong Kong quotes with corner brackets: 「電子稅務局」, 『…』 inside
    "\u201c": "「",  # the quotation marks written as escapes: they look like ASCII ones
    "\u201d": "」",
    "\u2018": "『",
    "\u2019": "』",
}

# Forms that depend on what follows or precedes (regular expression -> replacement).
HK_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # "how to": 如何 in writing; 怎麼辦 (what to do) is written in Hong Kong too
    (re.compile(r"怎麼(?!辦)"), "如何"),
    # "by way of": 透過; "passed" (審核通過, 驗證不通過, 已通過。, a lone 通過) stays 通過
    (
        re.compile("(?<![核證對批不已未])通過(?![\u3002\uff0c\u3001\uff1b\uff09」後了即的]|$)"),
        "透過",
    ),
    # a phone number is a 手機號碼
    (re.compile(r"手機號(?!碼)"), "手機號碼"),
)


def review(text: str) -> str:
    """A zh-HK text held to Hong Kong's written usage (idempotent: review(review(t)) is
    review(t))."""
    for mainland, hk in HK_WORDS.items():
        text = text.replace(mainland, hk)
    for pattern, hk in HK_RULES:
        text = pattern.sub(hk, text)
    return text


@cache
def _converter() -> Any:
    import opencc

    return opencc.OpenCC("s2hk")


def to_hk(text: str) -> str:
    out: str = _converter().convert(text)
    return review(out)


def review_all(doc: dict[str, Any]) -> int:
    """Put every zh-HK text through `review`; the number of entries it changed."""
    changed = 0
    for entry in doc.get("entries", []):
        hk = entry.get("texts", {}).get("zh-HK")
        if not hk:
            continue
        before = json.dumps(hk, ensure_ascii=False)
        hk["question"] = review(hk["question"])
        hk["alternatives"] = [review(a) for a in hk.get("alternatives", [])]
        hk["answer"] = review(hk["answer"])
        changed += json.dumps(hk, ensure_ascii=False) != before
    return changed


def fill(doc: dict[str, Any]) -> int:
    """Add zh-HK to every entry without one; the number added."""
    added = 0
    for entry in doc.get("entries", []):
        texts = entry.get("texts", {})
        if "zh-HK" in texts or "zh-CN" not in texts:
            continue
        cn = texts["zh-CN"]
        hk: dict[str, Any] = {
            "question": to_hk(cn["question"]),
            "alternatives": [to_hk(a) for a in cn.get("alternatives", [])],
            "answer": to_hk(cn["answer"]),
        }
        if "links" in cn:
            hk["links"] = cn["links"]
        order = ["zh-CN", "zh-HK", *[k for k in texts if k != "zh-CN"]]
        texts["zh-HK"] = hk
        entry["texts"] = {k: texts[k] for k in order}
        added += 1
    return added


def main(argv: list[str]) -> int:
    reviewing = "--review" in argv
    for name in [a for a in argv if a != "--review"]:
        path = Path(name)
        doc = json.loads(path.read_text(encoding="utf-8"))
        added = fill(doc)
        changed = review_all(doc) if reviewing else 0
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"{path}: {added} zh-HK texts added, {changed} reviewed entries changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
