"""Retrieval quality on a held-out question set: recall@1, recall@3 and MRR@10 per language,
and what a confidence threshold does (answers given and right, out-of-scope questions handed
to a person). Shared by benchmarks/assistant_eval.py and the quality floor in the tests."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vtax.assistant.kb import KB_LANGUAGES, KbLanguage
from vtax.assistant.retrieval import KbIndex

EVAL_SET = Path(__file__).resolve().parents[2] / "benchmarks" / "assistant_eval_set.tsv"


@dataclass(frozen=True, slots=True)
class Case:
    expected: str | None  # None: out of scope, must go to a person
    language: KbLanguage
    question: str


def load_cases(path: Path = EVAL_SET) -> list[Case]:
    cases: list[Case] = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[1] not in KB_LANGUAGES:
            raise ValueError(f"{path.name} line {number}: expected key<TAB>language<TAB>question")
        key, lang, question = parts
        cases.append(Case(None if key == "-" else key, lang, question))  # type: ignore[arg-type]
    return cases


@dataclass(frozen=True, slots=True)
class LanguageScores:
    questions: int
    recall_1: float
    recall_3: float
    mrr_10: float


@dataclass(frozen=True, slots=True)
class ThresholdScores:
    threshold: float
    answer_precision: float  # answers given whose entry is the expected one
    handoff_rate: float  # share of all questions handed to a person
    oos_handed_off: float  # share of out-of-scope questions handed to a person
    in_scope_answered: float  # share of in-scope questions answered
    abstention_precision: float  # hand-offs that were right (out of scope, or top-1 wrong)


@dataclass(frozen=True, slots=True)
class Report:
    languages: dict[str, LanguageScores]
    thresholds: list[ThresholdScores]
    latency_ms_p50: float
    latency_ms_p99: float


def evaluate(index: KbIndex, cases: Sequence[Case], thresholds: Sequence[float] = (0.5,)) -> Report:
    ranks: dict[str, list[int | None]] = defaultdict(list)
    outcomes: list[tuple[Case, str | None, float]] = []  # case, top-1 key, confidence
    latencies: list[float] = []
    for case in cases:
        start = time.perf_counter()
        result = index.search(case.question, case.language, k=10)
        latencies.append((time.perf_counter() - start) * 1000)
        best = result.best
        outcomes.append((case, best.key if best else None, best.confidence if best else 0.0))
        if case.expected is not None:
            keys = [h.key for h in result.hits]
            ranks[case.language].append(
                keys.index(case.expected) + 1 if case.expected in keys else None
            )
    languages: dict[str, LanguageScores] = {}
    for lang in KB_LANGUAGES:
        got = ranks.get(lang, [])
        if not got:
            continue
        n = len(got)
        languages[lang] = LanguageScores(
            n,
            sum(r == 1 for r in got) / n,
            sum(r is not None and r <= 3 for r in got) / n,
            sum(1 / r for r in got if r is not None) / n,
        )
    return Report(
        languages,
        [_at_threshold(outcomes, t) for t in thresholds],
        statistics.median(latencies),
        _percentile(latencies, 0.99),
    )


def _at_threshold(outcomes: list[tuple[Case, str | None, float]], t: float) -> ThresholdScores:
    answered = [(c, k) for c, k, conf in outcomes if k is not None and conf >= t]
    handed = [(c, k) for c, k, conf in outcomes if k is None or conf < t]
    oos = [c for c, _, _ in outcomes if c.expected is None]
    in_scope = [c for c, _, _ in outcomes if c.expected is not None]
    right = sum(c.expected == k for c, k in answered)
    right_handoffs = sum(c.expected is None or c.expected != k for c, k in handed)
    return ThresholdScores(
        t,
        right / len(answered) if answered else 1.0,
        len(handed) / len(outcomes) if outcomes else 0.0,
        sum(c.expected is None for c, _ in handed) / len(oos) if oos else 1.0,
        sum(c.expected is not None for c, _ in answered) / len(in_scope) if in_scope else 0.0,
        right_handoffs / len(handed) if handed else 1.0,
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
