"""Fill the zh-HK texts a knowledge-base file lacks from its zh-CN texts: OpenCC's s2hk
(Simplified to Traditional, Hong Kong variants) and a short table of words Hong Kong says
differently. A starting point a Hong Kong reviewer corrects, never a replacement for one:
entries that already have zh-HK are left alone.

    python -m vtax.assistant.hkfill vtax/data/kb_*.json
"""

from __future__ import annotations

import json
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
}


@cache
def _converter() -> Any:
    import opencc

    return opencc.OpenCC("s2hk")


def to_hk(text: str) -> str:
    out: str = _converter().convert(text)
    for mainland, hk in HK_WORDS.items():
        out = out.replace(mainland, hk)
    return out


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
    for name in argv:
        path = Path(name)
        doc = json.loads(path.read_text(encoding="utf-8"))
        added = fill(doc)
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"{path}: {added} zh-HK texts added")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
