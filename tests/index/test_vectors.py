"""qa.index.vectors: building, saving, loading and searching the FAISS structures."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from qa.index import vectors

DIM = 32


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, nq: int = 50, dim: int = DIM, seed: int = 0):
    """Normalised vectors around 40 centroids, arbitrary ids, and queries near data points."""
    rng = np.random.default_rng(seed)
    centroids = _unit(rng.standard_normal((40, dim)))
    x = _unit(centroids[rng.integers(0, 40, n)] + 0.15 * rng.standard_normal((n, dim)))
    ids = rng.permutation(n).astype(np.int64) * 10 + 5
    q = _unit(x[rng.choice(n, nq, replace=False)] + 0.1 * rng.standard_normal((nq, dim)))
    return x, ids, q


def exact(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int):
    sims = q @ x.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), ids[order]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


@pytest.fixture(scope="module")
def data():
    return clustered(3000)


@pytest.fixture(scope="module")
def built(data):
    """One index of each kind over ``data``, built once (HNSW takes about a second)."""
    x, ids, _ = data
    return {kind: vectors.build(x, ids, kind) for kind in vectors.KINDS}


# ---------------------------------------------------------------------------- choose_kind


def test_choose_kind_auto_thresholds() -> None:
    assert vectors.choose_kind(0) == "flat"
    assert vectors.choose_kind(1) == "flat"
    assert vectors.choose_kind(vectors.FLAT_MAX) == "flat"
    assert vectors.choose_kind(vectors.FLAT_MAX + 1) == "ivf"
    assert vectors.choose_kind(10_000_000) == "ivf"


def test_choose_kind_explicit_and_invalid() -> None:
    assert vectors.choose_kind(10, "hnsw") == "hnsw"
    assert vectors.choose_kind(10**7, "flat") == "flat"
    assert vectors.choose_kind(10, " IVF ") == "ivf"
    assert vectors.choose_kind(0, "ivf") == "flat"  # nothing to train on
    with pytest.raises(ValueError, match="unknown index kind"):
        vectors.choose_kind(10, "annoy")


# ---------------------------------------------------------------------------- search quality


def test_flat_equals_exact_search(data) -> None:
    x, ids, q = data
    index = vectors.build(x, ids, "flat")
    scores, labels = vectors.search(index, q, 10)
    want_scores, want_ids = exact(x, ids, q, 10)
    np.testing.assert_array_equal(labels, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert labels.dtype == np.int64 and scores.dtype == np.float32


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall(data, built, kind: str) -> None:
    x, ids, q = data
    index = built[kind]
    assert vectors.describe(index)["kind"] == kind
    _, labels = vectors.search(index, q, 10)
    _, truth = exact(x, ids, q, 10)
    assert recall(labels, truth) >= 0.9
    # k larger than the calibration depth still searches well
    _, labels50 = vectors.search(index, q, 50)
    assert recall(labels50, exact(x, ids, q, 50)[1]) >= 0.9


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_single_query_vector(data, kind: str) -> None:
    x, ids, _ = data
    index = vectors.build(x[:500], ids[:500], kind)
    scores, labels = vectors.search(index, x[7], 3)  # 1-D query is one row
    assert scores.shape == labels.shape == (1, 3)
    assert labels[0, 0] == ids[7]
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_preserves_ids_and_params(
    data, built, tmp_path: Path, kind: str, mmap: bool
) -> None:
    _, ids, q = data
    index = built[kind]
    before = vectors.search(index, q, 10)
    path = tmp_path / "vectors.faiss"
    vectors.save(index, path)
    loaded = vectors.load(path, mmap=mmap)
    after = vectors.search(loaded, q, 10)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_allclose(after[0], before[0], atol=1e-6)
    assert set(after[1].ravel().tolist()) <= set(ids.tolist())
    assert vectors.describe(loaded) == vectors.describe(index)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        vectors.load(tmp_path / "nope.faiss")


# ---------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("kind", ["auto", "flat", "hnsw", "ivf"])
def test_empty_index(tmp_path: Path, kind: str) -> None:
    index = vectors.build(np.zeros((0, DIM), np.float32), np.zeros(0, np.int64), kind)
    info = vectors.describe(index)
    assert info["n"] == 0 and info["dim"] == DIM and info["kind"] == "flat"
    scores, labels = vectors.search(index, np.ones((2, DIM), np.float32), 5)
    assert labels.shape == (2, 5) and (labels == -1).all()
    assert np.isneginf(scores).all()
    vectors.save(index, tmp_path / "e.faiss")
    assert vectors.load(tmp_path / "e.faiss").ntotal == 0


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_k_larger_than_n(kind: str) -> None:
    x, ids, q = clustered(6, nq=3)
    index = vectors.build(x, ids, kind)
    scores, labels = vectors.search(index, q, 10)
    assert labels.shape == scores.shape == (3, 10)
    for row, srow in zip(labels, scores, strict=True):
        assert sorted(row[:6].tolist()) == sorted(ids.tolist())
        assert (row[6:] == -1).all() and np.isneginf(srow[6:]).all()
        assert np.all(np.diff(srow[:6]) <= 1e-6)  # best first


def test_k_zero(data) -> None:
    x, ids, q = data
    scores, labels = vectors.search(vectors.build(x[:10], ids[:10], "flat"), q, 0)
    assert scores.shape == labels.shape == (len(q), 0)


def test_dim_mismatch_raises(data) -> None:
    x, ids, _ = data
    index = vectors.build(x[:100], ids[:100], "flat")
    with pytest.raises(ValueError, match=rf"query dimension {DIM + 1} .* index dimension {DIM}"):
        vectors.search(index, np.ones((1, DIM + 1), np.float32), 3)
    empty = vectors.build(np.zeros((0, DIM), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="dimension"):
        vectors.search(empty, np.ones(DIM + 1, np.float32), 3)


def test_build_validates_input(data) -> None:
    x, ids, _ = data
    with pytest.raises(ValueError, match="one id per vector"):
        vectors.build(x[:10], ids[:9])
    with pytest.raises(ValueError, match="unique"):
        vectors.build(x[:3], np.array([1, 1, 2]))
    with pytest.raises(ValueError, match="2-D"):
        vectors.build(x[0], ids[:1])
    with pytest.raises(ValueError, match="unknown index kind"):
        vectors.build(x[:10], ids[:10], "lsh")


def test_build_accepts_float64_and_int32_ids(data) -> None:
    x, ids, q = data
    index = vectors.build(x[:200].astype(np.float64), ids[:200].astype(np.int32), "flat")
    _, labels = vectors.search(index, q.astype(np.float64), 5)
    np.testing.assert_array_equal(labels, exact(x[:200], ids[:200], q, 5)[1])


def test_describe_reports_params(data, built) -> None:
    x, _, _ = data
    hnsw = vectors.describe(built["hnsw"])
    assert hnsw["metric"] == "inner_product"
    assert hnsw["params"]["M"] == vectors.HNSW_M
    assert hnsw["params"]["efSearch"] >= 10
    ivf = vectors.describe(built["ivf"])
    assert 1 <= ivf["params"]["nprobe"] <= ivf["params"]["nlist"]
    assert vectors.describe(built["flat"]) == {
        "kind": "flat",
        "n": len(x),
        "dim": DIM,
        "metric": "inner_product",
        "params": {},
    }


def test_all_kinds_use_inner_product(built) -> None:
    for index in built.values():
        assert index.metric_type == faiss.METRIC_INNER_PRODUCT
