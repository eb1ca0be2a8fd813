"""FAISS structures over the stored embedding vectors: build, save, load, search, describe.

The vectors themselves (L2-normalised float32, inner product = cosine) live in a ``.npy`` file
owned by the index module; this module only builds the search structure over them.  Every
index uses the inner-product metric and returns the caller's stable int64 ids.

Kinds (``choose_kind``):

* ``flat`` - exact search (``IndexFlatIP`` in an ``IndexIDMap``).  "auto" uses it up to
  ``FLAT_MAX`` = 10k vectors.  One query reads every vector, from memory once they outgrow
  the CPU's cache: on the 2-core test machine 0.4 ms at 5k vectors of 384 dims, 2.1 ms at
  10k, 6.7 ms at 37k (RealTime QA's quarter, where IVF answers in 1.5 ms at recall@50 0.98 on
  the real questions; ``bench/bench_ask.py``).
* ``ivf`` - inverted file (``IndexIVFFlat``, ~2*sqrt(n) lists, spherical k-means on a sample
  of 40 points per list, native ids).  "auto" uses it above ``FLAT_MAX``: on 2 cores it
  builds 1e6 vectors in under a minute and answers in ~1.5 ms at recall@10 ~0.98.
* ``hnsw`` - graph (``IndexHNSWFlat``, M=32, efConstruction=64) in an ``IndexIDMap``.  Only
  on request: in the benchmark it was slower to build (several minutes at 1e6 on 2 cores),
  larger and no faster to query than IVF at equal recall.

The search-time knob of the approximate kinds (``efSearch`` / ``nprobe``) is calibrated at
build time: the smallest value whose recall@10 against exact search reaches
``CALIBRATION_TARGET`` for 200 sampled corpus vectors pushed off the data (cosine 0.75 to their
source, like a question to its passage), times a safety factor.  Both knobs are part of the
FAISS file format, so the value travels with the saved index.  ``search`` passes them per call
(``SearchParameters``, scaled by sqrt(k/10) for larger k) without mutating the index, so
concurrent searches are safe.

Numbers and thresholds come from ``bench/bench_search.py``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np

KINDS = ("flat", "hnsw", "ivf")

# "auto": exact search up to FLAT_MAX vectors, IVF above (see the module docstring).
FLAT_MAX = 10_000

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)

IVF_LISTS_PER_SQRT_N = 2.0  # nlist ~= 2 * sqrt(n)
IVF_TRAIN_PER_LIST = 40  # k-means sample: 40 points per list (faiss wants >= 39)
IVF_TRAIN_ITER = 12
IVF_NPROBE_LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)

CALIBRATION_QUERIES = 200
CALIBRATION_K = 10
CALIBRATION_TARGET = 0.97
CALIBRATION_QUERY_COS = 0.75  # calibration queries: corpus vectors moved to this cosine
CALIBRATION_SAFETY = 1.25  # margin on the calibrated knob for queries unlike the sample

_SEED = 1234

# faiss ships stubs that miss parts of the SWIG API (SearchParametersHNSW, keyword arguments
# of the SearchParameters constructors, HNSW.nb_neighbors); go through an untyped alias there.
_faiss: Any = faiss


# ---------------------------------------------------------------------------- helpers


def _num_threads() -> int:
    """Threads for building: OMP_NUM_THREADS if set, else the CPUs this process may use."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, dim), got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _unwrap(index: faiss.Index) -> faiss.Index:
    """The index under an IndexIDMap/IndexIDMap2 wrapper, downcast to its concrete class."""
    if isinstance(index, faiss.IndexIDMap | faiss.IndexIDMap2):
        return faiss.downcast_index(index.index)
    return index


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / max(1, truth.size)


# ---------------------------------------------------------------------------- public API


def choose_kind(n: int, requested: str = "auto") -> str:
    """The index kind to build for ``n`` vectors: ``requested`` unless it is "auto".

    An empty corpus is always "flat" (there is nothing to train a quantizer or a graph on).
    """
    req = requested.strip().lower()
    if req != "auto" and req not in KINDS:
        raise ValueError(f"unknown index kind {requested!r}; expected auto, {', '.join(KINDS)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n == 0:
        return "flat"
    if req != "auto":
        return req
    return "flat" if n <= FLAT_MAX else "ivf"


def build(vectors: np.ndarray, ids: np.ndarray, kind: str = "auto") -> faiss.Index:
    """A searchable index over ``vectors`` (n, dim) labelled with int64 ``ids`` (n,)."""
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (n, dim), got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, dim = x.shape
    if dim == 0:
        raise ValueError("vectors must have at least one dimension")
    labels = np.asarray(ids)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"ids must be 1-D with one id per vector ({n}), got shape {labels.shape}")
    if n and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"ids must be integers, got dtype {labels.dtype}")
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    if n and (labels.min() < 0):
        raise ValueError("ids must be >= 0 (-1 marks a missing result)")
    if n and np.unique(labels).shape[0] != n:
        raise ValueError("ids must be unique")

    chosen = choose_kind(n, kind)
    faiss.omp_set_num_threads(_num_threads())
    if chosen == "flat":
        return _build_flat(x, labels)
    if chosen == "hnsw":
        return _build_hnsw(x, labels)
    return _build_ivf(x, labels)


