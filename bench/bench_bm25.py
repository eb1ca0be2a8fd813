"""Where a local-backend question's time goes, and BM25's top k with and without MaxScore, on
bench_scale.py's synthetic index (built once into the scratch folder, reused after):

    nice -n 10 .venv/bin/python bench/bench_bm25.py --chunks 1e5      # ~2 min to build

Prints medians over the questions (bench_scale's: nine words of a stored passage): the whole
``Retriever.search``, the dense search, ``bm25_search``, the term weights, and the document
frequencies counted the old way (a walk of each term's postings); then ``BM25Scores.top_k``
(k = 50) as the full pass and with MaxScore, unfiltered and with a mask letting a quarter of
the chunks through, p50/p95, and how many questions get the same scores at every rank and the
same chunks in the same order.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_scale

from qa.index.bm25 import bm25_tokens
from qa.retrieval.retriever import Retriever
from qa.text.words import content_terms


def _index(chunks: int, scratch: Path) -> Any:
    import qa.index

    root = scratch / f"bm25-{chunks}"
    settings = bench_scale.settings_for("local", root)
    if not (root / "CURRENT").exists():
        root.mkdir(parents=True, exist_ok=True)
        docs = bench_scale.make_documents(max(1, chunks // bench_scale.CHUNKS_PER_DOC), chunks, "a")
        qa.index.sync(root, docs, bench_scale.SyntheticEmbedder(), settings)
    return bench_scale._open(settings, root), settings


def _ms(times: list[float]) -> str:
    return f"{1000 * np.median(times):.1f} / {1000 * np.percentile(times, 95):.1f} ms"


def _timed(calls: list[Callable[[], Any]]) -> tuple[list[float], list[Any]]:
    times, out = [], []
    for call in calls:
        t0 = time.perf_counter()
        out.append(call())
        times.append(time.perf_counter() - t0)
    return times, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", default="1e5")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--scratch", default="/tmp/qa-bench-bm25")
    args = parser.parse_args()
    index, settings = _index(int(float(args.chunks)), Path(args.scratch))
    bm = index.bm25
    rng = np.random.default_rng(3)
    rows = rng.choice(np.asarray(index.ids), args.questions, replace=False)
    texts = [c.text for c, _ in index.chunks([int(r) for r in rows]).values()]
    questions = [" ".join(t.split()[5:14]) + "?" for t in texts]
    embedder = bench_scale.SyntheticEmbedder()
    retriever = Retriever(index, embedder, settings.retrieval)
    retriever.search(questions[0])  # warm
    print(f"{len(index):,} chunks, {len(questions)} questions; p50 / p95")
    vectors = [embedder.embed([q])[0] for q in questions]
    parts: dict[str, list[Callable[[], Any]]] = {
        "Retriever.search": [lambda q=q: retriever.search(q) for q in questions],
        "dense_search": [lambda v=v: index.dense_search(v, 50) for v in vectors],
        "bm25_search": [lambda q=q: index.bm25_search(q, 50) for q in questions],
        "term_weights": [lambda q=q: index.term_weights(content_terms(q)) for q in questions],
        "df by postings walk (before)": [
            lambda q=q: {t: len(bm._postings(t)[0]) for t in content_terms(q)} for q in questions
        ],
    }
    for name, calls in parts.items():
        print(f"  {name:30s} {_ms(_timed(calls)[0])}")
    tokens = [bm25_tokens(q) for q in questions]
    allowed = np.random.default_rng(4).random(bm.num_docs) < 0.25
    for label, mask in (("unfiltered", None), ("a quarter allowed", allowed)):
        results = {}
        for mode, floor in (("full pass", 10**12), ("MaxScore", 0)):
            bm.prune_min_docs = floor
            times, results[mode] = _timed([lambda t=t, m=mask: bm.top_k(t, 50, m) for t in tokens])
            print(f"  top_k {label:18s} {mode:10s} {_ms(times)}")
        pairs = list(zip(results["full pass"], results["MaxScore"], strict=True))
        scores = sum(np.array_equal(a[1], b[1]) for a, b in pairs)
        chunks = sum(np.array_equal(a[0], b[0]) for a, b in pairs)
        n = len(pairs)
        print(f"    same scores at every rank {scores}/{n}, same chunks in order {chunks}/{n}")
    bm.prune_min_docs = 50_000


if __name__ == "__main__":
    main()
