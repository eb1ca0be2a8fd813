"""The MaxScore top k of the BM25 reader (qa/index/bm25_read.py) against its full pass: the same
scores at every rank, the same chunks up to the order of equal scores, with deleted chunks,
filters and repeated or unknown query words; and document frequencies without a postings walk."""

from __future__ import annotations

import numpy as np
import pytest

from qa.index.bm25 import Postings
from qa.index.bm25_read import BM25Scores


def _segments(rng: np.random.Generator) -> tuple[list[Postings], list[np.ndarray]]:
    """Two segments of Zipf-worded chunks (a few words in most chunks, most in few), some of
    their chunks deleted."""
    vocab = [f"w{i}" for i in range(3000)]
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    segments, masks = [], []
    for size in (4000, 1500):
        lengths = rng.integers(20, 120, size)
        tokens = [[vocab[w] for w in rng.choice(len(vocab), n, p=weights)] for n in lengths]
        segments.append(Postings.from_tokens(tokens))
        masks.append(rng.random(size) > 0.05)
    where, offset = [], 0
    for mask in masks:
        w = np.full(len(mask), -1, dtype=np.int64)
        w[mask] = offset + np.arange(int(mask.sum()))
        offset += int(mask.sum())
        where.append(w)
    return segments, where


@pytest.fixture(scope="module")
def twins() -> tuple[BM25Scores, BM25Scores, list[list[str]]]:
    rng = np.random.default_rng(5)
    segments, where = _segments(rng)
    pruned = BM25Scores(segments, where, prune_min_docs=0)
    full = BM25Scores(segments, where, prune_min_docs=10**12)
    weights = 1.0 / np.arange(1, 3001)
    picks = [rng.choice(3000, rng.integers(2, 10), p=weights / weights.sum()) for _ in range(150)]
    queries = [[f"w{i}" for i in pick] for pick in picks]  # words as passages hold them
    queries += [["w0", "w0", "w1", "w2500"], ["w1", "nope", "w2999"], ["w0"], ["nope"], []]
    return pruned, full, queries


@pytest.mark.parametrize("cost", [None, 100.0], ids=["default-cost", "pruning-most"])
def test_pruned_top_k_has_the_full_pass_scores_and_chunks(
    twins: tuple[BM25Scores, BM25Scores, list[list[str]]],
    cost: float | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the shipped cost rule, and with one that lets most questions prune (this corpus
    is small, so the shipped rule prunes fewer of them)."""
    if cost is not None:
        monkeypatch.setattr("qa.index.bm25_read.PRUNE_COST", cost)
    pruned, full, queries = twins
    allowed = np.random.default_rng(9).random(full.num_docs) < 0.3
    taken = 0
    for i, tokens in enumerate(queries):
        mask = allowed if i % 3 == 0 else None
        taken += pruned._top_k_pruned(tokens, 20, mask) is not None
        got_pos, got = pruned.top_k(tokens, 20, mask)
        want_pos, want = full.top_k(tokens, 20, mask)
        np.testing.assert_array_equal(got, want)  # the same bits at every rank
        for score in np.unique(want):  # the same chunks, equal scores in any order
            assert set(got_pos[got == score]) <= set(
                np.flatnonzero(full_scores(full, tokens, mask) == score)
            )
        assert set(got_pos[got > want[-1]]) == set(want_pos[want > want[-1]])
    assert taken > (len(queries) // 2 if cost else len(queries) // 5)  # the pruned path ran


def full_scores(index: BM25Scores, tokens: list[str], mask: np.ndarray | None) -> np.ndarray:
    scores = index.scores(tokens)
    return scores if mask is None else np.where(mask, scores, 0).astype(scores.dtype)


def test_document_frequency_counts_live_chunks_without_a_walk(
    twins: tuple[BM25Scores, BM25Scores, list[list[str]]],
) -> None:
    pruned, _, _ = twins
    words = ["w0", "w1", "w17", "w400", "w2999", "nope"]
    assert pruned.document_frequency(words) == {w: len(pruned._postings(w)[0]) for w in words}
    assert pruned.document_frequency(["w0"])["w0"] > 0.9 * pruned.num_docs > 0