def save(index: faiss.Index, path: Path) -> None:
    """Write ``index`` to ``path`` (plain write; atomic replacement is the caller's job)."""
    faiss.write_index(index, str(path))


def load(path: Path, mmap: bool = False) -> faiss.Index:
    """Read an index written by ``save``; ``mmap`` maps the vector/code arrays read-only."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no vector index at {p}")
    flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
    return faiss.read_index(str(p), flags)


def centroids(index: faiss.Index) -> faiss.Index:
    """The trained coarse quantizer of an IVF index (a small flat index of its centroids)."""
    inner = _unwrap(index)
    if not isinstance(inner, faiss.IndexIVF):
        raise ValueError("only an IVF index has centroids")
    return faiss.downcast_index(inner.quantizer)


def add_to_trained(
    quantizer: faiss.Index, nprobe: int, vectors: np.ndarray, ids: np.ndarray
) -> faiss.Index:
    """A new IVF index over ``vectors`` on trained centroids (``quantizer``), without training:
    searched beside the index they came from with the same nprobe, the two give the results of
    one IVF index holding both (the same lists are probed)."""
    quantizer = faiss.clone_index(quantizer)
    index = faiss.IndexIVFFlat(quantizer, quantizer.d, quantizer.ntotal, quantizer.metric_type)
    _faiss_any: Any = quantizer
    _faiss_any.this.disown()  # the IVF index owns (and frees) its copy of the centroids
    index.own_fields = True
    index.nprobe = nprobe
    x = _as_matrix(vectors, "vectors")
    if len(x):
        index.add_with_ids(x, np.ascontiguousarray(ids, dtype=np.int64))
    return index


def search(
    index: faiss.Index,
    queries: np.ndarray,
    k: int,
    allowed_ids: np.ndarray | None = None,
    excluded_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, ids) per query row, best first; ids -1 and score -inf where the
    index holds fewer than ``k`` vectors (or the approximate search found fewer). With
    ``allowed_ids`` only those ids are considered, with ``excluded_ids`` all but those (id
    selectors inside the search)."""
    q = _as_matrix(queries, "queries")
    if q.shape[1] != index.d:
        raise ValueError(
            f"query dimension {q.shape[1]} does not match the index dimension {index.d}; "
            "was the index built with a different embedding model?"
        )
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    nq = q.shape[0]
    if k == 0 or nq == 0 or index.ntotal == 0:
        scores = np.full((nq, k), -np.inf, dtype=np.float32)
        return scores, np.full((nq, k), -1, dtype=np.int64)

    kk = min(k, int(index.ntotal))
    params = _search_params(index, kk)
    selector = None
    if allowed_ids is not None:
        selector = _id_bitmap(allowed_ids)
    elif excluded_ids is not None and len(excluded_ids):
        batch = _faiss.IDSelectorBatch(np.ascontiguousarray(excluded_ids, dtype=np.int64))
        selector = _faiss.IDSelectorNot(batch)
        selector.referenced = batch  # keep the wrapped selector alive while searching
    if selector is not None:
        if params is None:
            params = _faiss.SearchParameters()
        params.sel = selector
    if params is None:
        scores, labels = index.search(q, kk)
    else:
        scores, labels = index.search(q, kk, params=params)
    if kk < k:
        scores = np.hstack([scores, np.full((nq, k - kk), -np.inf, dtype=np.float32)])
        labels = np.hstack([labels, np.full((nq, k - kk), -1, dtype=np.int64)])
    scores = np.where(labels < 0, np.float32(-np.inf), scores).astype(np.float32, copy=False)
    return scores, labels.astype(np.int64, copy=False)


def _id_bitmap(ids: np.ndarray) -> Any:
    """A FAISS selector of ``ids`` as a bitmap over id values: one bit test per vector
    searched, and built with numpy in microseconds, where a hash set of the ids (the
    ``IDSelectorBatch``) takes milliseconds to build for a filter that keeps most of an index
    (37k chunks, as-of filter: 13 -> 8 ms a search)."""
    ids = np.asarray(ids, dtype=np.int64)
    size = int(ids.max()) + 1 if ids.size else 1
    bits = np.zeros(size, dtype=bool)
    bits[ids] = True
    packed = np.packbits(bits, bitorder="little")
    # FAISS takes the bitmap's length in bytes: an id past it is not selected.
    selector = _faiss.IDSelectorBitmap(len(packed), _faiss.swig_ptr(packed))
    selector.referenced = packed  # the selector reads this buffer: keep it alive while searching
    return selector


