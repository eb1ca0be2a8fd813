"""Compare the two embedding runtimes on real RealTime QA text: same vectors? how fast?

    .venv/bin/python bench/bench_embed.py --data ../shared/benchmarks/realtimeqa/2024q1
        [--passages 1500] [--questions 1500]

Passages are the texts the index embeds (title + chunk, chunked as `qa ingest` does), taken
evenly from the quarter's articles; questions are the benchmark's questions. Both runtimes embed
the same texts: passages in batches as ingest does (throughput), questions one at a time as
`qa ask` does (latency, after a warm-up). Prints the lowest and mean cosine between the two
runtimes' vectors, the token counts' agreement, and the speed of each. The ONNX export is made
first if the cache has none (its time is not counted).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.core.config import Settings
from qa.embedding.base import Embedder
from qa.embedding.onnx import OnnxEmbedder
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.evaluation import realtime_qa
from qa.ingest.chunk import chunks_for, embed_text, embedded_title


def real_texts(
    data: Path, passages: int, questions: int, embedder: Embedder
) -> tuple[list[str], list[str]]:
    rt_questions, documents = realtime_qa.load(data)
    settings = Settings()
    step = max(1, len(documents) // max(1, passages // 8))
    texts: list[str] = []
    for doc in documents[::step]:
        title = embedded_title(doc.title, embedder.count_tokens)
        for chunk in chunks_for(doc, embedder, settings.chunking):
            texts.append(embed_text(title, chunk.text, settings.chunking.embed_title))
        if len(texts) >= passages:
            break
    asked = [q.question for q in rt_questions][:questions]
    return texts[:passages], asked


def measure(embedder: Embedder, passages: list[str], questions: list[str]) -> dict[str, object]:
    started = time.perf_counter()
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    passage_vectors = embedder.embed(passages)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    latencies: list[float] = []
    rows = []
    for q in questions:
        t0 = time.perf_counter()
        rows.append(embedder.embed([q])[0])
        latencies.append((time.perf_counter() - t0) * 1000)
    return {
        "load_s": load_s,
        "passages_per_s": len(passages) / wall,
        "passages_per_cpu_s": len(passages) / cpu,
        "question_ms_p50": statistics.median(latencies),
        "question_ms_p90": float(np.percentile(latencies, 90)),
        "passage_vectors": passage_vectors,
        "question_vectors": np.vstack(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="a RealTime QA folder")
    parser.add_argument("--passages", type=int, default=1500)
    parser.add_argument("--questions", type=int, default=1500)
    args = parser.parse_args()

    settings = Settings()
    onnx = OnnxEmbedder(settings.embedding)
    torch = SentenceTransformerEmbedder(settings.embedding)
    passages, questions = real_texts(args.data, args.passages, args.questions, onnx)
    print(f"{len(passages)} passages, {len(questions)} questions from {args.data}")
    same_counts = onnx.count_tokens(passages) == torch.count_tokens(passages)
    results = {
        "torch": measure(torch, passages, questions),
        "onnx": measure(onnx, passages, questions),
    }
    print(
        f"{'runtime':<8} {'load s':>7} {'passages/s':>11} {'per CPU s':>10} "
        f"{'question p50 ms':>16} {'p90':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:<8} {r['load_s']:7.2f} {r['passages_per_s']:11.1f} "
            f"{r['passages_per_cpu_s']:10.1f} {r['question_ms_p50']:16.2f} "
            f"{r['question_ms_p90']:7.2f}"
        )
    for kind in ("passage_vectors", "question_vectors"):
        a, b = results["torch"][kind], results["onnx"][kind]
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        cosines = (a * b).sum(axis=1)
        print(
            f"cosine torch vs onnx, {kind.split('_')[0]}s: "
            f"min {cosines.min():.7f} mean {cosines.mean():.7f}"
        )
    print(f"token counts identical on all passages: {same_counts}")
    print("busy shared machine: compare rows of one run, not runs")


if __name__ == "__main__":
    main()
