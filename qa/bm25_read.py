"""BM25 at question time, read straight from the files bm25s writes, without importing bm25s.

Importing bm25s loads scipy.sparse, tqdm and asyncio: about a third of a cold `qa ask` before
any work is done. A saved bm25s index is plain data (the BM25 score of every term in every
document, as a compressed sparse column matrix, plus the vocabulary), so scoring a query is a
few numpy operations. They are the same ones bm25s runs (``np.add.at`` over each query term's
column, ``argpartition`` then a stable-order sort for the top k), so the scores and the order
of the results, ties included, are those of ``bm25s.BM25.retrieve`` (tests/test_bm25_read.py).
Writing the index stays with bm25s (qa/index.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class BM25Scores:
    """A bm25s index folder, memory-mapped: scores[term] is data[indptr[t]:indptr[t+1]] for
    the documents indices[indptr[t]:indptr[t+1]]."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    vocab: dict[str, int]
    num_docs: int
    dtype: np.dtype
    nonoccurrence: np.ndarray | None  # bm25l / bm25+ only: a score every document gets

    @classmethod
    def load(cls, folder: Path) -> BM25Scores:
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        vocab = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        nonoccurrence = folder / "nonoccurrence_array.index.npy"
        return cls(
            data=np.load(folder / "data.csc.index.npy", mmap_mode="r"),
            indices=np.load(folder / "indices.csc.index.npy", mmap_mode="r"),
            indptr=np.load(folder / "indptr.csc.index.npy", mmap_mode="r"),
            vocab=vocab,
            num_docs=int(params["num_docs"]),
            dtype=np.dtype(params.get("dtype", "float32")),
            nonoccurrence=np.load(nonoccurrence) if nonoccurrence.is_file() else None,
        )

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """The BM25 score of every document for the query ``tokens`` (unknown ones ignored)."""
        ids = np.asarray([self.vocab[t] for t in tokens if t in self.vocab], dtype=np.int64)
        scores = np.zeros(self.num_docs, dtype=self.dtype)
        for term in ids:
            start, end = int(self.indptr[term]), int(self.indptr[term + 1])
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        if self.nonoccurrence is not None:
            scores += self.nonoccurrence[ids].sum()
        return scores

    def document_frequency(self, tokens: Iterable[str]) -> dict[str, int]:
        """How many documents hold each token (0 for unknown ones)."""
        out = {}
        for token in tokens:
            term = self.vocab.get(token)
            out[token] = 0 if term is None else int(self.indptr[term + 1] - self.indptr[term])
        return out

    def top_k(
        self, tokens: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of the ``k`` best documents, best first (k <= num_docs); with
        ``allowed`` (a boolean mask) the others score 0."""
        scores = self.scores(tokens)
        if allowed is not None:
            scores = np.where(allowed, scores, 0).astype(scores.dtype, copy=False)
        part = np.argpartition(scores, -k)[-k:]
        part_scores = np.take(scores, part)
        order = np.flip(np.argsort(part_scores))
        return part[order], part_scores[order]
