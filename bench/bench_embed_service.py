"""Embedding throughput through 1, 2 and 4 `qa serve` processes, against the model in-process.

    nice -n 10 .venv/bin/python bench/bench_embed_service.py [--passages 1000]
        [--servers 1 2 4] --data ../shared/benchmarks/realtimeqa/2024q1

Passages are RealTime QA chunks as `qa ingest` embeds them (title + chunk, from
bench/bench_embed.py). Each row starts that many `qa serve` processes on loopback (no index:
they only embed), waits until each has loaded its model, and embeds every passage with
``embedding.backend = "openai"``: ``embedding.openai.base_urls`` lists the servers (round-robin),
``concurrency`` is 2 requests per server, 64 texts per request. The reference row embeds the
same passages in this process with the default (ONNX, one thread) embedder.

Besides chunks/s it prints what bounds the setup on separate machines: the client's CPU per
chunk (encoding requests, decoding base64 vectors; one client core embeds at most 1/that
chunks/s whatever the servers) and the round trip of a one-text request minus the same text
embedded in-process (HTTP + JSON + thread hand-offs per request).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_embed import real_texts

from qa.core.config import EmbeddingServiceSettings, Settings
from qa.embedding import create_embedder
from qa.embedding.base import Embedder
from qa.embedding.remote import RemoteEmbedder

BATCH = 64
PER_SERVER = 2  # requests in flight per server
PROBE = "What did the minister say about the talks?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def qa_serve(scratch: Path, extra: dict[str, str] | None = None) -> Iterator[str]:
    """One `qa serve` process with no index, the ``QA_*`` variables of ``extra`` only; yields
    its base URL once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(
        PYTHONPATH=str(ROOT),
        QA_PATHS_INDEX=str(scratch / "no-index"),
        QA_SERVER_MAX_CONCURRENT_ANSWERS=str(PER_SERVER),
    )
    env.update(extra or {})
    log = open(scratch / f"serve-{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--port", str(port)],
        env=env,
        cwd=scratch,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # the server warms its model up before it listens
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"qa serve did not start: see {log.name}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def remote(urls: list[str]) -> RemoteEmbedder:
    base = Settings().embedding
    service = EmbeddingServiceSettings(
        base_urls=tuple(f"{u}/v1" for u in urls),
        concurrency=PER_SERVER * len(urls),
        batch_size=BATCH,
    )
    return RemoteEmbedder(replace(base, backend="openai", openai=service))


def throughput(embedder: Embedder, passages: list[str]) -> tuple[float, float]:
    """(chunks per second, client CPU milliseconds per 1000 chunks)."""
    embedder.embed(passages[:BATCH])  # warm: connections, first batch
    started, cpu = time.perf_counter(), time.process_time()
    embedder.embed(passages)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(passages) / wall, 1e6 * cpu / len(passages)


def one_text_ms(embedder: Embedder, repeats: int = 30) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        embedder.embed([PROBE])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="a RealTime QA folder")
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()

    local = create_embedder(Settings().embedding)
    passages, _ = real_texts(args.data, args.passages, 0, local)
    print(f"{len(passages)} passages from {args.data}, {os.cpu_count()} cores here")
    rows = []
    rate, cpu = throughput(local, passages)
    local_ms = one_text_ms(local)
    rows.append(("in-process (onnx, 1 thread)", rate, cpu, local_ms))
    with tempfile.TemporaryDirectory(prefix="qa-bench-embed-") as tmp:
        for count in args.servers:
            with ExitStack() as stack:
                urls = [stack.enter_context(qa_serve(Path(tmp))) for _ in range(count)]
                embedder = remote(urls)
                rate, cpu = throughput(embedder, passages)
                rows.append(
                    (
                        f"{count} qa serve, {PER_SERVER * count} in flight",
                        rate,
                        cpu,
                        one_text_ms(embedder),
                    )
                )
    print(f"{'embedder':<30} {'chunks/s':>9} {'client CPU ms/1000':>19} {'1-text ms':>10}")
    for name, rate, cpu, ms in rows:
        print(f"{name:<30} {rate:9.1f} {cpu:19.0f} {ms:10.1f}")
    overhead = statistics.median(r[3] for r in rows[1:]) - local_ms
    client_cpu = statistics.median(r[2] for r in rows[1:])
    print(
        f"per-request overhead (1-text round trip minus in-process): {overhead:.1f} ms; "
        f"client ceiling: {1e6 / client_cpu:,.0f} chunks/s per client core"
        if client_cpu
        else ""
    )
    print("busy shared machine: compare rows of one run, not runs")


if __name__ == "__main__":
    main()
