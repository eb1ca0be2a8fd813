"""Immutable segments: the vectors, their FAISS structure and the BM25 postings of a set of
chunks, written once and shared between generations by hard links.

A generation is a list of segments plus the chunk rows it deleted from them (``deleted.npy``).
An ingest writes one small segment for its new chunks and links the others, so its cost
follows the change, not the corpus. Segments are merged when they pile up (``plan_merge``):

* the deltas alone into one delta, when there are more than ``MAX_SEGMENTS`` (cheap: they are
  small, and an IVF delta keeps the base's trained centroids);
* everything into one new base, when the deltas or the deleted rows outgrow ``REBUILD_SHARE``
  of the index, or when the index kind "auto" picks changes (exact -> IVF at FLAT_MAX): only
  then is an IVF trained again on the data as it now is.

Every IVF segment shares the base's quantizer and nprobe, so searching each segment and keeping
the best k gives the results of one IVF index over all the chunks with those centroids.

Segment folder::

    ids.npy       int64 chunk row ids, in segment order
    vectors.npy   float32 rows, L2-normalised
    dense.faiss   FAISS structure over them, labelled with the row ids
    centroids.faiss  an IVF segment's trained centroids (small), for deltas to share
    bm25/         term-frequency postings (qa.index.bm25.Postings)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.index import bm25, vectors

MAX_SEGMENTS = 8
REBUILD_SHARE = 0.25


@dataclass
class Segment:
    """One segment folder, its arrays memory-mapped on first use."""

    path: Path
    _ids: np.ndarray | None = None
    _vectors: np.ndarray | None = None
    _dense: Any = None
    _postings: bm25.Postings | None = None

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = np.load(self.path / "ids.npy")
        return self._ids

    @property
    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            self._vectors = np.load(self.path / "vectors.npy", mmap_mode="r")
        return self._vectors

    @property
    def dense(self) -> Any:
        if self._dense is None:
            self._dense = vectors.load(self.path / "dense.faiss")
        return self._dense

    def centroids(self) -> Any:
        """The IVF centroids (None for an exact or graph segment), without loading the lists."""
        path = self.path / "centroids.faiss"
        return vectors.load(path) if path.is_file() else None

    @property
    def postings(self) -> bm25.Postings:
        if self._postings is None:
            self._postings = bm25.Postings.load(self.path / "bm25")
        return self._postings


def write(
    folder: Path,
    rows: np.ndarray,
    x: np.ndarray,
    postings: bm25.Postings,
    kind: str,
    ivf: tuple[Any, int] | None = None,
) -> Any:
    """Write a segment; its vectors are added to trained IVF centroids when ``ivf`` gives
    them (with their nprobe), else a FAISS structure of ``kind`` is built. Returns it."""
    folder.mkdir()
    rows = np.asarray(rows, dtype=np.int64)
    np.save(folder / "ids.npy", rows)
    np.save(folder / "vectors.npy", np.asarray(x, dtype=np.float32))
    if ivf is not None:
        dense = vectors.add_to_trained(ivf[0], ivf[1], x, rows)
    else:
        dense = vectors.build(x, rows, kind)
    vectors.save(dense, folder / "dense.faiss")
    if vectors.describe(dense)["kind"] == "ivf":
        vectors.save(vectors.centroids(dense), folder / "centroids.faiss")
    bm25.save(postings, folder / "bm25")
    return dense


def link(source: Path, target: Path) -> None:
    """The same segment in another generation: hard links, no data copied."""
    target.mkdir()
    for path in source.rglob("*"):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir()
        else:
            os.link(path, dest)


def live_mask(segment: Segment, deleted: np.ndarray) -> np.ndarray:
    """Which of the segment's chunks are not deleted (``deleted`` sorted)."""
    ids = segment.ids
    if not len(deleted):
        return np.ones(len(ids), dtype=bool)
    where = np.searchsorted(deleted, ids).clip(max=len(deleted) - 1)
    return np.asarray(deleted[where] != ids)


def positions(masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per segment: the index position of each of its chunks (-1 for a deleted one); live
    chunks are numbered segment after segment."""
    out, offset = [], 0
    for mask in masks:
        where = np.full(len(mask), -1, dtype=np.int64)
        where[mask] = offset + np.arange(int(mask.sum()))
        offset += int(mask.sum())
        out.append(where)
    return out


@dataclass(frozen=True)
class Merge:
    """Which segments to merge into one (none: the new delta is just added)."""

    merge: tuple[int, ...]  # indexes into the generation's segment list
    retrain: bool  # a new base: its FAISS structure built (trained) from scratch


def plan_merge(sizes: Sequence[int], live: int, deleted: int, kind_changes: bool) -> Merge:
    """``sizes``: rows stored per segment, base first, the new delta last."""
    stored = sum(sizes)
    deltas = sum(sizes[1:])
    if len(sizes) > 1 and (
        kind_changes or deltas > REBUILD_SHARE * max(1, live) or deleted > REBUILD_SHARE * stored
    ):
        return Merge(tuple(range(len(sizes))), retrain=True)
    if len(sizes) > MAX_SEGMENTS:
        return Merge(tuple(range(1, len(sizes))), retrain=False)
    return Merge((), retrain=False)


class LiveVectors:
    """The live vectors of all segments as one read-only (n, dim) array by position, without
    copying them: rows are gathered from each segment's memory map when indexed."""

    def __init__(self, segments: Sequence[Segment], masks: Sequence[np.ndarray], dim: int) -> None:
        self._parts = [s.vectors for s in segments]
        counts = [int(m.sum()) for m in masks]
        self._segment = np.repeat(np.arange(len(segments), dtype=np.int32), counts)
        self._local = (
            np.concatenate([np.flatnonzero(m) for m in masks]) if masks else np.zeros(0, np.int64)
        )
        self.shape = (len(self._local), dim)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, positions: Any) -> np.ndarray:
        if isinstance(positions, slice):
            pos = np.arange(self.shape[0])[positions]
        else:
            pos = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        out = np.empty((len(pos), self.shape[1]), dtype=np.float32)
        seg, local = self._segment[pos], self._local[pos]
        # A handful of segments at most: a set, not np.unique, which imports numpy.ma (about
        # 25 ms of a cold `qa search`).
        for s in sorted(set(seg.tolist())):
            where = np.flatnonzero(seg == s)
            out[where] = self._parts[s][local[where]]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[slice(None)]
        return out if dtype is None else out.astype(dtype)
