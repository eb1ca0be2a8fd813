"""Benchmark the vector index kinds of ``qa.index.vectors`` on synthetic, clustered embeddings.

    .venv/bin/python bench/bench_search.py                  # 1e4, 1e5, 1e6 (~10-15 min, 2 cores)
    .venv/bin/python bench/bench_search.py --quick          # 1e4 and 1e5 only
    .venv/bin/python bench/bench_search.py --sizes 2e5 --kinds flat,hnsw,ivf,ivfsq8

Data: unit vectors from a two-level Gaussian mixture (topics -> a few thousand sub-clusters ->
points with per-dimension noise), with a shared mean direction and Zipf-like cluster sizes,
so that cosine statistics resemble sentence embeddings (same-cluster cos ~0.5, random pairs
~0.1-0.2) rather than uniform noise.  Queries are corpus points plus fresh noise (cos ~0.8 to
their source), i.e. "another member of the same cluster".

Reported per (size, kind): build seconds, serialized index size in MB, p50/p95 latency of one
query at a time through ``qa.index.vectors.search`` (warm, k=10, as the CLI does), recall@10 and
recall@50 against exact search.  ``ivfsq8`` (IVF with 8-bit scalar-quantized codes) is a
benchmark-only variant, measured to decide whether ``ivf`` should quantize.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.evaluation import figures
from qa.index import vectors

N_TOPICS = 64
N_CLUSTERS = 3000
CLUSTER_SPREAD = 0.9  # sub-cluster centroid = topic + this * random direction
POINT_NOISE = 0.05  # per-dimension std of point noise (cos to own centroid ~0.7 at 384 dims)
QUERY_NOISE = 0.05  # per-dimension std of query noise around a corpus point
MEAN_WEIGHT = 0.35  # shared direction: real embeddings are anisotropic


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return _normalise(rng.standard_normal((n, dim), dtype=np.float32))


def make_corpus(
    n: int, nq: int, dim: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(corpus vectors, ids, queries); all rows L2-normalised float32."""
    rng = np.random.default_rng(seed)
    mean = _unit(rng, 1, dim)[0]
    topics = _unit(rng, N_TOPICS, dim)
    parent = rng.integers(0, N_TOPICS, N_CLUSTERS)
    centroids = _normalise(
        topics[parent] + CLUSTER_SPREAD * _unit(rng, N_CLUSTERS, dim) + MEAN_WEIGHT * mean
    )
    weights = 1.0 / np.arange(1, N_CLUSTERS + 1) ** 0.8  # Zipf-like cluster sizes
    weights /= weights.sum()
    assign = rng.choice(N_CLUSTERS, n, p=weights)
    x = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        noise = rng.standard_normal((hi - lo, dim), dtype=np.float32)
        noise *= POINT_NOISE
        noise += centroids[assign[lo:hi]]
        x[lo:hi] = _normalise(noise)
    ids = (np.arange(n, dtype=np.int64) * 7 + 3)[rng.permutation(n)]  # arbitrary, stable ids
    src = rng.choice(n, nq, replace=False)
    queries = x[src] + QUERY_NOISE * rng.standard_normal((nq, dim), dtype=np.float32)
    return x, ids, _normalise(queries.astype(np.float32))


def build_ivfsq8(x: np.ndarray, ids: np.ndarray) -> faiss.Index:
    """IVF with 8-bit scalar quantizer codes (4x smaller than IVF-Flat), same recipe as ivf."""
    n, dim = x.shape
    nlist = vectors._ivf_nlist(n)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.spherical = True
    index.cp.niter = vectors.IVF_TRAIN_ITER
    n_train = min(n, vectors.IVF_TRAIN_PER_LIST * nlist)
    index.cp.max_points_per_centroid = max(1, math.ceil(n_train / nlist))
    rng = np.random.default_rng(0)
    sample = x if n_train >= n else x[np.sort(rng.choice(n, n_train, replace=False))]
    index.train(sample)
    index.add_with_ids(x, ids)
    ladder = (*[p for p in vectors.IVF_NPROBE_LADDER if p < nlist], nlist)
    nprobe = vectors._calibrate(
        index, x, ids, ladder, lambda v: faiss.SearchParametersIVF(nprobe=v)
    )
    index.nprobe = min(nlist, math.ceil(nprobe * vectors.CALIBRATION_SAFETY))
    return index


