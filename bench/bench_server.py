"""Load benchmark of `qa serve`: concurrent clients asking ``POST /api/ask``.

    .venv/bin/python bench/bench_server.py                       # 1, 8 and 32 clients
    .venv/bin/python bench/bench_server.py --levels 1,4,16 --requests 300 --seconds 60
    .venv/bin/python bench/bench_server.py --index .qa/index     # reuse an existing index

The server runs in a child process (``qa.serving.app.serve``: the real embedder, the extractive
client, the bundled corpus indexed into a temporary folder unless ``--index`` is given), on
127.0.0.1, so the load generator's threads do not share its interpreter. Each level first
warms up, then runs its clients until ``--requests`` answers have come back or ``--seconds``
have passed. Every client keeps one connection and cycles through ten realistic questions,
each starting at a different one. Reported per level: requests, errors (non-200 or
exceptions), requests/s, p50/p90/p99 latency in ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "What did Khrenin say about India?",
    "Who is Andrey Belousov?",
    "What did Belousov say about terrorism?",
    "Where did Rajnath Singh meet his Belarusian counterpart?",
    "Why did Rajnath Singh refuse to endorse the SCO joint communiqué?",
    "What is Operation Sindoor?",
    "Which defence systems does Russia supply to India?",
    "What happened in the Pahalgam terror attack?",
    "What did Singh say about double standards on terrorism?",
    "How long have India and Belarus had diplomatic relations?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_index(folder: Path) -> None:
    from qa.core.config import load_settings
    from qa.embedding import create_embedder
    from qa.index import sync
    from qa.ingest import read_paths

    settings = load_settings(overrides={"paths.index": str(folder)})
    sync(
        settings.index_dir,
        read_paths([ROOT / "corpus"]).documents,
        create_embedder(settings.embedding),
        settings,
    )


def child_serve(index: str, port: int) -> None:
    """The server process: exactly what `qa serve` runs."""
    from qa.core.config import load_settings
    from qa.serving.app import serve

    settings = load_settings(overrides={"paths.index": index, "llm.client": "extractive"})
    serve(settings, "127.0.0.1", port)


@contextlib.contextmanager
def server(index: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "QA_API_KEY"}
    env.setdefault("HF_HUB_OFFLINE", "1")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child-serve", str(index), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited:\n{proc.stderr.read() if proc.stderr else ''}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not become healthy in 120 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_level(url: str, clients: int, requests: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    issued = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def take() -> bool:
        nonlocal issued
        with lock:
            if issued >= requests or time.perf_counter() > stop_at:
                return False
            issued += 1
            return True

    def client(worker: int) -> None:
        nonlocal errors
        i = worker
        with httpx.Client(base_url=url, timeout=120) as http:
            while take():
                question = QUESTIONS[i % len(QUESTIONS)]
                i += 1
                t0 = time.perf_counter()
                try:
                    ok = http.post("/api/ask", json={"question": question}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - t0
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors += 1

    threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        if not ms:
            return float("nan")
        return ms[min(len(ms) - 1, max(0, round(p / 100 * len(ms)) - 1))]

    return {
        "clients": clients,
        "requests": len(ms) + errors,
        "errors": errors,
        "rps": len(ms) / wall if wall else 0.0,
        "p50": statistics.median(ms) if ms else float("nan"),
        "p90": pct(90),
        "p99": pct(99),
        "seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="1,8,32", help="concurrent clients per level")
    parser.add_argument("--requests", type=int, default=200, help="answers per level at most")
    parser.add_argument("--seconds", type=float, default=45.0, help="time per level at most")
    parser.add_argument("--warmup", type=int, default=10, help="requests before measuring")
    parser.add_argument("--index", type=Path, help="an existing index (default: build one)")
    parser.add_argument("--child-serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--save-figures", metavar="FILE",
                        help="also write the table as JSON for the docs (docs/figures/NAME.json)")
    args = parser.parse_args()
    if args.child_serve:
        child_serve(args.child_serve, args.port)
        return

    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        index = args.index
        if index is None:
            index = Path(tmp) / "index"
            t0 = time.perf_counter()
            build_index(index)
            print(f"indexed corpus/ into {index} in {time.perf_counter() - t0:.1f} s", flush=True)
        with server(index.resolve()) as url:
            run_level(url, 1, args.warmup, 60)
            print(
                f"server {url}: real embedder, extractive client, POST /api/ask, "
                f"{len(QUESTIONS)} rotating questions, cpus={os.cpu_count()}"
            )
            print(
                f"{'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>7} "
                f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'secs':>6}"
            )
            table = []
            for clients in levels:
                r = run_level(url, clients, args.requests, args.seconds)
                table.append([str(r["clients"]), f"{r['rps']:.1f}", f"{r['p50']:.0f} ms",
                              f"{r['p99']:.0f} ms", str(r["errors"])])
                print(
                    f"{r['clients']:>7} {r['requests']:>8} {r['errors']:>6} {r['rps']:>7.1f} "
                    f"{r['p50']:>8.0f} {r['p90']:>8.0f} {r['p99']:>8.0f} "
                    f"{r['seconds']:>6.1f}",
                    flush=True,
                )
    if args.save_figures:
        from qa.evaluation import figures  # only now: the benchmark's own process stays light

        columns = ["concurrent clients", "requests/s", "p50", "p99", "errors"]
        note = ("`qa serve` with the real embedder and the extractive client, POST /api/ask, "
                f"{len(QUESTIONS)} rotating questions.")
        figures.save(figures.figure("server", columns, table, note), args.save_figures)


if __name__ == "__main__":
    main()
