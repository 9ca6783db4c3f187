"""Keeps a node's in-process index current: every node checks the knowledge base's revision
counter (one primary-key read) at most every `refresh_s` seconds before a search, and
rebuilds the index in a worker thread when the counter moved, so an edit on one node reaches
the answers of every node within that interval. Searches go on against the previous index
while the new one is built."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from vtax.assistant.retrieval import DEFAULT_EMBEDDING_THRESHOLD, KbIndex, Mode
from vtax.assistant.store import KbStore
from vtax.assistant.text import Segmenter, Synonyms

if TYPE_CHECKING:
    from vtax.assistant.embedding import Embedder


class IndexKeeper:
    def __init__(
        self,
        store: KbStore,
        *,
        threshold: float,
        refresh_s: float = 5.0,
        segmenter: Segmenter | None = None,
        clock: Callable[[], float] = time.monotonic,
        mode: Mode = "bm25",
        embedder: Embedder | None = None,
        embedding_threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
    ) -> None:
        self._mode: Mode = mode
        self._embedder = embedder
        self._embedding_threshold = embedding_threshold
        self._store = store
        self._threshold = threshold
        self._refresh_s = refresh_s
        self._segmenter = segmenter or Segmenter(Synonyms.shipped())
        self._clock = clock
        self._index: KbIndex | None = None
        self._checked_at = -float("inf")
        self._lock = asyncio.Lock()

    @property
    def revision(self) -> int | None:
        return None if self._index is None else self._index.revision

    async def index(self) -> KbIndex:
        """The current index, rebuilt first if the knowledge base changed (or none exists)."""
        if self._index is not None and self._clock() - self._checked_at < self._refresh_s:
            return self._index
        async with self._lock:
            if self._index is None or self._clock() - self._checked_at >= self._refresh_s:
                await self.refresh()
        assert self._index is not None
        return self._index

    async def refresh(self, *, force: bool = False) -> bool:
        """Rebuild if the revision moved (or `force`); True when rebuilt."""
        self._checked_at = self._clock()
        revision = await self._store.revision()
        if not force and self._index is not None and self._index.revision == revision:
            return False
        revision, entries = await self._store.snapshot()
        self._index = await asyncio.to_thread(
            KbIndex,
            entries,
            self._segmenter,
            revision=revision,
            threshold=self._threshold,
            mode=self._mode,
            embedder=self._embedder,
            embedding_threshold=self._embedding_threshold,
        )
        return True
