"""Ingest and search at scale through the real ``qa.index.sync``, with synthetic articles and a
synthetic embedder, so the figures are those of the index and not of the embedding model.

    .venv/bin/python bench/bench_scale.py --sizes 1e4,1e5            # a few minutes
    nice -n 10 .venv/bin/python bench/bench_scale.py --sizes 1e6     # ~20 min, ~6 GB RAM

Per backend (``--backends local[,milvus]``, chosen only through ``settings.index.backend``) and
size (chunks): the full build of the index, then an ingest of the same articles plus 1% new
ones; both timed minus the synthetic embedding (the time spent inside ``embed``), and their
ratio. Then hybrid search through ``qa.retrieval.retriever.Retriever`` (one question at a time,
warm),
unfiltered and filtered (a date window and one source), p50/p95; recall@10 of the dense part
(``Index.dense_search``) against exact search (``faiss.IndexFlatIP`` over the live vectors);
bytes on disk (hard links counted once) and the peak resident memory of the run. Each size runs
in its own process so the peak memory is its own.

Articles: ~1,300 words of sentences drawn from a 20,000-word Zipf vocabulary (about 8 chunks
of 200 tokens each), dates across 2024, four sources. Vectors: a unit vector per text, from a
hash of the text, around one of 256 topic directions picked by the article's first title word,
so that the vectors cluster the way sentence embeddings do (uniform noise would be an unfair
case for an approximate index).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import hashlib
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.core.config import IndexSettings, Settings
from qa.core.types import Document, Filters

DIM = 384
N_TOPICS = 256
VOCAB = 20_000
WORDS_PER_DOC = 1_300
CHUNKS_PER_DOC = 8  # what WORDS_PER_DOC gives at the default chunking (200 tokens, 40 overlap)
SOURCES = ("Reuters", "AP", "BBC", "Guardian")
QUERIES = 100


class SyntheticEmbedder:
    """Deterministic unit vectors from a hash of each text (clustered by the first word);
    counts a word as a token. Records the seconds spent embedding, to subtract them."""

    name = "synthetic"
    dim = DIM
    max_tokens = 256
    identity = f"synthetic:{DIM}"

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        topics = rng.standard_normal((N_TOPICS, DIM)).astype(np.float32)
        self.topics = topics / np.linalg.norm(topics, axis=1, keepdims=True)
        self.seconds = 0.0

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        t0 = time.perf_counter()
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
            rng = np.random.default_rng(int.from_bytes(digest, "little"))
            first = text.split(" ", 1)[0]
            topic = self.topics[
                int.from_bytes(hashlib.blake2b(first.encode()).digest()[:4], "little") % N_TOPICS
            ]
            out[row] = topic + 0.06 * rng.standard_normal(DIM, dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        self.seconds += time.perf_counter() - t0
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [t.count(" ") + 1 for t in texts]


def _vocabulary() -> np.ndarray:
    rng = np.random.default_rng(1)
    syllables = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "ze", "po", "da", "ge", "lu", "fa"]
    words: set[str] = set()
    while len(words) < VOCAB:
        words.add("".join(rng.choice(syllables, rng.integers(2, 5))))
    return np.array(sorted(words))


def make_documents(count: int, seed: int, prefix: str) -> list[Document]:
    """``count`` articles: Zipf-distributed words in sentences of 8-20 words, dated in 2024."""
    vocab = _vocabulary()
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, VOCAB + 1)
    weights /= weights.sum()
    docs = []
    for i in range(count):
        words = vocab[rng.choice(VOCAB, WORDS_PER_DOC, p=weights)]
        cuts = np.cumsum(rng.integers(8, 21, WORDS_PER_DOC // 8))
        cuts = cuts[cuts < WORDS_PER_DOC]
        text = " ".join(" ".join(s).capitalize() + "." for s in np.split(words, cuts) if len(s))
        title = " ".join(vocab[rng.integers(0, VOCAB, 6)]).capitalize()
        published = (date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 366)))).isoformat()
        docs.append(
            Document(
                id=f"{prefix}{i:07d}",
                title=title,
                text=text,
                segments=((0, len(text)),),
                published=published,
                source=SOURCES[i % len(SOURCES)],
                path=f"/synthetic/{prefix}{i:07d}.md",
            )
        )
    return docs


def settings_for(backend: str, root: Path | None = None) -> Settings:
    base = Settings()
    s = dataclasses.replace(
        base,
        embedding=dataclasses.replace(base.embedding, model=SyntheticEmbedder.name),
        retrieval=dataclasses.replace(base.retrieval, min_dense_score=0.0),
    )
    if "backend" in {f.name for f in dataclasses.fields(IndexSettings)}:
        index = dataclasses.replace(s.index, backend=backend)
        if root is not None and hasattr(index, "milvus"):  # Milvus Lite's file beside the rest
            milvus = dataclasses.replace(index.milvus, uri=str(root / "milvus.db"))
            index = dataclasses.replace(index, milvus=milvus)
        return dataclasses.replace(s, index=index)
    if backend != "local":
        raise SystemExit(
            f"error: unknown backend {backend!r}: this qa has no settings.index.backend, "
            "only the local index"
        )
    return s


def disk_bytes(root: Path) -> int:
    seen: set[int] = set()
    total = 0
    for p in root.rglob("*"):
        st = p.lstat()
        if p.is_file() and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_size
    return total


def _percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def _open(settings: Settings, root: Path) -> Any:
    """The index the settings choose (qa.index.open_index where the backends exist)."""
    import qa.index

    opener = getattr(qa.index, "open_index", None)
    return opener(settings, root) if opener else qa.index.Index.open(root)


def _dense_recall(index: Any, questions: np.ndarray) -> float:
    """recall@10 of the local index's dense search against exact search over its vectors."""
    import faiss

    live = np.ascontiguousarray(index.vectors, dtype=np.float32)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(live)
    del live
    _, truth = exact.search(questions, 10)
    ids = np.asarray(index.ids)
    hits = 0
    for q, t in zip(questions, truth, strict=True):
        found = {r for r, _ in index.dense_search(q, 10)}
        hits += len(found & set(ids[t].tolist()))
    return hits / truth.size


