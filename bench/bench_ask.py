"""Benchmark `qa ask`: cold (a new process, as a CLI user feels it) and warm (one process),
per client, on the bundled corpus, with per-stage medians.

    .venv/bin/python bench/bench_ask.py [--clients extractive,local] [--cold-runs 3]

The bundled corpus is indexed into a temporary folder first, so the project's own index is
left alone. Figures are medians; the machine is shared, so compare runs made together.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What did Khrenin say about India?",
    "How many civilians were killed in the Pahalgam terror attack?",
    "Who co-chairs the IRIGC-M&MTC mechanism?",
    "What did Belousov say about terrorism?",
    "Which Indian MP visited Moscow before the Qingdao meeting?",
]
STAGES = ("embed_question", "search", "prompt", "generate", "check_citations", "total")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def build_index(index: Path) -> None:
    env = os.environ | {"QA_PATHS_INDEX": str(index)}
    subprocess.run(
        [str(ROOT / ".venv/bin/qa"), "ingest", "--json"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def cold(client: str, index: Path, runs: int) -> tuple[float, dict[str, float]]:
    """Wall time of whole `qa ask` processes, and the median stage timings they report."""
    env = os.environ | {"QA_PATHS_INDEX": str(index), "QA_LLM_CLIENT": client}
    walls: list[float] = []
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    for i in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [str(ROOT / ".venv/bin/qa"), "ask", QUESTIONS[i % len(QUESTIONS)], "--json"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        walls.append(time.perf_counter() - started)
        timings = json.loads(done.stdout)["timings_ms"]
        for s in STAGES:
            if s in timings:
                stages[s].append(timings[s])
    return median(walls), {s: median(v) for s, v in stages.items()}


def warm(client: str, index: Path, runs: int) -> tuple[float, dict[str, float]]:
    """Median stage timings of asks in one process, after a first ask has loaded everything."""
    sys.path.insert(0, str(ROOT))
    from qa import Assistant

    assistant = Assistant.from_config(ROOT / "config.toml", llm=client, index=str(index))
    started = time.perf_counter()
    assistant.ask(QUESTIONS[0])
    first = time.perf_counter() - started
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    for i in range(runs):
        answer = assistant.ask(QUESTIONS[(i + 1) % len(QUESTIONS)])
        for s in STAGES:
            if s in answer.timings_ms:
                stages[s].append(answer.timings_ms[s])
    return first, {s: median(v) for s, v in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", default="extractive,local")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--warm-runs", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        build_index(index)
        print(f"{'client':<11} {'mode':<5} {'wall s':>7} " + " ".join(f"{s:>15}" for s in STAGES))
        for client in args.clients.split(","):
            wall, stages = cold(client, index, args.cold_runs)
            print(
                f"{client:<11} {'cold':<5} {wall:7.2f} "
                + " ".join(f"{stages[s]:15.1f}" for s in STAGES)
            )
            first, stages = warm(client, index, args.warm_runs)
            print(
                f"{client:<11} {'warm':<5} {stages['total'] / 1000:7.3f} "
                + " ".join(f"{stages[s]:15.1f}" for s in STAGES)
                + f"   (first ask in process {first:.2f} s)"
            )
    print("stage columns are medians in ms; cold wall is the whole process, imports included")


if __name__ == "__main__":
    main()