def describe(index: faiss.Index) -> dict[str, Any]:
    """Kind, size and parameters, for ``qa status``."""
    inner = _unwrap(index)
    info: dict[str, Any] = {
        "kind": "unknown",
        "n": int(index.ntotal),
        "dim": int(index.d),
        "metric": "inner_product" if index.metric_type == faiss.METRIC_INNER_PRODUCT else "l2",
        "params": {},
    }
    if isinstance(inner, faiss.IndexHNSW):
        info["kind"] = "hnsw"
        hnsw: Any = inner.hnsw
        info["params"] = {
            "M": int(hnsw.nb_neighbors(1)),
            "efConstruction": int(hnsw.efConstruction),
            "efSearch": int(hnsw.efSearch),
        }
    elif isinstance(inner, faiss.IndexIVF):
        info["kind"] = "ivf"
        info["params"] = {"nlist": int(inner.nlist), "nprobe": int(inner.nprobe)}
    elif isinstance(inner, faiss.IndexFlat):
        info["kind"] = "flat"
    return info


# ---------------------------------------------------------------------------- builders


def _build_flat(x: np.ndarray, ids: np.ndarray) -> faiss.Index:
    index = faiss.IndexIDMap(faiss.IndexFlatIP(x.shape[1]))
    if len(x):
        index.add_with_ids(x, ids)
    return index


def _build_hnsw(x: np.ndarray, ids: np.ndarray) -> faiss.Index:
    inner = faiss.IndexHNSWFlat(x.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index = faiss.IndexIDMap(inner)
    index.add_with_ids(x, ids)
    ef = _calibrate(
        index,
        x,
        ids,
        HNSW_EF_LADDER,
        lambda v: _faiss.SearchParametersHNSW(efSearch=max(v, CALIBRATION_K)),
    )
    inner.hnsw.efSearch = min(HNSW_EF_LADDER[-1], math.ceil(ef * CALIBRATION_SAFETY))
    return index


def _ivf_nlist(n: int) -> int:
    nlist = round(IVF_LISTS_PER_SQRT_N * math.sqrt(n))
    return max(1, min(nlist, n // IVF_TRAIN_PER_LIST))


def _build_ivf(x: np.ndarray, ids: np.ndarray) -> faiss.Index:
    n, dim = x.shape
    nlist = _ivf_nlist(n)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = True  # centroids on the unit sphere, like the data
    index.cp.niter = IVF_TRAIN_ITER
    index.cp.seed = _SEED
    n_train = min(n, IVF_TRAIN_PER_LIST * nlist)
    index.cp.max_points_per_centroid = max(1, math.ceil(n_train / nlist))
    rng = np.random.default_rng(_SEED)
    sample = x if n_train >= n else x[np.sort(rng.choice(n, n_train, replace=False))]
    index.train(sample)
    index.add_with_ids(x, ids)
    ladder = (*[p for p in IVF_NPROBE_LADDER if p < nlist], nlist)
    nprobe = _calibrate(index, x, ids, ladder, lambda v: _faiss.SearchParametersIVF(nprobe=v))
    index.nprobe = min(nlist, math.ceil(nprobe * CALIBRATION_SAFETY))
    return index


def _calibrate(
    index: faiss.Index,
    x: np.ndarray,
    ids: np.ndarray,
    ladder: tuple[int, ...],
    make_params: Any,
) -> int:
    """Smallest knob value on ``ladder`` reaching CALIBRATION_TARGET recall@10 vs exact.

    Queries are sampled corpus vectors pushed off the data in a random direction (cosine
    CALIBRATION_QUERY_COS to their source), since real questions sit farther from the passages
    than passages sit from each other; corpus vectors themselves would be too easy.
    """
    n, dim = x.shape
    k = min(CALIBRATION_K, n)
    rng = np.random.default_rng(_SEED + 1)
    rows = rng.choice(n, min(CALIBRATION_QUERIES, n), replace=False)
    noise = rng.standard_normal((len(rows), dim)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    tan = math.sqrt(1.0 / CALIBRATION_QUERY_COS**2 - 1.0)
    q = x[rows] + tan * noise
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    _, truth_rows = faiss.knn(q, x, k, metric=faiss.METRIC_INNER_PRODUCT)
    truth = ids[truth_rows]
    for value in ladder:
        _, found = index.search(q, k, params=make_params(value))
        if _recall(found, truth) >= CALIBRATION_TARGET:
            return value
    return ladder[-1]


def _search_params(index: faiss.Index, k: int) -> faiss.SearchParameters | None:
    """Per-call knobs: the calibrated value (stored in the index), scaled up for k > 10."""
    inner = _unwrap(index)
    scale = max(1.0, math.sqrt(k / CALIBRATION_K))
    if isinstance(inner, faiss.IndexHNSW):
        ef = max(int(inner.hnsw.efSearch * scale), k)
        return _faiss.SearchParametersHNSW(efSearch=ef)
    if isinstance(inner, faiss.IndexIVF):
        nprobe = min(int(inner.nlist), max(1, math.ceil(inner.nprobe * scale)))
        return _faiss.SearchParametersIVF(nprobe=nprobe)
    return None
