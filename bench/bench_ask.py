"""Benchmark asking: cold `qa ask` / `qa search` (a new process, as a CLI user feels it), peak
memory, `qa serve` start-up, and warm figures (one process), for each embedding runtime, in
one run.

    .venv/bin/python bench/bench_ask.py [--embedders torch,onnx] [--clients extractive,local]
        [--cold-runs 5] [--warm-runs 20] [--serve-runs 3]
        [--rtqa-index .qa/realtimeqa-2024q1-... [--rtqa-index OTHER]]
        [--rtqa-data ../shared/benchmarks/realtimeqa/2024q1]
        [--baseline GIT_REF [--baseline-embedders torch,onnx]]

* cold ask / cold search: median wall time of whole processes (imports, model and index loading
  included) on the bundled corpus, indexed first into a temporary folder, and their CPU time
  (user + system: close to the wall time an idle machine would show for this single-threaded
  work); peak memory is the largest, over those `qa ask` processes, of the process's resident
  set plus the private memory of the process it forks for spaCy (sampled every 20 ms).
* serve ready: from starting `qa serve` to its first 200 from ``/healthz`` (the server warms
  up, loading the index and the models, before it listens).
* warm ask: per-stage medians of asks in one process after a first ask loaded everything.
* warm question embedding: median wall and CPU time (the calling thread's; ONNX Runtime runs
  as many threads as cores were free when it loaded, one of them the caller) over distinct
  questions (RealTime QA's when ``--rtqa-data`` is given, else eval/gold.jsonl), one at a
  time, after a warm-up.
* warm retrieval on a large index (``--rtqa-index``, read only, repeated to compare two
  builds of it, e.g. exact against IVF): medians over RealTime QA questions of the search
  (dense + BM25 + exact cosines) and select (SQLite, de-duplication) stages, without the
  question's embedding (reported on its own), relevance floor off.
* ``--baseline REF`` also measures the cold rows with the code of a git commit (extracted with
  ``git archive`` into a temporary folder), i.e. the path before a change.

Figures are medians; the machine may be shared, so compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "What did Khrenin say about India?",
    "How many civilians were killed in the Pahalgam terror attack?",
    "Who co-chairs the IRIGC-M&MTC mechanism?",
    "What did Belousov say about terrorism?",
    "Which Indian MP visited Moscow before the Qingdao meeting?",
]
STAGES = ("embed_question", "search", "select", "prompt", "generate", "check_citations", "total")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def environment(
    code: Path, index: Path, runtime: str, client: str = "extractive"
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    return env | {
        "PYTHONPATH": str(code),
        "QA_PATHS_INDEX": str(index),
        "QA_EMBEDDING_RUNTIME": runtime,
        "QA_LLM_CLIENT": client,
        "QA_CACHE_DIR": os.environ.get("QA_CACHE_DIR", ""),
    }


def tree_rss_kb(pid: int) -> int:
    """Resident KB of ``pid`` plus the private KB of every process it started: a cold ask's
    spaCy runs in a forked child, whose pages shared with its parent are counted once. 0 once
    the process has exited."""
    total, stack = 0, [(pid, True)]
    while stack:
        current, root = stack.pop()
        try:
            fields = Path(f"/proc/{current}/smaps_rollup").read_text().splitlines()
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [(int(c), False) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        wanted = ("Rss:",) if root else ("Private_Clean:", "Private_Dirty:")
        total += sum(int(line.split()[1]) for line in fields if line.startswith(wanted))
    return total


def run_cli(code: Path, env: dict[str, str], args: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds of it and its children, peak resident KB of it and its
    children together, stdout) of one `qa` process."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", *args],
            cwd=code,
            env={k: v for k, v in env.items() if v},
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        # The sum of the process tree's resident sets, sampled every 20 ms (wait4's maximum
        # is one process's, its own or a child's, never their sum).
        peak_tree = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak_tree[0] = max(peak_tree[0], tree_rss_kb(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        done.set()
        sampler.join()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            raise SystemExit(f"`qa {' '.join(args)}` failed with code {process.returncode}")
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, max(usage.ru_maxrss, peak_tree[0]), out.read()


def cold(code: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    asks, ask_cpus, searches, search_cpus, peaks = [], [], [], [], []
    for i in range(runs):
        question = QUESTIONS[i % len(QUESTIONS)]
        wall, cpu, peak, _ = run_cli(code, env, ["ask", question, "--json"])
        asks.append(wall)
        ask_cpus.append(cpu)
        peaks.append(peak)
        wall, cpu, _, _ = run_cli(code, env, ["search", question, "--json"])
        searches.append(wall)
        search_cpus.append(cpu)
    return {
        "ask_s": median(asks),
        "ask_cpu_s": median(ask_cpus),
        "search_s": median(searches),
        "search_cpu_s": median(search_cpus),
        "peak_mb": max(peaks) / 1024,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_ready(code: Path, env: dict[str, str], runs: int) -> float:
    """Median seconds from starting `qa serve` to /healthz answering 200."""
    times = []
    for _ in range(runs):
        port = free_port()
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "serve", "--port", str(port)],
            cwd=code,
            env={k: v for k, v in env.items() if v},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                if process.poll() is not None:
                    raise SystemExit("`qa serve` exited before answering /healthz")
                try:
                    url = f"http://127.0.0.1:{port}/healthz"
                    with urllib.request.urlopen(url, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.02)
            times.append(time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return median(times)


def warm_ask(index: Path, runtime: str, client: str, runs: int) -> dict[str, float]:
    from qa import Assistant

    assistant = Assistant.from_config(
        ROOT / "config.toml", llm=client, index=str(index), **{"embedding.runtime": runtime}
    )
    assistant.ask(QUESTIONS[0])
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    for i in range(runs):
        answer = assistant.ask(QUESTIONS[(i + 1) % len(QUESTIONS)])
        for s in STAGES:
            if s in answer.timings_ms:
                stages[s].append(answer.timings_ms[s])
    return {s: median(v) for s, v in stages.items()}


def warm_embedding(runtime: str, questions: list[str]) -> tuple[float, float]:
    """Median wall and CPU ms (this thread's) to embed one question, over distinct questions."""
    from qa.core.config import load_settings
    from qa.embedding import create_embedder

    settings = load_settings(ROOT / "config.toml", {"embedding.runtime": runtime})
    embedder = create_embedder(settings.embedding)
    embedder.embed(["warm up"])
    times, cpu = [], []
    for q in questions:
        t0, c0 = time.perf_counter(), time.thread_time()
        embedder.embed([q])
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return median(times), median(cpu)


def warm_retrieval(index: Path, questions: list[str]) -> dict[str, Any]:
    """Median stage times of retrieval on a large index (ONNX embedder)."""
    from qa.core.config import load_settings
    from qa.embedding import create_embedder
    from qa.index import LocalIndex
    from qa.retrieval.retriever import Retriever
    from qa.text.sentences import passage_sentences

    # No relevance floor: every question then fetches and selects passages, as one with
    # relevant passages does (an index with stand-in vectors would otherwise select nothing).
    settings = load_settings(
        ROOT / "config.toml", {"paths.index": str(index), "retrieval.min_dense_score": -1.0}
    )
    embedder = create_embedder(settings.embedding)
    retriever = Retriever(LocalIndex.open(index, settings), embedder, settings.retrieval)
    retriever.search("warm up")
    # Each index's questions start with no passage split yet (the split is memoised, and an
    # earlier --rtqa-index run over the same questions would otherwise have split them).
    passage_sentences.cache_clear()
    stages: dict[str, list[float]] = {"embed_question": [], "search": [], "select": []}
    cpu = []
    for q in questions:
        c0 = time.thread_time()
        timings = retriever.search(q).timings_ms
        cpu.append((time.thread_time() - c0) * 1000)
        for s in stages:
            stages[s].append(timings[s])
    result: dict[str, Any] = {s: median(v) for s, v in stages.items()}
    result["retrieval_cpu"] = median(cpu)
    retrieval = [a + b for a, b in zip(stages["search"], stages["select"], strict=True)]
    result["retrieval"] = median(retrieval)
    result["chunks"] = float(len(retriever.index))
    result["kind"] = retriever.index.status()["vector_index"].get("kind", "?")
    return result


def rtqa_questions(data: Path | None) -> list[str]:
    if data is None:
        gold = (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["question"] for line in gold if line.strip()]
    questions = []
    for path in sorted(data.glob("*_qa.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.append(json.loads(line)["question_sentence"])
    return questions


def extract(ref: str, target: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", ref], cwd=ROOT, check=True, capture_output=True
    ).stdout
    target.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embedders", default="torch,onnx")
    parser.add_argument("--clients", default="extractive")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--warm-runs", type=int, default=20)
    parser.add_argument("--serve-runs", type=int, default=3)
    parser.add_argument(
        "--rtqa-index", type=Path, action="append", default=[], help="repeat to compare indexes"
    )
    parser.add_argument("--rtqa-data", type=Path)
    parser.add_argument("--questions", type=int, default=300, help="distinct warm questions")
    parser.add_argument("--baseline", help="a git ref whose code is also measured cold")
    parser.add_argument(
        "--baseline-embedders", default="torch", help="the runtimes the baseline is measured with"
    )
    parser.add_argument("--save-figures", metavar="FILE",
                        help="also write the table as JSON for the docs (docs/figures/NAME.json)")
    args = parser.parse_args()
    for rtqa_index in args.rtqa_index:
        if not (rtqa_index / "CURRENT").is_file():
            parser.error(f"--rtqa-index {rtqa_index}: not an index folder (no CURRENT file)")
    runtimes = args.embedders.split(",")
    questions = rtqa_questions(args.rtqa_data)[: args.questions]

    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        run_cli(ROOT, environment(ROOT, index, runtimes[-1]), ["ingest", "--json"])
        codes = [(f"{runtime}", ROOT, runtime) for runtime in runtimes]
        if args.baseline:
            base = extract(args.baseline, Path(tmp) / "base")
            for runtime in reversed(args.baseline_embedders.split(",")):
                codes.insert(0, (f"{args.baseline} {runtime}", base, runtime))

        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(
            f"{'code / embedder':<16} {'cold ask s':>10} {'(CPU s)':>8} {'cold search s':>13} "
            f"{'(CPU s)':>8} {'ask peak MB':>11} {'serve ready s':>13}"
        )
        table = []
        for label, code, runtime in codes:
            env = environment(code, index, runtime)
            c = cold(code, env, args.cold_runs)
            ready = serve_ready(code, env, args.serve_runs) if args.serve_runs else float("nan")
            table.append([label, f"{c['ask_s']:.2f} s ({c['ask_cpu_s']:.2f} s)",
                          f"{c['search_s']:.2f} s ({c['search_cpu_s']:.2f} s)",
                          f"{c['peak_mb']:.0f} MB", f"{ready:.2f} s"])
            print(
                f"{label:<16} {c['ask_s']:10.2f} {c['ask_cpu_s']:8.2f} {c['search_s']:13.2f} "
                f"{c['search_cpu_s']:8.2f} {c['peak_mb']:11.0f} {ready:13.2f}"
            )

        print(f"\nwarm, one process (stage medians in ms; {len(questions)} distinct questions)")
        print(
            f"{'embedder':<8} {'client':<11} {'embed q':>8} {'(CPU)':>6} "
            + " ".join(f"{s:>9}" for s in STAGES)
        )
        for runtime in runtimes:
            embed_ms, embed_cpu = warm_embedding(runtime, questions)
            for client in args.clients.split(","):
                stages = warm_ask(index, runtime, client, args.warm_runs)
                print(
                    f"{runtime:<8} {client:<11} {embed_ms:8.2f} {embed_cpu:6.2f} "
                    + " ".join(f"{stages[s]:9.1f}" for s in STAGES)
                )

    for rtqa_index in args.rtqa_index:
        r = warm_retrieval(rtqa_index, questions)
        print(
            f"\nwarm retrieval on {rtqa_index} ({r['chunks']:.0f} chunks, {r['kind']}, "
            f"{len(questions)} questions, medians): search + select {r['retrieval']:.2f} ms "
            f"(search {r['search']:.2f}, select {r['select']:.2f}; CPU with embedding "
            f"{r['retrieval_cpu']:.2f}); question embedding {r['embed_question']:.2f} ms"
        )
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    if args.save_figures:
        from qa.evaluation import figures  # only now: the benchmark's own process stays light

        columns = ["code / embedding runtime", "cold `qa ask` (CPU)", "cold `qa search` (CPU)",
                   "`qa ask` peak memory", "`qa serve` ready"]
        note = f"Extractive client, bundled corpus, medians of {args.cold_runs} cold runs."
        figures.save(figures.figure("asking, cold", columns, table, note), args.save_figures)


if __name__ == "__main__":
    main()
