"""BM25 at question time, over the term-frequency postings of every segment of a generation,
without importing bm25s.

Importing bm25s loads scipy.sparse, tqdm and asyncio: about a third of a cold `qa ask` before
any work is done. The postings (qa.index.bm25.Postings) hold raw counts, so scoring takes the
statistics of the whole generation: N and the average length over live chunks, and each query
term's document frequency over live chunks of all segments (a deleted chunk counts nowhere).
The arithmetic is bm25s's "lucene" variant, step by step in the same operations and precision
(idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf / (k1 * (1 - b + b * len / avglen) + tf),
query terms added up in order, ``argpartition`` then a stable sort for the top k), so scores and
order are those of ``bm25s.BM25`` indexing the same chunks (tests/test_bm25_read.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from qa.index.bm25 import Postings

K1 = 1.5  # bm25s defaults
B = 0.75


@dataclass
class BM25Scores:
    """BM25 over segments: ``positions[s][i]`` is where chunk ``i`` of segment ``s`` sits in
    the index (-1: deleted in this generation)."""

    segments: list[Postings]
    positions: list[np.ndarray]
    num_docs: int = 0
    avg_length: float = 1.0
    _vocab: list[dict[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._vocab = [{t: i for i, t in enumerate(p.terms)} for p in self.segments]
        live = [p.lengths[pos >= 0] for p, pos in zip(self.segments, self.positions, strict=True)]
        self.num_docs = sum(len(x) for x in live)
        total = sum(int(x.sum(dtype=np.int64)) for x in live)
        self.avg_length = total / self.num_docs if self.num_docs else 1.0

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(positions, term counts, lengths) of the live chunks holding ``term``."""
        pos, tf, lengths = [], [], []
        for postings, vocab, where in zip(self.segments, self._vocab, self.positions, strict=True):
            t = vocab.get(term)
            if t is None:
                continue
            start, end = int(postings.indptr[t]), int(postings.indptr[t + 1])
            local = np.asarray(postings.docs[start:end])
            p = where[local]
            live = p >= 0
            pos.append(p[live])
            tf.append(np.asarray(postings.tf[start:end])[live])
            lengths.append(postings.lengths[local[live]])
        if not pos:
            empty = np.zeros(0, np.int64)
            return empty, np.zeros(0, np.float32), empty
        return np.concatenate(pos), np.concatenate(tf), np.concatenate(lengths)

    def document_frequency(self, tokens: Iterable[str]) -> dict[str, int]:
        """How many live chunks hold each token (0 for unknown ones)."""
        return {token: len(self._postings(token)[0]) for token in tokens}

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """The BM25 score of every chunk for the query ``tokens`` (unknown ones ignored)."""
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for term in tokens:
            pos, tf, lengths = self._postings(term)
            df = len(pos)
            if not df:
                continue
            idf = np.float32(math.log(1 + (self.num_docs - df + 0.5) / (df + 0.5)))
            # As bm25s: the length norm and term part in float64, each score rounded once.
            norm = K1 * ((1 - B) + B * lengths / self.avg_length)
            scores[pos] += (idf * (tf / (norm + tf))).astype(np.float32)
        return scores

    def top_k(
        self, tokens: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of the ``k`` best chunks, best first (k <= num_docs); with
        ``allowed`` (a boolean mask) the others score 0."""
        scores = self.scores(tokens)
        if allowed is not None:
            scores = np.where(allowed, scores, 0).astype(scores.dtype, copy=False)
        part = np.argpartition(scores, -k)[-k:]
        part_scores = np.take(scores, part)
        order = np.flip(np.argsort(part_scores))
        return part[order], part_scores[order]
