"""Text as the retriever sees it: normalized, synonyms made canonical, cut into terms.

Normalization: Unicode NFKC (full-width letters, digits and punctuation become half-width),
Traditional (and Hong Kong variant) characters to Simplified with OpenCC's `hk2s`, lower
case, accents dropped (Portuguese `ç`, `ã` ...). Synonyms (vtax/data/kb_synonyms.json) are
rewritten to their group's first phrase by a greedy longest match, on characters for Chinese
and on words for English and Portuguese, identically for entries and for questions.
Chinese is cut by jieba (search mode: the long words and their parts) with every character
bigram added as a recall net for words jieba cuts differently or for typos; English and
Portuguese by words with a light suffix stripping, stop words dropped.

Everything here runs in the process from files shipped in packages: nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

Script = Literal["zh", "en", "pt"]
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:-[a-z0-9]+)*")

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a an the and or of to in on at for by with from is are was were be been do does did "
        "i we you he she it they my our your me us my can could should would will how what "
        "which who whom when where why there this that these those have has had not no if "
        "so as any some about into out up than then get got need must may".split()
    ),
    "pt": frozenset(
        "a o as os um uma uns umas e ou de do da dos das em no na nos nas por para com sem "
        "que se eu nos vos ele ela eles elas meu minha meus minhas o seu sua ao aos à às é "
        "ser sao foi era tem ter tenho posso pode como qual quais quando onde porque mais "
        "muito ja nao sim me te lhe isso isto esse essa este esta ha preciso".split()
    ),
    "zh": frozenset(
        "的 了 吗 呢 吧 啊 呀 么 嘛 要 是 我 你 他 她 它 们 我们 你们 在 有 和 与 及 或 "
        "就 都 也 还 请问 请 一下 下 个 这 那 这个 那个 可以 能 能不能 需要 怎么办 办 啦 喔 "
        "嘅 咗 㗎 啲 喺 係 唔该 你好 您好 想 问 些 给 他 他们 来 看 还 刚 方面".split()
    ),
}


def script_of(text: str) -> Literal["zh", "latin"]:
    """Chinese when the text has any Chinese character."""
    return "zh" if _CJK.search(text) else "latin"


@cache
def _opencc() -> Any:
    import opencc

    return opencc.OpenCC("hk2s")


def normalize(text: str) -> str:
    """NFKC, Simplified script, lower case, no accents, one space between words."""
    text = unicodedata.normalize("NFKC", text)
    if _CJK.search(text):
        text = _opencc().convert(text)
    text = text.lower()
    decomposed = unicodedata.normalize("NFD", text)
    text = "".join(c for c in decomposed if not unicodedata.combining(c))
    text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def _stem(word: str, script: Script) -> str:
    """A light suffix stripping: plurals and the commonest endings, never below 3 letters."""
    if script == "en":
        for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
                return word[: -len(suffix)] + keep
        return word
    if script == "pt":
        for suffix, keep in (
            ("coes", "cao"),
            ("oes", "ao"),
            ("aes", "ao"),
            ("is", "l"),
            ("es", ""),
            ("s", ""),
        ):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                return word[: -len(suffix)] + keep
        return word
    return word


@dataclass(frozen=True)
class Synonyms:
    """Phrase -> canonical phrase, per script, and extra words for the Chinese segmenter."""

    zh: dict[str, str]
    latin: dict[Script, dict[tuple[str, ...], tuple[str, ...]]]
    words: tuple[str, ...]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Synonyms:
        if data.get("format") != "vtax-kb-synonyms":
            raise ValueError("not a synonyms file (format vtax-kb-synonyms)")
        groups = data.get("groups", {})
        zh: dict[str, str] = {}
        for group in groups.get("zh", []):
            canonical = normalize(group[0])
            for phrase in group:
                zh[normalize(phrase)] = canonical
        latin: dict[Script, dict[tuple[str, ...], tuple[str, ...]]] = {}
        for script in ("en", "pt"):
            table: dict[tuple[str, ...], tuple[str, ...]] = {}
            for group in groups.get(script, []):
                head = tuple(_LATIN_WORD.findall(normalize(group[0])))
                for phrase in group:
                    table[tuple(_LATIN_WORD.findall(normalize(phrase)))] = head
            latin[script] = table  # type: ignore[index]
        return cls(zh, latin, tuple(data.get("words", [])))

    @classmethod
    def shipped(cls) -> Synonyms:
        text = resources.files("vtax").joinpath("data/kb_synonyms.json").read_text("utf-8")
        return cls.from_data(json.loads(text))

    @property
    def zh_longest(self) -> int:
        return max((len(p) for p in self.zh), default=0)

    def rewrite_zh(self, text: str) -> str:
        """Greedy longest match over characters: each phrase of a group becomes its first."""
        if not self.zh:
            return text
        longest = self.zh_longest
        out: list[str] = []
        i = 0
        while i < len(text):
            for size in range(min(longest, len(text) - i), 0, -1):
                canonical = self.zh.get(text[i : i + size])
                if canonical is not None:
                    out.append(canonical)
                    i += size
                    break
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def rewrite_words(self, words: Sequence[str], script: Script) -> list[str]:
        table = self.latin.get(script, {})
        if not table:
            return list(words)
        longest = max(len(k) for k in table)
        out: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(longest, len(words) - i), 0, -1):
                canonical = table.get(tuple(words[i : i + size]))
                if canonical is not None:
                    out.extend(canonical)
                    i += size
                    break
            else:
                out.append(words[i])
                i += 1
        return out


class Segmenter:
    """Turns text into terms for one script. jieba's tokenizer is loaded once per instance
    (about half a second) and guarded by a lock: it is not documented as thread-safe."""

    def __init__(self, synonyms: Synonyms) -> None:
        self.synonyms = synonyms
        self._jieba: Any = None
        self._lock = threading.Lock()

    def _tokenizer(self) -> Any:
        if self._jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word in {*self.synonyms.words, *self.synonyms.zh.values(), *self.synonyms.zh}:
                if _CJK.search(word):
                    tokenizer.add_word(word, freq=20000)
            self._jieba = tokenizer
        return self._jieba

    def terms(self, text: str, script: Script) -> list[str]:
        """The terms of a text (normalized here) for the index of a script."""
        text = normalize(text)
        if script == "zh":
            return self._zh_terms(self.synonyms.rewrite_zh(text))
        words = _LATIN_WORD.findall(text)
        words = self.synonyms.rewrite_words(words, script)
        stop = STOP_WORDS[script]
        return [_stem(w, script) for w in words if w not in stop]

    def _zh_terms(self, text: str) -> list[str]:
        stop = STOP_WORDS["zh"]
        out: list[str] = []
        with self._lock:
            tokenizer = self._tokenizer()
            for chunk in _TOKEN.findall(text):
                if not _CJK.match(chunk):
                    out.append(chunk)
                    continue
                out.extend(w for w in tokenizer.cut_for_search(chunk, HMM=True) if w not in stop)
                out.extend(chunk[i : i + 2] for i in range(len(chunk) - 1))
                if len(chunk) == 1 and chunk not in stop:
                    out.append(chunk)
        return out


def detect_script(text: str, preferred: Iterable[Script]) -> Script:
    """The index to search: Chinese for Chinese characters, else the page's language when
    it is English or Portuguese, else whichever of the two has more stop words in the text."""
    if script_of(text) == "zh":
        return "zh"
    preferred = list(preferred)
    for script in preferred:
        if script in ("en", "pt"):
            return script
    words = _LATIN_WORD.findall(normalize(text))
    en = sum(w in STOP_WORDS["en"] for w in words)
    pt = sum(w in STOP_WORDS["pt"] for w in words)
    return "pt" if pt > en else "en"
