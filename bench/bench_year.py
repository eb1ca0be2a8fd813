"""A year of news on one machine: RealTime QA 2023 ingested from scratch with the default
settings, then searched at that size; then the same ingest through two `qa serve` embedding
services, to show what a second machine would add.

    .venv/bin/python bench/bench_year.py --data ../shared/benchmarks/realtimeqa/2023 \\
        [--weeks 2] [--servers 2] [--service-urls http://10.0.0.5:8000,http://10.0.0.6:8000]
        [--queries 300] [--out docs/figures/year.json]

1. Ingest: a child process reads the folder's articles (``qa.evaluation.realtime_qa.load``) and runs
   ``qa.index.sync`` into a fresh index with the embedder of the settings (the defaults, or
   ``QA_*`` variables the caller sets, e.g. ``QA_EMBEDDING_PRECISION``); reported: wall time,
   articles, chunks, chunks/s, index size on disk, peak resident memory of the process.
2. Search at that size: the benchmark's questions (``--queries``, spread over the year), each
   retrieved (question embedding, dense + BM25, fusion, selection) in one warm process: p50
   and p95 wall milliseconds.
3. Services: ``--servers`` `qa serve` processes started here (no index; they only embed), or
   ``--service-urls`` already running elsewhere, and the same ingest with
   ``embedding.backend = "openai"`` round-robin over them into another fresh index. Started
   here they share this machine's cores with the client: the row shows the cost of the
   split; run the services on other machines (``--service-urls``) for what they add.

``--weeks N`` (the first N weeks) is a quick check of the script, not a result. Run the year
on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ask import tree_rss_kb
from bench_embed_service import PER_SERVER, qa_serve
from bench_precision import folder_bytes


def child_ingest(data: Path, weeks: list[str] | None, index: Path) -> None:
    """In the child: ingest, print one JSON line."""
    from qa.core.config import load_settings
    from qa.embedding import create_embedder
    from qa.evaluation.realtime_qa import load
    from qa.index import sync

    settings = load_settings(overrides={"paths.index": str(index)})
    _, documents = load(data, weeks)
    report = sync(index, documents, create_embedder(settings.embedding), settings)
    print(json.dumps({"articles": len(documents), "chunks": report.chunks_total}))


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak resident MB of the process tree, stdout) of ``command``."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, cwd=ROOT)
        peak, done = [0], threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                peak[0] = max(peak[0], tree_rss_kb(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        done.set()
        sampler.join()
        wall = time.perf_counter() - started
        if code:
            raise SystemExit(f"{' '.join(command)} failed with code {code}")
        out.seek(0)
        return wall, peak[0] / 1024, out.read()


def ingest(args: argparse.Namespace, index: Path, extra: dict[str, str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    command = [sys.executable, __file__, "--child-ingest", str(index), "--data", str(args.data)]
    if args.weeks:
        command += ["--weeks", args.weeks]
    wall, peak_mb, out = measured(command, env)
    counts = json.loads(out.strip().splitlines()[-1])
    return {
        **counts,
        "wall_s": round(wall, 1),
        "chunks_per_s": round(counts["chunks"] / wall, 1),
        "index_mb": round(folder_bytes(index) / 1e6, 1),
        "peak_mb": round(peak_mb, 1),
    }


def search(args: argparse.Namespace, index: Path, weeks: list[str] | None) -> dict[str, Any]:
    from qa.answering.assistant import Assistant
    from qa.core.config import load_settings
    from qa.evaluation.realtime_qa import load

    questions, _ = load(args.data, weeks)
    step = max(1, len(questions) // args.queries)
    asked = [q.question for q in questions[::step]][: args.queries]
    assistant = Assistant(load_settings(overrides={"paths.index": str(index)}))
    assistant.retrieve(asked[0])  # loads the model and the index
    times = []
    for question in asked:
        started = time.perf_counter()
        assistant.retrieve(question)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "queries": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="RealTime QA folder (2023)")
    parser.add_argument("--weeks", default="", help="first N weeks only (a quick check)")
    parser.add_argument("--servers", type=int, default=2, help="`qa serve`s to start here")
    parser.add_argument("--service-urls", default="", help="comma list of running `qa serve`s")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "year.json")
    parser.add_argument("--child-ingest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from qa.evaluation.realtime_qa_eval import choose_weeks

    weeks = choose_weeks([args.data], args.weeks)
    if args.child_ingest:
        child_ingest(args.data, weeks, args.child_ingest)
        return 0
    result: dict[str, Any] = {"data": str(args.data.resolve()), "weeks": args.weeks or "all"}
    with tempfile.TemporaryDirectory(prefix="bench-year-") as tmp:
        scratch = Path(tmp)
        result["one_machine"] = ingest(args, scratch / "local", {})
        print(f"one machine: {result['one_machine']}", file=sys.stderr)
        result["search"] = search(args, scratch / "local", weeks)
        print(f"search: {result['search']}", file=sys.stderr)
        with ExitStack() as stack:
            urls = [u.strip() for u in args.service_urls.split(",") if u.strip()]
            if not urls:
                # The services run the precision this process's settings say.
                same = {k: v for k, v in os.environ.items() if k == "QA_EMBEDDING_PRECISION"}
                urls = [stack.enter_context(qa_serve(scratch, same)) for _ in range(args.servers)]
            service = {
                "QA_EMBEDDING_BACKEND": "openai",
                "QA_EMBEDDING_OPENAI_BASE_URLS": ",".join(f"{u}/v1" for u in urls),
                "QA_EMBEDDING_OPENAI_CONCURRENCY": str(PER_SERVER * len(urls)),
            }
            row = ingest(args, scratch / "services", service)
            started_here = not args.service_urls
            result["services"] = {"servers": len(urls), "started_here": started_here, **row}
            print(f"services: {result['services']}", file=sys.stderr)
    result["load_average"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
