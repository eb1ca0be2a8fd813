"""The index: the on-disk store, its reader and writer, BM25 analysis, and which article is which.

* :mod:`qa.index.store`  - the folder layout, build settings, the writer's lock, the commit of a
  generation and the collection of old ones;
* :mod:`qa.index.local`  - :class:`Index`, the reader of one generation (FAISS + bm25s + SQLite);
* :mod:`qa.index.writer` - :func:`sync`, incremental ingest into a new generation;
* :mod:`qa.index.paths`  - stored paths, the id rule, the scope of an ingest;
* :mod:`qa.index.bm25`   - keyword analysis shared by indexing and queries.
"""

from qa.index.bm25 import bm25_tokens
from qa.index.local import EXACT_FILTERED_MAX, Index, day_number, documents_info
from qa.index.paths import absolute_path, assign_ids, scope, stored_path
from qa.index.store import (
    CURRENT,
    SCHEMA_VERSION,
    BuildSettings,
    collect_garbage,
    commit,
    live_generation,
    pin_generation,
    writer_lock,
)
from qa.index.writer import ProgressHook, SyncReport, remove, sync

__all__ = [
    "CURRENT",
    "EXACT_FILTERED_MAX",
    "SCHEMA_VERSION",
    "BuildSettings",
    "Index",
    "ProgressHook",
    "SyncReport",
    "absolute_path",
    "assign_ids",
    "bm25_tokens",
    "collect_garbage",
    "commit",
    "day_number",
    "documents_info",
    "live_generation",
    "pin_generation",
    "remove",
    "scope",
    "stored_path",
    "sync",
    "writer_lock",
]
