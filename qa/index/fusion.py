"""Hybrid candidates: the dense and BM25 lists of a question fused by weighted reciprocal-rank
fusion (Cormack et al. 2009), ``fused = w_dense / (rrf_k + rank_dense) + w_bm25 /
(rrf_k + rank_bm25)``, a missing rank adding nothing.

The local backend fuses here; Milvus fuses inside the engine (its RRF ranker is the same
formula) and uses :func:`rrf` only when the two weights differ, which its ranker cannot do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa.core.config import RetrievalSettings
from qa.core.types import Filters


@dataclass(frozen=True)
class Candidate:
    """One passage a question may retrieve, before time priors, floor and selection."""

    row: int  # the backend's chunk key
    fused: float  # the RRF score
    dense: float | None  # exact cosine of the question with the passage's vector
    bm25: float | None  # BM25 score, when the backend reports it


def rrf(
    dense: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    settings: RetrievalSettings,
) -> dict[int, list[Any]]:
    """row -> [fused, dense score or None, BM25 score or None], in first-seen order."""
    fused: dict[int, list[Any]] = {}
    for rank, (row, score) in enumerate(dense, 1):
        entry = fused.setdefault(row, [0.0, None, None])
        entry[1] = score
        entry[0] += settings.dense_weight / (settings.rrf_k + rank)
    for rank, (row, score) in enumerate(keyword, 1):
        entry = fused.setdefault(row, [0.0, None, None])
        entry[2] = score
        entry[0] += settings.bm25_weight / (settings.rrf_k + rank)
    return fused


def local_candidates(
    index: Any,
    query: str,
    vector: np.ndarray,
    filters: Filters | None,
    settings: RetrievalSettings,
) -> list[Candidate]:
    """Dense and BM25 lists of the local reader (FAISS + bm25s), fused here; every candidate
    gets its exact cosine, used by the relevance floor."""
    allowed = index.allowed(filters)
    if allowed is not None and not allowed.any():
        return []
    dense, keyword = [], []
    if settings.fusion != "bm25":
        dense = index.dense_search(vector, settings.candidates, allowed)
    if settings.fusion != "dense":
        keyword = index.bm25_search(query, settings.candidates, allowed)
    fused = rrf(dense, keyword, settings)
    missing = [row for row, entry in fused.items() if entry[1] is None]
    for row, cosine in zip(missing, index.cosine(vector, missing), strict=True):
        fused[row][1] = cosine
    return [Candidate(row, f, d, b) for row, (f, d, b) in fused.items()]