@dataclass
class Row:
    size: int
    kind: str
    build_s: float
    mem_mb: float
    p50_ms: float
    p95_ms: float
    recall10: float
    recall50: float
    params: str


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def measure(kind: str, x: np.ndarray, ids: np.ndarray, q: np.ndarray, truth: np.ndarray) -> Row:
    t0 = time.perf_counter()
    index = build_ivfsq8(x, ids) if kind == "ivfsq8" else vectors.build(x, ids, kind)
    build_s = time.perf_counter() - t0
    mem_mb = faiss.serialize_index(index).nbytes / 1e6
    for i in range(min(10, len(q))):  # warm-up
        vectors.search(index, q[i], 10)
    times = []
    found10 = np.empty((len(q), 10), dtype=np.int64)
    for i in range(len(q)):
        t = time.perf_counter()
        _, labels = vectors.search(index, q[i], 10)
        times.append(time.perf_counter() - t)
        found10[i] = labels[0]
    _, found50 = vectors.search(index, q, 50)
    info = vectors.describe(index)
    params = ",".join(f"{k}={v}" for k, v in info["params"].items())
    ms = np.asarray(times) * 1000
    return Row(
        size=len(x),
        kind=kind if kind != "ivfsq8" else "ivfsq8",
        build_s=build_s,
        mem_mb=mem_mb,
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        recall10=recall(found10, truth[:, :10]),
        recall50=recall(found50, truth),
        params=params,
    )


def _fmt(row: Row) -> str:
    return (
        f"{row.size:>9,} {row.kind:<8} {row.build_s:>8.1f} {row.mem_mb:>9.1f} "
        f"{row.p50_ms:>8.2f} {row.p95_ms:>8.2f} {row.recall10:>7.3f} {row.recall50:>7.3f}  "
        f"{row.params}"
    )


HEADER = (
    f"{'size':>9} {'kind':<8} {'build s':>8} {'index MB':>9} "
    f"{'p50 ms':>8} {'p95 ms':>8} {'r@10':>7} {'r@50':>7}  params"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1e4,1e5,1e6", help="comma-separated corpus sizes")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--kinds", default="auto,flat,hnsw,ivf,ivfsq8")
    ap.add_argument("--quick", action="store_true", help="sizes 1e4,1e5 only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--hnsw-max",
        type=float,
        default=3e5,
        help="skip hnsw above this size (its 1e6 build takes minutes on 2 cores)",
    )
    ap.add_argument("--save-figures", metavar="FILE",
                    help="also write the table as JSON for the docs (docs/figures/NAME.json)")
    args = ap.parse_args(argv)

    sizes = [10_000, 100_000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in kinds:
        if k != "ivfsq8":
            vectors.choose_kind(1, k)  # validates the name
    print(
        f"dim={args.dim} queries={args.queries} threads={vectors._num_threads()} "
        f"faiss={faiss.__version__}",
        flush=True,
    )
    print(HEADER, flush=True)
    rows: list[Row] = []
    auto_choice: dict[int, str] = {}
    t_all = time.perf_counter()
    for n in sizes:
        x, ids, q = make_corpus(n, args.queries, args.dim, args.seed)
        _, truth_rows = faiss.knn(q, x, 50, metric=faiss.METRIC_INNER_PRODUCT)
        truth = ids[truth_rows]
        done: dict[str, Row] = {}
        auto_choice[n] = vectors.choose_kind(n, "auto")
        for kind in kinds:
            real = auto_choice[n] if kind == "auto" else kind
            if real == "hnsw" and n > args.hnsw_max:
                print(f"{n:>9,} hnsw     skipped (> --hnsw-max {args.hnsw_max:g})", flush=True)
                continue
            if real in done:  # "auto" resolved to a kind already measured at this size
                print(f"{n:>9,} auto     -> {real} (see above)", flush=True)
                continue
            row = measure(real, x, ids, q, truth)
            if kind == "auto":
                row.kind = f"auto:{real}"
            done[real] = row
            rows.append(row)
            print(_fmt(row), flush=True)
        del x
    print()
    for n, k in auto_choice.items():
        print(f'auto at {n:,}: "{k}"')
    print(f"total {time.perf_counter() - t_all:.0f} s")
    if args.save_figures:
        exact = {r.size: f"{r.p50_ms:.2f} ms" for r in rows if r.kind in ("flat", "auto:flat")}
        columns = ["vectors", "index", "build", "size", "p50 / p95", "recall@10 vs exact",
                   "exact search p50"]
        table = [[f"{r.size:,}", f"{r.kind} {r.params}".strip(), f"{r.build_s:.1f} s",
                  f"{r.mem_mb:,.0f} MB", f"{r.p50_ms:.2f} / {r.p95_ms:.2f} ms",
                  f"{r.recall10:.3f}", exact.get(r.size, "–")] for r in rows]
        note = f"Clustered synthetic {args.dim}-d vectors, one warm query at a time, k = 10."
        figures.save(figures.figure("search at scale", columns, table, note), args.save_figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
