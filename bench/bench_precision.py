"""fp32 against int8 embedding weights (``embedding.precision``), on the same data, one run each.

    .venv/bin/python bench/bench_precision.py \\
        --rtqa ../shared/benchmarks/realtimeqa/2024q1 --rtqa ../shared/benchmarks/realtimeqa/2023 \\
        [--weeks 1] [--precisions fp32,int8] [--out docs/figures/precision.json]
    .venv/bin/python bench/bench_precision.py            # the gold set and the speed rows only

For each precision, every figure comes from whole `qa` processes (as a user runs them) with
``QA_EMBEDDING_PRECISION`` set and an index of its own in a fresh scratch folder (so nothing is
reused from an earlier run):

* gold set: `qa ingest corpus/`, then `qa eval` (evidence recall@5 and MRR; extractive client);
* RealTime QA, per ``--rtqa`` folder: `qa eval realtimeqa` (answer recall@5 beside the search
  oracle, multiple-choice accuracy, short-answer F1), which ingests the folder from scratch
  first: its chunks / index seconds are the ingest chunks/s, its index folder the size on
  disk, the process's peak resident memory (with its children) the peak memory;
* cold `qa ask` on the gold index: median wall time of ``--cold-runs`` new processes;
* warm question embedding: median over the gold questions, one at a time, one thread (as
  `qa ask` loads it), in this process after a warm-up.

Prints a table and writes it as JSON (``--out``). Run it on an idle machine: the speed rows
are wall times. ``--weeks 1`` is a quick check of the script, not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ask import QUESTIONS, run_cli

from qa.core.config import EmbeddingSettings
from qa.embedding.onnx import OnnxEmbedder
from qa.evaluation.figures import Figure, figure, save, to_markdown


def folder_bytes(path: Path) -> int:
    """Bytes on disk under ``path`` (hard-linked segments counted once)."""
    seen: set[int] = set()
    total = 0
    for p in path.rglob("*"):
        st = p.lstat()
        if p.is_file() and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_blocks * 512
    return total


def environment(precision: str, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(
        PYTHONPATH=str(ROOT),
        QA_EMBEDDING_PRECISION=precision,
        QA_PATHS_INDEX=str(scratch / "index"),
        QA_PATHS_RUNS=str(scratch / "runs"),
    )
    return env


def warm_question_ms(precision: str, questions: list[str]) -> float:
    embedder = OnnxEmbedder(replace(EmbeddingSettings(), precision=precision, threads=1))
    for q in questions[:10]:
        embedder.embed([q])
    times = []
    for q in questions:
        started = time.perf_counter()
        embedder.embed([q])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(precision: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    env = environment(precision, scratch)
    row: dict[str, Any] = {"precision": precision}
    # The model files (export, int8 graph) are made before anything is timed.
    OnnxEmbedder(replace(EmbeddingSettings(), precision=precision)).embed(["warm up"])

    wall, _, peak, out = run_cli(ROOT, env, ["ingest", str(ROOT / "corpus"), "--json"])
    report = json.loads(out)
    row["gold_ingest"] = {"chunks": report["chunks"], "wall_s": round(wall, 2)}
    _, _, _, out = run_cli(ROOT, env, ["eval", "--json", "--out", str(scratch / "gold")])
    overall = json.loads(out)["summary"]["overall"]
    row["gold"] = {"evidence_recall@5": overall["evidence_recall"], "mrr": overall["mrr"]}

    colds, peaks = [], []
    for i in range(args.cold_runs):
        wall, _, peak, _ = run_cli(ROOT, env, ["ask", QUESTIONS[i % len(QUESTIONS)], "--json"])
        colds.append(wall)
        peaks.append(peak)
    row["cold_ask_s"] = round(statistics.median(colds), 3)
    row["cold_ask_peak_mb"] = round(max(peaks) / 1024, 1)
    gold = ROOT / "eval" / "gold.jsonl"
    questions = [json.loads(line)["question"] for line in gold.read_text().splitlines() if line]
    row["warm_question_ms"] = round(warm_question_ms(precision, questions), 2)

    row["realtimeqa"] = {}
    for data in args.rtqa:
        command = ["eval", "realtimeqa", "--data", str(data), "--json"]
        command += ["--out", str(scratch / f"rtqa-{data.name}")]
        if args.weeks:
            command += ["--weeks", args.weeks]
        wall, _, peak, out = run_cli(ROOT, env, command)
        report = json.loads(out)
        overall, setup = report["summary"]["overall"], report["settings"]
        index_dir = next(scratch.glob(f"realtimeqa-{data.name}-*"))
        row["realtimeqa"][data.name] = {
            "weeks": len(setup["weeks"]),
            "questions": report["summary"]["n"],
            "answer_recall@5": overall["answer_recall"],
            "search_oracle": overall["search_oracle"],
            "mc_accuracy": overall["mc_accuracy"],
            "short_f1": overall["f1"],
            "chunks": setup["chunks"],
            "ingest_chunks_per_s": round(setup["chunks"] / max(setup["index_seconds"], 0.1), 1),
            "index_mb": round(folder_bytes(index_dir) / 1e6, 1),
            "peak_mb": round(peak / 1024, 1),
            "wall_s": round(wall, 1),
        }
    return row


def table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The comparison as a figure's columns and rows: one row a figure, one column a
    precision."""
    names = [r["precision"] for r in rows]
    out: list[list[str]] = []

    def add(label: str, values: list[Any]) -> None:
        out.append([label, *(f"{v:.3f}" if isinstance(v, float) else str(v) for v in values)])

    add("gold evidence recall@5", [r["gold"]["evidence_recall@5"] for r in rows])
    add("gold MRR", [r["gold"]["mrr"] for r in rows])
    for data in rows[0]["realtimeqa"]:
        per = [r["realtimeqa"][data] for r in rows]
        for key in ("answer_recall@5", "search_oracle", "mc_accuracy", "short_f1"):
            add(f"{data} {key}", [p[key] for p in per])
        for key in ("chunks", "ingest_chunks_per_s", "index_mb", "peak_mb"):
            add(f"{data} {key}", [p[key] for p in per])
    add("warm question embedding ms", [r["warm_question_ms"] for r in rows])
    add("cold `qa ask` s", [r["cold_ask_s"] for r in rows])
    add("cold `qa ask` peak MB", [r["cold_ask_peak_mb"] for r in rows])
    return ["figure", *names], out


def precision_figure(rows: list[dict[str, Any]], weeks: str) -> Figure:
    """The docs' figure (docs/figures/precision.json), with every measurement kept in
    ``extra``."""
    columns, cells = table(rows)
    note = f"Weeks of each RealTime QA folder: {weeks or 'all'}."
    return replace(figure("Embedding precision: fp32 vs int8", columns, cells, note), extra={
        "rows": rows,
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rtqa", type=Path, action="append", default=[], help="RealTime QA folder")
    parser.add_argument("--weeks", default="", help="first N weeks of each folder (a quick check)")
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "precision.json")
    args = parser.parse_args(argv)
    for data in args.rtqa:
        if not data.is_dir():
            parser.error(f"--rtqa {data}: not a folder")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as tmp:
        for precision in args.precisions.split(","):
            rows.append(measure(precision, args, Path(tmp) / precision))
            print(f"{precision} done", file=sys.stderr)
    fig = precision_figure(rows, args.weeks)
    print(to_markdown(fig))
    save(fig, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
