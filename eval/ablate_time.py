"""Answer recall@k on RealTime QA with and without the news-aware retrieval settings.

Retrieval only (no answer writing), so a whole grid runs in minutes. Each question is asked
on its ``question_date`` except in the "no as-of" row. Weeks 1-9 of the quarter are the tuning
split, weeks 10-13 the check, printed separately with the whole quarter:

    .venv/bin/python eval/ablate_time.py --data ../shared/benchmarks/realtimeqa/2024q1

The index is the one `qa eval realtimeqa` builds for the same data and settings (built here
if missing).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answering.assistant import Assistant
from qa.core.config import load_settings
from qa.evaluation import (
    metrics,
    realtime_qa,
)
from qa.evaluation.runner import question_filters, realtimeqa_index_dir
from qa.index import live_generation, sync
from qa.retrieval.retriever import Retriever


def recall(
    assistant: Assistant, questions: list[realtime_qa.RTQuestion], as_of: str, **knobs: Any
) -> dict[str, float]:
    """Answer recall@k per split for one setting of the retrieval knobs."""
    settings = replace(assistant.settings.retrieval, **knobs)
    retriever = Retriever(assistant.index, assistant.embedder, settings)
    found: dict[str, list[float]] = {"1-9": [], "10-13": [], "all": []}
    weeks = sorted({q.week for q in questions})
    for q in questions:
        hits = retriever.search(q.question, filters=question_filters(q.date, as_of)).hits
        hit = float(any(metrics.answer_in_text(q.gold, h.chunk.text) for h in hits))
        split = "1-9" if weeks.index(q.week) < 9 else "10-13"
        found[split].append(hit)
        found["all"].append(hit)
    return {name: sum(v) / len(v) if v else float("nan") for name, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--grid", action="store_true", help="also sweep recency and time knobs")
    parser.add_argument("--shape", action="store_true", help="also vary fusion, depth, diversity")
    args = parser.parse_args()

    base = load_settings()
    rt = realtime_qa.read(args.data)
    index_dir = realtimeqa_index_dir(base.index_dir.parent, args.data, rt.weeks, base)
    settings = replace(base, paths=replace(base.paths, index=index_dir))
    assistant = Assistant(settings)
    if live_generation(index_dir) is None:
        sync(index_dir, rt.documents, assistant.embedder, settings)

    # Each row adds one step to the one above it; the filter row is the alternative to boost.
    plain = {"recency_weight": 0.0, "time_phrase": "off", "sentence_weight": 0.0}
    rows: list[tuple[str, str, dict[str, Any]]] = [
        ("no as-of (before)", "none", plain),
        ("+ as-of", "question", plain),
        ("+ time phrase boost", "question", {**plain, "time_phrase": "boost"}),
        ("  (time phrase filter instead)", "question", {**plain, "time_phrase": "filter"}),
        ("+ recency prior", "question", {"sentence_weight": 0.0}),
        ("+ sentence rerank (default settings)", "question", {}),
    ]
    if args.grid:
        for w, h, t in itertools.product((0.25, 0.5, 0.8), (7.0, 14.0, 30.0), (0.0, 0.5, 1.0)):
            rows.append(
                (
                    f"recency w={w} h={h:g} time_weight={t}",
                    "question",
                    {"recency_weight": w, "recency_half_life_days": h, "time_weight": t},
                )
            )
    if args.shape:
        for label, knobs in (
            ("dense only", {"fusion": "dense"}),
            ("one passage per article", {"max_per_doc": 1}),
            ("100 candidates per list", {"candidates": 100}),
            ("BM25 weight 0.5", {"bm25_weight": 0.5}),
            ("relevance floor 0.1", {"min_dense_score": 0.1}),
        ):
            rows.append((f"default + {label}", "question", knobs))
    k = settings.retrieval.k
    print(f"answer recall@{k}, {len(rt.questions)} questions, weeks {rt.weeks[0]}-{rt.weeks[-1]}")
    print("| setting | weeks 1-9 | weeks 10-13 | quarter |\n|---|---|---|---|")
    for label, as_of, knobs in rows:
        r = recall(assistant, rt.questions, as_of, **knobs)
        print(f"| {label} | {r['1-9']:.3f} | {r['10-13']:.3f} | {r['all']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
