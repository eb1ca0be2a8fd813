"""Which chunks of a local index a question's filters let through (as-of date, date window,
sources), as a boolean mask over the index's positions: FAISS selects ids and BM25 masks scores
with it, so filtering happens inside the search."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date
from typing import Protocol

import numpy as np

from qa.core.types import Filters
from qa.index.chunk_store import ReadConnection


class _Reader(Protocol):
    """What the masks read of the index: its chunk store and its positions' chunk ids."""

    @property
    def db(self) -> ReadConnection: ...

    @property
    def ids(self) -> np.ndarray: ...

    def __len__(self) -> int: ...


def day_number(published: str | date) -> int:
    """ "2024-01-05" (or that date) -> 20240105; 0 for an undated or unparseable article."""
    if isinstance(published, date):
        return published.year * 10000 + published.month * 100 + published.day
    digits = published[:10].replace("-", "")
    return int(digits) if len(digits) == 8 and digits.isdigit() else 0


class FilterMasks:
    """The per-position dates and sources of one index, read once when a filter first needs
    them, and the masks of recent filters (a server asks the same few many times)."""

    def __init__(self) -> None:
        # The index is passed to each call, not kept: a reference back to it would make a
        # cycle, and an index freed late keeps its generation pinned against the collector.
        self._lock = threading.Lock()
        self._days: np.ndarray | None = None  # per position: YYYYMMDD published, 0 undated
        self._sources: np.ndarray | None = None  # per position: code of the lower-cased source
        self._source_codes: dict[str, int] = {}
        self._filter_masks: dict[Filters, np.ndarray | None] = {}

    def _metadata(self, index: _Reader) -> tuple[np.ndarray, np.ndarray]:
        """Publication day and source of every position, read once from the chunk store when a
        filter needs them: the mask is computed on these arrays, not on fetched rows."""
        with self._lock:
            if self._days is None or self._sources is None:
                rows = index.db.execute(
                    "SELECT c.row, d.published, lower(trim(coalesce(d.source, ''))) "
                    "FROM chunks c JOIN docs d ON d.id = c.doc_id ORDER BY c.row"
                ).fetchall()
                codes: dict[str, int] = {}
                day_of: dict[str, int] = {}  # few distinct dates: parse each once
                by_row = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                days = np.fromiter(
                    (day_of.setdefault(r[1], day_number(r[1])) for r in rows), np.int32, len(rows)
                )
                sources = np.fromiter(
                    (codes.setdefault(r[2], len(codes)) for r in rows), np.int32, len(rows)
                )
                # Positions follow ids.npy, not row order.
                order = np.searchsorted(by_row, np.asarray(index.ids))
                self._days, self._sources = days[order], sources[order]
                self._source_codes = codes
            return self._days, self._sources

    def published_days(self, index: _Reader, chunk_rows: Sequence[int]) -> list[int]:
        """YYYYMMDD publication day of each chunk's article (0 when undated): a lookup of these
        rows only, so the recency prior never loads the whole store's dates."""
        if not chunk_rows:
            return []
        marks = ",".join("?" * len(chunk_rows))
        found = dict(
            index.db.execute(
                "SELECT c.row, d.published FROM chunks c JOIN docs d ON d.id = c.doc_id "
                f"WHERE c.row IN ({marks})",
                list(chunk_rows),
            ).fetchall()
        )
        return [day_number(found.get(r, "")) for r in chunk_rows]

    def _newest_day(self, index: _Reader) -> int:
        """The latest publication day in the index (0 when nothing is dated)."""
        (newest,) = index.db.execute("SELECT max(published) FROM docs").fetchone()
        return day_number(newest or "")

    def allowed(self, index: _Reader, filters: Filters | None) -> np.ndarray | None:
        """Which positions ``filters`` let through, as a boolean mask; None when all pass (the
        common case costs nothing at search time)."""
        if filters is None or len(index) == 0:
            return None
        with self._lock:
            if filters in self._filter_masks:
                return self._filter_masks[filters]
        only_as_of = not (filters.since or filters.until or filters.sources)
        if only_as_of and (
            filters.as_of is None or day_number(filters.as_of) >= self._newest_day(index)
        ):
            return None  # the usual question, asked today: nothing is from its future
        days, sources = self._metadata(index)
        mask = np.ones(len(days), dtype=bool)
        if filters.as_of is not None:  # undated articles are not from the future
            mask &= (days == 0) | (days <= day_number(filters.as_of))
        if filters.until is not None:  # a window needs a date to fall in it
            mask &= (days > 0) & (days <= day_number(filters.until))
        if filters.since is not None:
            mask &= days >= day_number(filters.since)
        if filters.sources:
            codes = [self._source_codes[s] for s in filters.sources if s in self._source_codes]
            mask &= np.isin(sources, codes)
        result = None if mask.all() else mask
        with self._lock:
            if len(self._filter_masks) > 64:
                self._filter_masks.clear()
            self._filter_masks[filters] = result
        return result
