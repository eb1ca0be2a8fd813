"""BM25 at question time, over the term-frequency postings of every segment of a generation,
without importing bm25s.

Importing bm25s loads scipy.sparse, tqdm and asyncio: about a third of a cold `qa ask` before
any work is done. The postings (qa.index.bm25.Postings) hold raw counts, so scoring takes the
statistics of the whole generation: N and the average length over live chunks, and each query
term's document frequency over live chunks of all segments (a deleted chunk counts nowhere).
The arithmetic is bm25s's "lucene" variant, step by step in the same operations and precision
(idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf / (k1 * (1 - b + b * len / avglen) + tf),
query terms added up in order, ``argpartition`` then a stable sort for the top k), so scores and
order are those of ``bm25s.BM25`` indexing the same chunks (tests/index/test_bm25_read.py).

Above :data:`PRUNE_MIN_DOCS` chunks the top k skips most of the postings of common terms
(MaxScore, Turtle and Flood 1995): a chunk's part from one term is below the term's idf (times
its repeats in the query), so once the chunks holding one of the rarer terms include k whose
whole scores beat the sum of the other terms' bounds, no chunk outside them can enter the top
k; the common terms are then looked up for those chunks only. Scores are the same bits as the
full pass; only the order of equal scores may differ (tests/index/test_bm25_prune.py).
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
PRUNE_MIN_DOCS = 50_000  # below, scoring every posting takes a few milliseconds
# The full pass reads every posting of the question's terms (a few steps each); the pruned one
# searches each term's postings for every chunk gathered (about log2(df) steps each): it stops
# and runs the full pass once that search would cost PRUNE_COST times the full pass's reads.
PRUNE_COST = 4.0


@dataclass
class BM25Scores:
    """BM25 over segments: ``positions[s][i]`` is where chunk ``i`` of segment ``s`` sits in
    the index (-1: deleted in this generation)."""

    segments: list[Postings]
    positions: list[np.ndarray]
    num_docs: int = 0
    avg_length: float = 1.0
    prune_min_docs: int = PRUNE_MIN_DOCS
    _vocab: list[dict[str, int]] = field(default_factory=list)
    _deleted: list[np.ndarray] = field(default_factory=list)  # per segment, local ids
    _local: list[np.ndarray] = field(default_factory=list)  # per segment, local id by position
    _offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))

    def __post_init__(self) -> None:
        self._vocab = [{t: i for i, t in enumerate(p.terms)} for p in self.segments]
        self._deleted = [np.flatnonzero(where < 0) for where in self.positions]
        self._local = [np.flatnonzero(where >= 0) for where in self.positions]
        self._offsets = np.cumsum([0] + [len(x) for x in self._local], dtype=np.int64)
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
        """How many live chunks hold each token (0 for unknown ones), from the posting
        lengths less the deleted chunks among them (not a walk of the postings)."""
        return {token: self._live_df(token) for token in tokens}

    def _live_df(self, term: str) -> int:
        df = 0
        for postings, vocab, deleted in zip(self.segments, self._vocab, self._deleted, strict=True):
            t = vocab.get(term)
            if t is None:
                continue
            start, end = int(postings.indptr[t]), int(postings.indptr[t + 1])
            df += end - start
            if deleted.size:
                _, held = _find(np.asarray(postings.docs[start:end]), deleted)
                df -= int(np.count_nonzero(held))
        return df

    def _idf(self, df: int) -> np.float32:
        return np.float32(math.log(1 + (self.num_docs - df + 0.5) / (df + 0.5)))

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """The BM25 score of every chunk for the query ``tokens`` (unknown ones ignored)."""
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for term in tokens:
            pos, tf, lengths = self._postings(term)
            df = len(pos)
            if not df:
                continue
            idf = self._idf(df)
            # As bm25s: the length norm and term part in float64, each score rounded once.
            norm = K1 * ((1 - B) + B * lengths / self.avg_length)
            scores[pos] += (idf * (tf / (norm + tf))).astype(np.float32)
        return scores

    def top_k(
        self, tokens: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of the ``k`` best chunks, best first (k <= num_docs); with
        ``allowed`` (a boolean mask) the others score 0."""
        if self.num_docs >= self.prune_min_docs:
            found = self._top_k_pruned(tokens, k, allowed)
            if found is not None:
                return found
        scores = self.scores(tokens)
        if allowed is not None:
            scores = np.where(allowed, scores, 0).astype(scores.dtype, copy=False)
        part = np.argpartition(scores, -k)[-k:]
        part_scores = np.take(scores, part)
        order = np.flip(np.argsort(part_scores))
        return part[order], part_scores[order]

    def _top_k_pruned(
        self, tokens: Sequence[str], k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The top k by MaxScore, or None where it would not save work (then the full pass
        runs): rarer terms' chunks are gathered until the k-th best of their whole scores
        beats the bound of the terms left."""
        df = {t: self._live_df(t) for t in dict.fromkeys(tokens)}
        terms = sorted((t for t in df if df[t]), key=lambda t: df[t])
        repeats = {t: sum(1 for u in tokens if u == t) for t in terms}
        bounds = [float(self._idf(df[t])) * repeats[t] for t in terms]
        chosen = np.zeros(0, np.int64)  # positions gathered so far, and their whole scores
        scores = np.zeros(0, np.float32)
        seen = np.zeros(self.num_docs, dtype=bool) if allowed is None else ~allowed
        reads = sum(df.get(t, 0) for t in tokens)  # the full pass's work
        steps = sum(math.log2(df[t] + 1) for t in tokens if df.get(t))  # per chunk gathered
        most = PRUNE_COST * reads / max(steps, 1.0)  # chunks worth gathering at most
        for j, term in enumerate(terms[:-1]):  # with every term gathered, nothing is skipped
            if allowed is None and df[term] > most:
                return None  # its chunks alone are too many: no walk before the full pass
            positions = self._postings(term)[0]
            new = positions[~seen[positions]]
            if chosen.size + new.size > most:
                return None
            seen[new] = True
            chosen = np.concatenate([chosen, new])
            scores = np.concatenate([scores, self._scores_of(tokens, new, df)])
            if chosen.size < k:
                continue
            kth = np.partition(scores, -k)[-k]
            # 1e-5: a float32 sum may round a hair above the exact sum of its parts.
            if sum(bounds[j + 1 :]) * (1 + 1e-5) < kth:
                best = np.lexsort((chosen, -scores))[:k]  # equal scores: lower position first
                return chosen[best], scores[best]
        return None

    def _scores_of(
        self, tokens: Sequence[str], chosen: np.ndarray, df: dict[str, int]
    ) -> np.ndarray:
        """The whole scores of the chunks at ``chosen`` (ascending positions): each term's
        postings searched for them, the parts added in query order as :meth:`scores` does."""
        parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        out = np.zeros(len(chosen), dtype=np.float32)
        for term in tokens:
            if term not in parts:
                parts[term] = self._parts(term, chosen, df[term])
            where, part = parts[term]
            out[where] += part
        return out

    def _parts(self, term: str, chosen: np.ndarray, df: int) -> tuple[np.ndarray, np.ndarray]:
        """(indexes into ``chosen``, score parts) of the chosen chunks holding ``term``."""
        if not df:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        idf = self._idf(df)
        found, tfs, lengths = [], [], []
        bounds = np.searchsorted(chosen, self._offsets)
        for s, (postings, vocab) in enumerate(zip(self.segments, self._vocab, strict=True)):
            t = vocab.get(term)
            lo, hi = int(bounds[s]), int(bounds[s + 1])
            if t is None or lo == hi:
                continue
            local = self._local[s][chosen[lo:hi] - self._offsets[s]]
            start, end = int(postings.indptr[t]), int(postings.indptr[t + 1])
            at, hit = _find(np.asarray(postings.docs[start:end]), local)
            found.append(lo + np.flatnonzero(hit))
            tfs.append(np.asarray(postings.tf[start:end])[at[hit]])
            lengths.append(postings.lengths[local[hit]])
        if not found:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        tf, length = np.concatenate(tfs), np.concatenate(lengths)
        norm = K1 * ((1 - B) + B * length / self.avg_length)  # as in scores(), bit for bit
        return np.concatenate(found), (idf * (tf / (norm + tf))).astype(np.float32)


def _find(docs: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``ids`` would sit in the sorted posting ``docs`` (clipped to its last
    entry), and whether it is there."""
    if not len(docs):
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    at = np.minimum(np.searchsorted(docs, ids), len(docs) - 1)
    return at, docs[at] == ids
