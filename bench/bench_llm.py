"""Benchmark the local models (issue 9): quality on the gold set and RealTime QA, speed, memory.

    .venv/bin/python bench/bench_llm.py [--models qwen2.5-coder-1.5b,qwen2.5-coder-0.5b]
        [--rt-weeks 4] [--rt-per-week 30] [--rt-models qwen2.5-coder-1.5b] [--speed 5]
        [--passage-tokens 100,200,400] [--gold-every 2 --gold-offset 1]

Each model runs in a process of its own (so its peak memory is its own): the bundled corpus is
indexed (once, under .qa/bench-llm/), then
- speed: one question to load the model, then ``--speed`` questions streamed: time to the
  first streamed piece and to the checked answer (warm, p50); then llama.cpp's own prompt
  reading and generation speed (tokens/s) on one uncached prompt;
- gold set (eval/gold.jsonl, or every ``--gold-every``-th question): contains (answerable),
  citation precision (answered), unanswerable refused, answerable wrongly refused, exact match
  of the verified short answer;
- RealTime QA, the first ``--rt-weeks`` weeks (``--rt-per-week`` questions each): multiple
  choice accuracy and free-text F1, beside the extractive client's on the same index and
  retrieval (the RealTime QA index is built once under .qa/bench-llm/).
Each model runs once per evidence budget of ``--passage-tokens`` (default: the configured one).
The machine's load average and the threads llama.cpp was given are printed with the figures:
they mean little without them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
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
from qa.evaluation.runner import eval_realtimeqa, load_gold, score_gold

WORK = ROOT / ".qa" / "bench-llm"
RT_DATA = ROOT.parent / "shared" / "benchmarks" / "realtimeqa" / "2024q1"
SPEED_QUESTIONS = [
    "What did Khrenin say about India?",
    "How many civilians were killed in the Pahalgam terror attack?",
    "Who co-chairs the IRIGC-M&MTC mechanism?",
    "What did Belousov say about terrorism?",
    "Which Indian MP visited Moscow before the Qingdao meeting?",
    "Which missile systems are named among the India-Russia collaboration projects?",
]


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def _assistant(
    client: str, model: str, index: Path, embedder: Any = None, budget: int = 0
) -> Assistant:
    overrides = {"llm.client": client, "llm.local.model": model, "paths.index": str(index)}
    if budget:
        overrides["llm.local.passage_tokens"] = str(budget)
    return Assistant(load_settings(None, overrides, env={}), embedder=embedder)


def _index_corpus(assistant: Assistant) -> None:
    from qa.index import sync
    from qa.ingest import read_paths

    settings = assistant.settings
    sync(settings.index_dir, read_paths([ROOT / "corpus"]).documents, assistant.embedder, settings)


def speed(assistant: Assistant, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    assistant.ask(SPEED_QUESTIONS[0])  # loads the model; not counted
    load_s = time.perf_counter() - t0
    first: list[float] = []
    total: list[float] = []
    for question in (SPEED_QUESTIONS * 2)[1 : n + 1]:
        start = time.perf_counter()
        seen = None
        for item in assistant.stream(question):
            if isinstance(item, str) and seen is None:
                seen = time.perf_counter() - start
        total.append(time.perf_counter() - start)
        first.append(seen if seen is not None else total[-1])
    return {
        "load_and_first_answer_s": round(load_s, 2),
        "first_piece_p50_s": round(statistics.median(first), 2),
        "answer_p50_s": round(statistics.median(total), 2),
        "questions": n,
    }


def throughput(assistant: Assistant) -> dict[str, float]:
    """llama.cpp's own reading and writing speed with the threads it was given: one uncached
    prompt of about 450 tokens (the start of a bundled article), 32 tokens written."""
    article = sorted((ROOT / "corpus").glob("*.md"))[0].read_text(encoding="utf-8")[:2400]
    server = assistant.llm.server()  # type: ignore[attr-defined]
    reply = server.handle_chat_completions(
        {
            "messages": [{"role": "user", "content": f"{article}\nSummarise in one line."}],
            "max_tokens": 32,
            "cache_prompt": False,
        }
    )
    timings = reply.get("timings", {}) if isinstance(reply, dict) else {}
    return {
        "prompt_tokens_per_s": round(float(timings.get("prompt_per_second", 0.0)), 1),
        "generated_tokens_per_s": round(float(timings.get("predicted_per_second", 0.0)), 1),
    }


def gold(assistant: Assistant, out: Path, every: int = 1, offset: int = 0) -> dict[str, Any]:
    """Every gold question (or every Nth, from the ``offset``-th: tune on one half, check on
    the other), in a fixed shuffled order so that the first ones of an interrupted run are
    still a fair sample of the three types; streamed, so the time to the first piece is
    measured too."""
    items = load_gold(ROOT / "eval" / "gold.jsonl")[offset::every]
    random.Random(9).shuffle(items)
    rows = []
    with open(out, "w", encoding="utf-8") as handle:
        for item in items:
            start = time.perf_counter()
            first = None
            answer = None
            for piece in assistant.stream(item.question):
                if isinstance(piece, str):
                    first = first if first is not None else time.perf_counter() - start
                else:
                    answer = piece
            assert answer is not None
            scores = score_gold(item, answer)
            scores["first_piece_ms"] = 1000 * (first if first is not None else 0.0)
            answerable = item.type != "unanswerable"
            scores["short_em"] = (
                metrics.exact_match(answer.short_answer, item.answers) if answerable else None
            )
            record = {"id": item.id, "type": item.type, **answer.to_dict(), "scores": scores}
            rows.append(record)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
    return summarise_gold(rows)


def summarise_gold(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's gold-set figures from prediction records (also from a partial run's file)."""
    scores = [(r["type"], r["scores"]) for r in records]
    answerable = [s for t, s in scores if t != "unanswerable"]
    unanswerable = [s for t, s in scores if t == "unanswerable"]
    return {
        "questions": len(scores),
        "answerable": len(answerable),
        "contains": _mean([s["contains"] for s in answerable]),
        "citation_precision": _mean(
            [s["citation_precision"] for _, s in scores if s["citation_precision"] is not None]
        ),
        "unanswerable_refused": _mean([float(s["refused"]) for s in unanswerable]),
        "answerable_wrongly_refused": _mean([float(s["refused"]) for s in answerable]),
        "short_answer_em": _mean([s["short_em"] for s in answerable]),
        "f1": _mean([s["f1"] for s in answerable]),
        "latency_p50_s": round(statistics.median(s["latency_ms"] for _, s in scores) / 1000, 2),
        "first_piece_p50_s": round(
            statistics.median(s.get("first_piece_ms", 0.0) for _, s in scores) / 1000, 2
        ),
    }


