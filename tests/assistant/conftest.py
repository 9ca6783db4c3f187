"""One seed index per test session: building it segments every entry (a few seconds)."""

from __future__ import annotations

import pytest

from vtax.assistant.retrieval import KbIndex
from vtax.assistant.seed import load_seed
from vtax.assistant.text import Segmenter, Synonyms


@pytest.fixture(scope="session")
def segmenter() -> Segmenter:
    return Segmenter(Synonyms.shipped())


@pytest.fixture(scope="session")
def seed_index(segmenter: Segmenter) -> KbIndex:
    return KbIndex(load_seed(), segmenter)
