"""Offline retrieval over the knowledge base: one BM25 index per page language, in the
process (so SQLite and PostgreSQL deployments rank identically), and a confidence below
which the assistant does not answer but offers a person.

BM25 (Okapi, k1 = 1.2, b = 0.75) is written out here rather than taken from a library: the
corpus is a few hundred entries per language, scoring is a dictionary walk well under a
millisecond, and the confidence needs each query term's weight, which a library's score
arrays do not give.

Each entry is one document per language: its question twice, its other phrasings, its
catalog items' names and its answer. The confidence of a hit is the share of the query's
term weight (IDF; a term no entry has weighs as much as the rarest) that the hit's question
and phrasings contain: a question with words no entry uses gets a low confidence whatever
its BM25 score."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from vtax.assistant.kb import KB_LANGUAGES, EntryDraft, KbLanguage
from vtax.assistant.text import Script, Segmenter, Synonyms, detect_script
from vtax.contract.base import catalog

if TYPE_CHECKING:
    from vtax.assistant.embedding import Embedder

Mode = Literal["bm25", "hybrid", "embedding"]

K1 = 1.2
B = 0.75
QUESTION_WEIGHT = 2  # the question counts twice in its document
DEFAULT_THRESHOLD = 0.35  # chosen on benchmarks/assistant_eval.py (docs/assistant.md)
# Ranking: BM25 times (RERANK_FLOOR + confidence) over the BM25 top RERANK_DEPTH, so an
# entry whose own question covers the words asked wins over one that only mentions them.
RERANK_FLOOR = 1.0
RERANK_DEPTH = 20
# Hybrid: reciprocal rank fusion of the BM25 and the embedding rankings (k = 60, BM25
# weighted 0.5); a hit's confidence is then its cosine similarity, against its own threshold.
RRF_K = 60
DEFAULT_EMBEDDING_THRESHOLD = 0.88
BM25_FUSION_WEIGHT = 0.5  # chosen on benchmarks/assistant_eval.py (embeddings rank better alone)

SCRIPT_OF: dict[KbLanguage, Script] = {"zh-CN": "zh", "zh-HK": "zh", "en": "en", "pt": "pt"}


@dataclass(frozen=True, slots=True)
class Hit:
    key: str
    score: float  # BM25
    confidence: float  # 0..1


@dataclass(frozen=True, slots=True)
class SearchResult:
    language: KbLanguage  # the index searched
    hits: list[Hit]
    threshold: float

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    @property
    def confident(self) -> bool:
        """The best hit clears the threshold: the assistant answers with it."""
        return self.best is not None and self.best.confidence >= self.threshold


@dataclass
class _Index:
    keys: list[str]
    docs: list[Counter[str]]
    lengths: list[int]
    phrases: list[frozenset[str]]  # the terms of each entry's question and phrasings
    postings: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    avg_length: float = 1.0

    def __post_init__(self) -> None:
        for doc_id, doc in enumerate(self.docs):
            for term, tf in doc.items():
                self.postings.setdefault(term, []).append((doc_id, tf))
        self.avg_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        n = len(self.docs)
        self.idf = {
            term: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))
            for term, p in self.postings.items()
        }
        self.unknown_idf = math.log(1 + (n + 0.5) / 0.5)

    def scores(self, terms: Sequence[str]) -> dict[int, float]:
        out: dict[int, float] = {}
        for term, qtf in Counter(terms).items():
            posting = self.postings.get(term)
            if not posting:
                continue
            idf = self.idf[term]
            for doc_id, tf in posting:
                norm = K1 * (1 - B + B * self.lengths[doc_id] / self.avg_length)
                out[doc_id] = out.get(doc_id, 0.0) + qtf * idf * tf * (K1 + 1) / (tf + norm)
        return out

    def confidence(self, terms: Sequence[str], doc_id: int) -> float:
        unique = set(terms)
        if not unique:
            return 0.0
        weights = {t: self.idf.get(t, self.unknown_idf) for t in unique}
        total = sum(weights.values())
        matched = sum(w for t, w in weights.items() if t in self.phrases[doc_id])
        return matched / total if total else 0.0


class KbIndex:
    """The searchable knowledge base of one revision: immutable once built."""

    def __init__(
        self,
        entries: Iterable[EntryDraft],
        segmenter: Segmenter,
        *,
        revision: int = 0,
        threshold: float = DEFAULT_THRESHOLD,
        mode: Mode = "bm25",
        embedder: Embedder | None = None,
        embedding_threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
    ) -> None:
        if mode != "bm25" and embedder is None:
            raise ValueError(f"retrieval mode {mode} needs an embedder")
        self.segmenter = segmenter
        self.revision = revision
        self.threshold = threshold
        self.mode: Mode = mode
        self.embedder = embedder
        self.embedding_threshold = embedding_threshold
        self.entries: dict[str, EntryDraft] = {e.key: e for e in entries}
        item_names = {
            item["code"]: item["name"] for c in catalog().data["categories"] for item in c["items"]
        }
        self._indexes: dict[KbLanguage, _Index] = {}
        for lang in KB_LANGUAGES:
            script = SCRIPT_OF[lang]
            keys, docs, lengths, phrases = [], [], [], []
            for entry in self.entries.values():
                text = entry.texts.get(lang)
                if text is None:
                    continue
                asked = segmenter.terms(" ".join([text.question, *text.alternatives]), script)
                terms = segmenter.terms(text.question, script) * (QUESTION_WEIGHT - 1) + asked
                for item in entry.items:
                    name = item_names.get(item, {})
                    label = name.get("zh-CN") if script == "zh" else name.get("en")
                    if label and script != "pt":
                        terms += segmenter.terms(label, script)
                terms += segmenter.terms(text.answer, script)
                keys.append(entry.key)
                docs.append(Counter(terms))
                lengths.append(len(terms))
                phrases.append(frozenset(asked))
            self._indexes[lang] = _Index(keys, docs, lengths, phrases)
        self._vectors: dict[KbLanguage, tuple[list[str], Any]] = {}
        if embedder is not None and mode != "bm25":
            for lang in KB_LANGUAGES:
                keys = [e.key for e in self.entries.values() if lang in e.texts]
                texts = [
                    " ".join(
                        [
                            self.entries[k].texts[lang].question,
                            *self.entries[k].texts[lang].alternatives,
                        ]
                    )
                    for k in keys
                ]
                self._vectors[lang] = (keys, embedder.passages(texts))

    @property
    def uses_embeddings(self) -> bool:
        """A search embeds the question (tens of milliseconds: run it off the event loop)."""
        return bool(self._vectors)

    @classmethod
    def build(
        cls,
        entries: Iterable[EntryDraft],
        *,
        synonyms: Synonyms | None = None,
        revision: int = 0,
        threshold: float = DEFAULT_THRESHOLD,
        mode: Mode = "bm25",
        embedder: Embedder | None = None,
    ) -> KbIndex:
        return cls(
            entries,
            Segmenter(synonyms or Synonyms.shipped()),
            revision=revision,
            threshold=threshold,
            mode=mode,
            embedder=embedder,
        )

    def index_language(self, query: str, language: KbLanguage) -> KbLanguage:
        """The index a question goes to: the page's language, unless the question is
        written in another script (an English question on a Chinese page ...)."""
        script = detect_script(query, [SCRIPT_OF[language]])
        if script == SCRIPT_OF[language]:
            return language
        return {"zh": "zh-CN", "en": "en", "pt": "pt"}[script]  # type: ignore[return-value]

    def search(
        self, query: str, language: KbLanguage, *, k: int = 3, day: date | None = None
    ) -> SearchResult:
        """The k best entries valid on `day` (None: any day), best first."""
        lang = self.index_language(query, language)
        index = self._indexes[lang]
        terms = self.segmenter.terms(query, SCRIPT_OF[lang])
        scores = index.scores(terms)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], index.keys[kv[0]]))
        candidates: list[tuple[float, Hit]] = []
        for doc_id, score in ranked:
            key = index.keys[doc_id]
            if day is not None and not self.entries[key].valid_on(day):
                continue
            confidence = index.confidence(terms, doc_id)
            hit = Hit(key, round(score, 4), round(confidence, 4))
            candidates.append((score * (RERANK_FLOOR + confidence), hit))
            if len(candidates) >= max(k, RERANK_DEPTH):
                break
        candidates.sort(key=lambda c: (-c[0], c[1].key))
        bm25 = [hit for _, hit in candidates]
        if not self._vectors:
            return SearchResult(lang, bm25[:k], self.threshold)
        return self._with_embeddings(query, lang, bm25, k, day)

    def _with_embeddings(
        self, query: str, lang: KbLanguage, bm25: list[Hit], k: int, day: date | None
    ) -> SearchResult:
        keys, matrix = self._vectors[lang]
        assert self.embedder is not None
        sims = matrix @ self.embedder.query(query) if keys else []
        order = sorted(range(len(keys)), key=lambda i: (-float(sims[i]), keys[i]))
        cosine = {keys[i]: float(sims[i]) for i in order}
        dense = [keys[i] for i in order if day is None or self.entries[keys[i]].valid_on(day)][
            : max(k, RERANK_DEPTH)
        ]
        if self.mode == "embedding":
            ranked = dense
        else:
            # Weighted reciprocal rank fusion: BM25 counts half (chosen on the evaluation).
            fused: dict[str, float] = {}
            for rank, hit in enumerate(bm25):
                fused[hit.key] = fused.get(hit.key, 0.0) + BM25_FUSION_WEIGHT / (RRF_K + rank)
            for rank, key in enumerate(dense):
                fused[key] = fused.get(key, 0.0) + 1 / (RRF_K + rank)
            ranked = sorted(fused, key=lambda key: (-fused[key], key))
        scores = {h.key: h.score for h in bm25}
        hits = [
            Hit(key, scores.get(key, 0.0), round(max(0.0, cosine.get(key, 0.0)), 4))
            for key in ranked[:k]
        ]
        return SearchResult(lang, hits, self.embedding_threshold)

    def size(self) -> dict[str, int]:
        """Documents and distinct terms per language (for the memory figures)."""
        out: dict[str, int] = {}
        for lang, index in self._indexes.items():
            out[f"{lang}.docs"] = len(index.docs)
            out[f"{lang}.terms"] = len(index.postings)
        return out