def rt(assistant: Assistant, weeks: int, per_week: int, out: Path) -> dict[str, Any]:
    chosen = realtime_qa.list_weeks(RT_DATA)[:weeks]
    original = realtime_qa.read

    def limited(folder: Path, wanted: Any = None) -> realtime_qa.RTData:
        data = original(folder, wanted)
        taken: dict[str, int] = {}
        kept = []
        for q in data.questions:
            taken[q.week] = taken.get(q.week, 0) + 1
            if taken[q.week] <= per_week:
                kept.append(q)
        return replace(data, questions=kept)

    realtime_qa.read = limited  # type: ignore[assignment]
    try:
        report = eval_realtimeqa(assistant, RT_DATA, chosen, out)
    finally:
        realtime_qa.read = original
    overall = report["summary"]["overall"]
    return {
        "weeks": chosen,
        "questions": report["summary"]["n"],
        "latency_p50_s": round((report["summary"]["latency_ms"]["p50"] or 0) / 1000, 2),
        "mc_accuracy": overall.get("mc_accuracy"),
        "mc_abstained": overall.get("mc_abstained"),
        "free_f1": overall.get("f1"),
        "free_em": overall.get("em"),
        "answer_recall": overall.get("answer_recall"),
    }


def one(args: argparse.Namespace) -> dict[str, Any]:
    """Everything for one model, in this process."""
    WORK.mkdir(parents=True, exist_ok=True)
    index = WORK / "index"
    client = "extractive" if args.one == "extractive" else "local"
    model = args.one if client == "local" else "qwen2.5-coder-1.5b"
    assistant = _assistant(client, model, index, budget=int(args.passage_tokens or 0))
    _index_corpus(assistant)
    result: dict[str, Any] = {"model": args.one, "load_before": os.getloadavg()}
    if client == "local":
        result["passage_tokens"] = assistant.settings.llm.local.passage_tokens
    run = Path(tempfile.mkdtemp(prefix=f"bench-llm-{args.one}-", dir=WORK))
    if args.speed:
        result["speed"] = speed(assistant, args.speed)
        if client == "local":
            result["llama_cpp"] = throughput(assistant)
    else:  # load the model before the gold set, so its questions are all warm
        t0 = time.perf_counter()
        assistant.ask(SPEED_QUESTIONS[0])
        result["load_and_first_answer_s"] = round(time.perf_counter() - t0, 2)
    if args.gold:
        result["gold"] = gold(assistant, run / "gold.jsonl", args.gold_every, args.gold_offset)
    if args.rt_weeks:
        result["realtimeqa"] = rt(assistant, args.rt_weeks, args.rt_per_week, run / "rt")
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["load_after"] = os.getloadavg()
    if client == "local":
        result["threads"] = assistant.llm.loaded().threads  # type: ignore[attr-defined]
    result["predictions"] = str(run)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="qwen2.5-coder-1.5b,qwen2.5-coder-0.5b")
    parser.add_argument("--rt-models", default="qwen2.5-coder-1.5b,extractive")
    parser.add_argument("--rt-weeks", type=int, default=4)
    parser.add_argument("--rt-per-week", type=int, default=30)
    parser.add_argument("--speed", type=int, default=5)
    parser.add_argument("--no-gold", dest="gold", action="store_false")
    parser.add_argument("--gold-every", type=int, default=1, help="every Nth gold question")
    parser.add_argument(
        "--gold-offset",
        type=int,
        default=0,
        help="start at the Nth gold question (0-based): with --gold-every 2, 1 is the other half",
    )
    parser.add_argument("--summarise", type=Path, help="figures of a gold predictions file")
    parser.add_argument(
        "--passage-tokens",
        default="",
        help="comma-separated evidence budgets (llm.local.passage_tokens) to run each model with",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.summarise:
        lines = args.summarise.read_text(encoding="utf-8").splitlines()
        records = []
        for line in lines:
            with contextlib.suppress(ValueError):  # the unfinished last line of a live run
                records.append(json.loads(line))
        print(json.dumps(summarise_gold(records), indent=1))
        return
    if args.one:
        print(json.dumps(one(args)))
        return
    names = [m for m in args.models.split(",") if m]
    rt_models = [m for m in args.rt_models.split(",") if m]
    budgets = [int(b) for b in str(args.passage_tokens).split(",") if b] or [0]
    runs = [(n, b) for n in dict.fromkeys([*names, *rt_models]) for b in budgets]
    for name, budget in dict.fromkeys((n, 0 if n == "extractive" else b) for n, b in runs):
        command = [sys.executable, __file__, "--one", name, "--speed", str(args.speed)]
        command += ["--gold-every", str(args.gold_every), "--gold-offset", str(args.gold_offset)]
        command += ["--passage-tokens", str(budget)]
        if name == "extractive" or not args.gold:
            command.append("--no-gold")
        if name in rt_models:
            command += ["--rt-weeks", str(args.rt_weeks), "--rt-per-week", str(args.rt_per_week)]
        else:
            command += ["--rt-weeks", "0"]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        print(json.dumps(json.loads(proc.stdout.strip().splitlines()[-1]), indent=1), flush=True)


if __name__ == "__main__":
    main()
