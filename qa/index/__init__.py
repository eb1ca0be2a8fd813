"""The index: one protocol, two backends, chosen by ``settings.index.backend``.

* :class:`Index` - what the Retriever, the Assistant, `qa articles`, `qa status` and the server
  read; :func:`open_index` opens it, :func:`index_version` says whether (and which) one exists;
* :func:`sync` / :func:`remove` - THE ingest entry points, for either backend;
* local backend: :mod:`qa.index.store` (folder layout, lock, commit, garbage collection),
  :mod:`qa.index.generation` and :mod:`qa.index.segments` (a generation is immutable segments
  shared by hard links, plus the rows it deleted), :mod:`qa.index.chunk_store` (the SQLite
  store generations share), :mod:`qa.index.local` (:class:`LocalIndex`, the reader: FAISS and
  BM25 per segment with global statistics), :mod:`qa.index.filter_masks` (which positions a
  filter lets through), :mod:`qa.index.writer` (an ingest writes only what changed);
* Milvus backend: :mod:`qa.index.milvus_db` (connection, collections, filters as expressions),
  :mod:`qa.index.milvus` (the reader: hybrid search in the engine) and
  :mod:`qa.index.milvus_writer` (incremental, crash-convergent ingest);
* :mod:`qa.index.fusion` - candidates and weighted RRF; :mod:`qa.index.paths` - stored paths,
  the id rule, the scope of an ingest; :mod:`qa.index.bm25` - keyword analysis for both.

Milvus modules are imported only when that backend is chosen (no pymilvus at question time
on the local backend).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa.core.config import RetrievalSettings, Settings
from qa.core.types import Chunk, DocInfo, Document, Filters
from qa.embedding.base import Embedder
from qa.index.bm25 import bm25_tokens
from qa.index.build import BuildSettings
from qa.index.filter_masks import day_number
from qa.index.fusion import Candidate
from qa.index.local import EXACT_FILTERED_MAX, LocalIndex, documents_info
from qa.index.paths import absolute_path, assign_ids, scope, stored_path
from qa.index.store import (
    CURRENT,
    SCHEMA_VERSION,
    collect_garbage,
    commit,
    live_generation,
    pin_generation,
    writer_lock,
)

if TYPE_CHECKING:
    from qa.index.writer import ProgressHook, SyncReport


def __getattr__(name: str) -> Any:
    # The writer (and the ingest-only modules it imports) loads on an ingest's first use, not
    # with every reader: a cold `qa ask` or `qa search` only reads.
    if name in ("ProgressHook", "SyncReport"):
        from qa.index import writer

        return getattr(writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Index(Protocol):
    """A read-only view of the passages, whichever backend holds them; safe to share between
    threads. Chunk keys (``row``) are opaque integers, stable while the index is unchanged."""

    backend: str
    build: BuildSettings  # the model and chunking the stored vectors come from

    @property
    def version(self) -> str:
        """Changes when a new build replaces the one read (the Assistant then re-opens)."""
        ...

    def __len__(self) -> int:
        """Chunks held."""
        ...

    def articles(self) -> int: ...

    def may_match(self, filters: Filters | None) -> bool:
        """False only when ``filters`` certainly leave nothing (no need to embed the question)."""
        ...

    def candidates(
        self, query: str, vector: np.ndarray, filters: Filters | None, settings: RetrievalSettings
    ) -> list[Candidate]:
        """Dense and BM25 candidates (``settings.candidates`` deep each) among the chunks that
        ``filters`` allow, fused by weighted RRF, each with its exact cosine."""
        ...

    def term_weights(self, terms: Iterable[str]) -> dict[str, float]:
        """Inverse document frequency of stemmed terms over the whole index,
        log(1 + N / (1 + df)), with BM25's own counts."""
        ...

    def published_days(self, chunk_rows: Sequence[int]) -> list[int]:
        """YYYYMMDD publication day of each chunk's article, 0 when undated."""
        ...

    def chunks(self, chunk_rows: Sequence[int]) -> dict[int, tuple[Chunk, DocInfo]]: ...

    def document(self, doc_id: str) -> Document | None: ...

    def documents(self) -> list[tuple[DocInfo, str, int]]:
        """Every article: metadata, stored path and chunk count, in id order."""
        ...

    def status(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def open_index(
    settings: Settings, root: Path | None = None, *, dim: int | None = None, fingerprint: str = ""
) -> Index:
    """The index ``settings`` point at (``root`` overrides ``paths.index`` for the local
    backend). With ``dim``, an index built with another model or chunking is refused."""
    check = settings if dim is not None else None
    if settings.index.backend == "milvus":
        from qa.index.milvus import MilvusIndex

        return MilvusIndex.open(settings, check=check, dim=dim, fingerprint=fingerprint)
    return LocalIndex.open(root or settings.index_dir, check, dim, fingerprint)


def separate_index(settings: Settings, folder: Path) -> Settings:
    """Settings for an index of its own named by ``folder`` (the eval harness keeps one per
    benchmark): that folder on the local backend, a collection named after it in Milvus."""
    settings = replace(settings, paths=replace(settings.paths, index=folder))
    if settings.index.backend != "milvus":
        return settings
    milvus = settings.index.milvus
    suffix = re.sub(r"\W", "_", folder.name)
    milvus = replace(milvus, collection=f"{milvus.collection}_{suffix}")
    return replace(settings, index=replace(settings.index, milvus=milvus))


def index_location(settings: Settings) -> str:
    """Where the index lives, for messages."""
    if settings.index.backend == "milvus":
        milvus = settings.index.milvus
        return f"{milvus.uri} (Milvus collection {milvus.collection})"
    return str(settings.index_dir)


def index_version(settings: Settings, root: Path | None = None) -> str | None:
    """The version of the live index, None when there is none yet (before `qa ingest`)."""
    if settings.index.backend == "milvus":
        from qa.index.milvus import live_version

        return live_version(settings)
    live = live_generation(root or settings.index_dir)
    return live.name if live is not None else None


def sync(
    root: Path,
    documents: Iterable[Document],
    embedder: Embedder,
    settings: Settings,
    *,
    in_scope: Callable[[str], bool] = lambda path: True,
    rebuild: bool = False,
    progress: ProgressHook | None = None,
) -> SyncReport:
    """Bring the index in line with ``documents``, embedding only what is new or changed (see
    :func:`qa.index.writer.sync` for the rules, which both backends follow). ``root`` is the
    local index folder; the Milvus backend keeps only its writer's lock file there."""
    if settings.index.backend == "milvus":
        from qa.index import milvus_writer

        return milvus_writer.sync(
            root,
            documents,
            embedder,
            settings,
            in_scope=in_scope,
            rebuild=rebuild,
            progress=progress,
        )
    from qa.index import writer

    return writer.sync(
        root, documents, embedder, settings, in_scope=in_scope, rebuild=rebuild, progress=progress
    )


def remove(root: Path, doc_ids: Iterable[str], settings: Settings) -> SyncReport:
    """Drop articles by id (nothing embedded); unknown ids raise and change nothing."""
    if settings.index.backend == "milvus":
        from qa.index import milvus_writer

        return milvus_writer.remove(root, doc_ids, settings)
    from qa.index import writer

    return writer.remove(root, doc_ids, settings)


__all__ = [
    "CURRENT",
    "EXACT_FILTERED_MAX",
    "SCHEMA_VERSION",
    "BuildSettings",
    "Candidate",
    "Index",
    "LocalIndex",
    "ProgressHook",
    "SyncReport",
    "absolute_path",
    "assign_ids",
    "bm25_tokens",
    "collect_garbage",
    "commit",
    "day_number",
    "documents_info",
    "index_location",
    "index_version",
    "live_generation",
    "open_index",
    "pin_generation",
    "remove",
    "scope",
    "separate_index",
    "stored_path",
    "sync",
    "writer_lock",
]