def run_one(backend: str, chunks: int, scratch: Path, profile: bool = False) -> dict[str, Any]:
    import qa.index
    from qa.retrieval.retriever import Retriever

    root = scratch / f"{backend}-{chunks}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    settings = settings_for(backend, root)
    n_docs = max(1, chunks // CHUNKS_PER_DOC)
    base = make_documents(n_docs, seed=chunks, prefix="a")
    extra = make_documents(max(1, n_docs // 100), seed=chunks + 1, prefix="b")
    embedder = SyntheticEmbedder()

    t0 = time.perf_counter()
    report = qa.index.sync(root, base, embedder, settings)
    full = time.perf_counter() - t0 - embedder.seconds
    embedder.seconds = 0.0
    profiler = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    update_report = qa.index.sync(root, base + extra, embedder, settings)
    update = time.perf_counter() - t0 - embedder.seconds
    if profiler:  # where the update's time goes, to stderr
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(20)
    rng = np.random.default_rng(3)
    index = _open(settings, root)
    if hasattr(index, "ids"):  # local: words from stored passages
        rows = rng.choice(np.asarray(index.ids), QUERIES, replace=False)
        texts = [c.text for c, _ in index.chunks([int(r) for r in rows]).values()]
    else:  # another backend: words from the articles
        texts = [base[int(i)].text for i in rng.choice(len(base), QUERIES, replace=False)]
    questions = [" ".join(t.split()[5:14]) + "?" for t in texts]
    del base, extra
    retriever = Retriever(index, embedder, settings.retrieval)
    window = Filters(since=date(2024, 3, 1), until=date(2024, 5, 31), sources=("ap",))
    timings: dict[str, list[float]] = {"unfiltered": [], "filtered": []}
    for label, filters in (("unfiltered", None), ("filtered", window)):
        retriever.search(questions[0], filters=filters)  # warm: parts load on first use
        for q in questions:
            t0 = time.perf_counter()
            retriever.search(q, filters=filters)
            timings[label].append((time.perf_counter() - t0) * 1000)

    recall = _dense_recall(index, embedder.embed(questions)) if backend == "local" else None
    result = {
        "backend": backend,
        "chunks": len(index),
        "full_s": full,
        "update_s": update,
        "update_chunks": update_report.chunks_embedded,
        "build_chunks": report.chunks_total,
        "p50": _percentiles(timings["unfiltered"])[0],
        "p95": _percentiles(timings["unfiltered"])[1],
        "fp50": _percentiles(timings["filtered"])[0],
        "fp95": _percentiles(timings["filtered"])[1],
        "recall": recall,  # None: the backend exposes no dense search of its own
        "disk_mb": disk_bytes(root) / 1e6,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    index.close()
    shutil.rmtree(root, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="chunks, comma-separated")
    parser.add_argument("--backends", default="local", help="local[,milvus]")
    parser.add_argument("--scratch", default="/tmp/qa-bench-scale", help="where indexes go")
    parser.add_argument(
        "--profile", action="store_true", help="print a profile of each 1%% update to stderr"
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    for backend in backends:
        settings_for(backend)  # an unknown backend fails here, before any work
    if args.one:
        print(json.dumps(run_one(backends[0], sizes[0], scratch, args.profile)))
        return
    print(
        "| backend | chunks | full build s | 1% update s | ratio | search p50/p95 ms "
        "| filtered p50/p95 ms | dense recall@10 | disk MB | peak MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for backend in backends:
        for size in sizes:
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    "--sizes",
                    str(size),
                    "--backends",
                    backend,
                    "--scratch",
                    str(scratch),
                    *(["--profile"] if args.profile else []),
                ],
                capture_output=True,
                text=True,
                env=os.environ,
            )
            if args.profile:
                sys.stderr.write(proc.stderr)
            if proc.returncode:
                sys.exit(f"error: {backend} at {size} failed:\n{proc.stderr[-2000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"| {r['backend']} | {r['chunks']:,} | {r['full_s']:.1f} | {r['update_s']:.2f} "
                f"| {r['update_s'] / r['full_s']:.1%} | {r['p50']:.1f} / {r['p95']:.1f} "
                f"| {r['fp50']:.1f} / {r['fp95']:.1f} "
                f"| {'n/a' if r['recall'] is None else format(r['recall'], '.3f')} "
                f"| {r['disk_mb']:,.0f} | {r['peak_mb']:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
