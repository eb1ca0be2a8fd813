"""Which int8 quantisation: the recipes of qa.embedding.int8.RECIPES compared with fp32 by
retrieval,
not by cosine (how qa.embedding.int8.RECIPE was chosen).

    .venv/bin/python bench/bench_int8_recipes.py \\
        [--rtqa ../shared/benchmarks/realtimeqa/2024q1 --weeks 2]

For fp32 and each recipe, in this process: the bundled corpus indexed with that embedder
(questions and passages alike), and the gold set retrieved (k = 5, no date filter): evidence
recall@5 and MRR of the passages, as `qa eval` scores them; with ``--rtqa``, the first
``--weeks`` weeks indexed and their questions retrieved on their own dates: answer recall@5
(the gold answer in a retrieved passage). Also the lowest and mean cosine with fp32 over the
corpus's passages, the int8 file's size and the warm one-thread question embedding time.
Retrieval only (no answer model), so it runs in minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answering.assistant import Assistant
from qa.core.config import Settings, load_settings
from qa.core.types import QAError
from qa.embedding import int8 as embed_int8
from qa.embedding.onnx import OnnxEmbedder
from qa.evaluation import metrics
from qa.evaluation.realtime_qa_eval import question_filters
from qa.evaluation.runner import load_gold
from qa.index import LocalIndex, sync
from qa.ingest import read_paths
from qa.ingest.chunk import embed_text
from qa.llm.fake import FakeLLM


def embedder(precision: str) -> OnnxEmbedder:
    return OnnxEmbedder(replace(Settings().embedding, precision=precision, threads=1))


def gold_scores(emb: OnnxEmbedder, folder: Path) -> dict[str, Any]:
    settings = load_settings(overrides={"paths.index": str(folder)}, env={})
    sync(folder, read_paths([ROOT / "corpus"]).documents, emb, settings)
    asker = Assistant(settings, embedder=emb, llm=FakeLLM())
    recall, mrr, times = [], [], []
    for item in load_gold(ROOT / "eval" / "gold.jsonl"):
        passages = [h.chunk.text for h in asker.retrieve(item.question, 5).hits]
        recall.append(metrics.evidence_complete(passages, item.evidence))
        mrr.append(metrics.mrr(passages, item.evidence))
        started = time.perf_counter()
        emb.embed([item.question])
        times.append((time.perf_counter() - started) * 1000)
    index = LocalIndex.open(folder)
    texts = [embed_text(d.title, c.text, True) for c, d in index.iter_chunks()]
    return {
        "evidence_recall@5": statistics.mean(v for v in recall if v is not None),
        "mrr": statistics.mean(v for v in mrr if v is not None),
        "question_ms": statistics.median(times),
        "texts": texts,
    }


def rtqa_recall(emb: OnnxEmbedder, data: Path, weeks: str, folder: Path) -> float:
    from qa.evaluation.realtime_qa import load
    from qa.evaluation.realtime_qa_eval import choose_weeks

    questions, documents = load(data, choose_weeks([data], weeks))
    settings = load_settings(overrides={"paths.index": str(folder)}, env={})
    sync(folder, documents, emb, settings)
    asker = Assistant(settings, embedder=emb, llm=FakeLLM())
    found = []
    for q in questions:
        hits = asker.retrieve(q.question, 5, filters=question_filters(q.date, "question")).hits
        found.append(any(metrics.answer_in_text(q.gold, h.chunk.text) for h in hits))
    return sum(found) / max(1, len(found))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rtqa", type=Path, help="a RealTime QA folder")
    parser.add_argument("--weeks", default="2")
    parser.add_argument("--recipes", default=",".join(embed_int8.RECIPES))
    args = parser.parse_args(argv)
    rows: dict[str, dict[str, Any]] = {}
    reference: Any = None
    with tempfile.TemporaryDirectory(prefix="int8-recipes-") as tmp:
        for name in ["fp32", *args.recipes.split(",")]:
            if name != "fp32":
                embed_int8.RECIPE = name  # read when the embedder loads
            emb = embedder("fp32" if name == "fp32" else "int8")
            try:
                row = gold_scores(emb, Path(tmp) / name / "gold")
            except QAError as exc:  # below the cosine floor: never made
                print(name, f"refused: {exc}", flush=True)
                continue
            texts = row.pop("texts")
            vectors = emb.embed(texts)
            if reference is None:
                reference = vectors
            cosines = (vectors * reference).sum(axis=1)
            row |= {"cos_min": float(cosines.min()), "cos_mean": float(cosines.mean())}
            row["file_mb"] = round(emb.graph.stat().st_size / 1e6, 1)
            if args.rtqa:
                row["rtqa_answer_recall@5"] = rtqa_recall(
                    emb, args.rtqa, args.weeks, Path(tmp) / name / "rtqa"
                )
            rows[name] = row
            print(name, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
