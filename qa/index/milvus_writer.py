"""Ingest into Milvus with the local backend's rules (add, change, delete by content hash; only
new or changed articles embedded) and without its generations: rows change in place.

Milvus has no transaction over many rows, so the writer is built to converge instead:

* a chunk's primary key is derived from (article id, article hash, ordinal), so writing it
  again is an idempotent upsert and a chunk can never be stored twice;
* an article's part-0 row is written with ``state = "writing"`` *before* its chunks and set to
  ``"done"`` after them and after the stale chunks of its previous version are deleted; an
  article not ``done`` counts as changed on the next ingest, which redoes it;
* a removed article loses its chunks first and its own rows last;
* a rebuild fills a new generation of collections and switches the ``live`` record only when
  it is complete; a killed rebuild's collections are dropped by the next ingest.

So after a crash or kill at any point, the next `qa ingest` leaves every article once, with
exactly the chunks of its current text (tests/index/test_milvus_crash.py kills one mid-way).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from qa.core.config import Settings
from qa.core.types import Chunk, Document, QAError
from qa.embedding.base import Embedder, embedder_identity
from qa.index import store
from qa.index.bm25 import bm25_tokens
from qa.index.build import BuildSettings
from qa.index.filter_masks import day_number
from qa.index.milvus import MilvusIndex
from qa.index.milvus_db import (
    all_rows,
    clear_errors,
    connect,
    create_generation,
    drop_other_generations,
    names,
    quoted,
    read_live,
    set_live,
)
from qa.index.milvus_terms import TermCounts, passage_terms
from qa.index.writer import ProgressHook, SyncReport, plan_changes
from qa.ingest.chunk import chunks_for, embed_text, embedded_title

ROWS_PER_WRITE = 5000  # rows per upsert call: large enough to amortise, small for the gRPC cap
CHUNKS_PER_BATCH = 8192  # chunks embedded, written and marked done together
PIECE = 16_000  # characters of a stored article per row (a VARCHAR holds 65,535 bytes)


def chunk_key(doc_id: str, doc_hash: str, ordinal: int) -> int:
    """The deterministic 63-bit primary key of a chunk of one version of an article."""
    digest = hashlib.sha1(f"{doc_id}\0{doc_hash}\0{ordinal}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@clear_errors
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
    """:func:`qa.index.sync` for ``index.backend = "milvus"`` (``root`` holds the lock)."""
    started = time.perf_counter()
    report = SyncReport(rebuilt=rebuild)
    with store.writer_lock(root):
        client = connect(settings)
        build = BuildSettings.from_settings(settings, embedder.dim, embedder_identity(embedder))
        live = read_live(client, settings)
        old = MilvusIndex(client, settings, live) if live is not None else None
        if old is not None and not rebuild:
            old.check(settings, build.dim, build.model_fingerprint)  # never mix two models
        drop_other_generations(client, settings, keep=live["generation"] if live else None)
        if rebuild or live is None:
            generation = live["generation"] + 1 if live else 1
            create_generation(client, settings, generation, build.dim)
            TermCounts(client, settings, generation).create()
            if live is None:  # the first build is live from the start, filled in place
                set_live(client, settings, generation, build)
        else:
            generation = int(live["generation"])
        chunks_name, docs_name = names(settings, generation)
        # The planner reads the live generation (for a rebuild: the one replaced, whose stored
        # texts restore the articles of folders not given this time).
        stored = _Stored(client, old.doc_collection, old) if old is not None else None
        plan = plan_changes(documents, stored, in_scope, settings.root.resolve(), report)
        terms = TermCounts(client, settings, generation)
        if old is not None and not report.changed:
            if not terms.exact():  # a kill after the last write, or a table not made yet
                terms.recount()
            report.articles_total, report.chunks_total = old.articles(), len(old)
            report.seconds = time.perf_counter() - started
            return report
        counts_exact = terms.begin()
        delta: Counter[str] = Counter()  # passages gained (lost: negative) per term
        if stored is not None and not rebuild:
            replaced = set(stored.manifest["docs"]) - set(plan.kept)
            gone = sorted(replaced - {d.id for d in plan.fresh})
            _delete_articles(client, chunks_name, docs_name, gone, delta)
        # Only articles the target generation holds can have stale rows to delete.
        held = set(stored.manifest["docs"]) if stored is not None and not rebuild else set()
        _write_articles(
            client,
            (chunks_name, docs_name),
            plan.fresh,
            held,
            embedder,
            settings,
            progress,
            report,
            delta,
        )
        # Seal what was written: Milvus Lite otherwise rebuilds the BM25 index of unsealed
        # rows at every search (3,000 chunks: 2.5 s a question in the writing process).
        client.flush(chunks_name)
        terms.finish(delta, counts_exact)
        if rebuild:
            set_live(client, settings, generation, build)
            drop_other_generations(client, settings, keep=generation)
        index = MilvusIndex(client, settings, {"generation": generation, "build": asdict(build)})
        report.articles_total, report.chunks_total = index.articles(), len(index)
    report.seconds = time.perf_counter() - started
    return report


@clear_errors
def remove(root: Path, doc_ids: Iterable[str], settings: Settings) -> SyncReport:
    """Drop articles by id; unknown ids raise :class:`QAError` and change nothing."""
    started = time.perf_counter()
    wanted = sorted(set(doc_ids))
    with store.writer_lock(root):
        index = MilvusIndex.open(settings)
        docs = _Stored(index.client, index.doc_collection, None).manifest["docs"]
        missing = [d for d in wanted if d not in docs]
        if missing:
            raise QAError(f"no article with id {', '.join(missing)} in the index")
        terms = TermCounts(index.client, settings, index.generation)
        counts_exact = terms.begin()
        delta: Counter[str] = Counter()
        _delete_articles(index.client, index.chunk_collection, index.doc_collection, wanted, delta)
        terms.finish(delta, counts_exact)
        report = SyncReport(
            removed=len(wanted),
            unchanged=len(docs) - len(wanted),
            articles_total=index.articles(),
            chunks_total=len(index),
        )
    report.seconds = time.perf_counter() - started
    return report


class _Stored:
    """What the shared planner reads of an index: each article's hash, path and chunk count
    (an article a killed ingest left unfinished has no hash, so it is redone), and its text."""

    def __init__(self, client: Any, docs_name: str, reader: MilvusIndex | None) -> None:
        rows = all_rows(
            client, docs_name, "part == 0", ["doc_id", "doc_hash", "path", "chunks", "state"]
        )
        docs = {
            r["doc_id"]: {
                "hash": r["doc_hash"] if r["state"] == "done" else "",
                "path": r["path"],
                "chunks": int(r["chunks"]),
            }
            for r in rows
        }
        self.manifest = {"docs": docs}
        self.reader = reader

    def document(self, doc_id: str) -> Document | None:
        return self.reader.document(doc_id) if self.reader is not None else None


# -- rows


def _doc_filters(doc_ids: list[str]) -> list[str]:
    """Filters selecting the rows of ``doc_ids``, 500 articles a filter (a filter's length is
    bounded)."""
    return [
        f"doc_id in [{', '.join(quoted(d) for d in doc_ids[begin : begin + 500])}]"
        for begin in range(0, len(doc_ids), 500)
    ]


def _delete_articles(
    client: Any, chunks_name: str, docs_name: str, doc_ids: list[str], delta: Counter[str]
) -> None:
    """Chunks first, the article's own rows last: a kill in between leaves the article listed,
    and the next ingest removes it again. Their terms are taken off ``delta``."""
    for expr in _doc_filters(doc_ids):
        for row in all_rows(client, chunks_name, expr, ["keywords"]):
            delta.subtract(passage_terms(row["keywords"]))
        client.delete(chunks_name, filter=expr)
        client.delete(docs_name, filter=expr)


def _write_articles(
    client: Any,
    collections: tuple[str, str],
    fresh: list[Document],
    held: set[str],
    embedder: Embedder,
    settings: Settings,
    progress: ProgressHook | None,
    report: SyncReport,
    delta: Counter[str],
) -> None:
    t0 = time.perf_counter()
    per_doc = [(doc, chunks_for(doc, embedder, settings.chunking)) for doc in fresh]
    total = sum(len(chunks) for _, chunks in per_doc)
    report.timings["chunk_s"] = time.perf_counter() - t0
    report.chunks_embedded = total
    embed_s = write_s = 0.0
    done = 0
    batch: list[tuple[Document, list[Chunk]]] = []
    size = 0
    for i, (doc, chunks) in enumerate(per_doc):
        batch.append((doc, chunks))
        size += len(chunks)
        if size < CHUNKS_PER_BATCH and i + 1 < len(per_doc):
            continue
        t0 = time.perf_counter()
        vectors = _embed(embedder, batch, settings)
        embed_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        _write_batch(client, collections, batch, vectors, held, delta)
        write_s += time.perf_counter() - t0
        done += size
        if progress:
            progress(done, total)
        batch, size = [], 0
    report.timings["embed_s"], report.timings["write_s"] = embed_s, write_s


def _embed(
    embedder: Embedder, batch: list[tuple[Document, list[Chunk]]], settings: Settings
) -> np.ndarray:
    texts: list[str] = []
    for doc, chunks in batch:
        title = embedded_title(doc.title, embedder.count_tokens)
        texts.extend(embed_text(title, c.text, settings.chunking.embed_title) for c in chunks)
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    parts = [embedder.embed(texts[b : b + 256]) for b in range(0, len(texts), 256)]
    return np.vstack(parts).astype(np.float32)


def _write_batch(
    client: Any,
    collections: tuple[str, str],
    batch: list[tuple[Document, list[Chunk]]],
    vectors: np.ndarray,
    held: set[str],
    delta: Counter[str],
) -> None:
    """One batch of articles: rows marked writing, chunks, stale rows deleted, marked done;
    ``delta`` gains the terms of passages added and loses those of passages deleted."""
    chunks_name, docs_name = collections
    doc_rows = [row for doc, chunks in batch for row in _doc_rows(doc, len(chunks), "writing")]
    _upsert(client, docs_name, doc_rows)
    rows: list[dict[str, Any]] = []
    for doc, chunks in batch:
        day = day_number(doc.published)
        for c in chunks:
            rows.append(
                {
                    "pk": chunk_key(doc.id, doc.content_hash, c.ordinal),
                    "doc_id": doc.id,
                    "doc_hash": doc.content_hash,
                    "chunk_id": c.id,
                    "ordinal": c.ordinal,
                    "text": c.text,
                    "span_start": c.start,
                    "span_end": c.end,
                    "title": doc.title[:PIECE],
                    "published_text": doc.published,
                    "source": doc.source,
                    "source_key": doc.source.strip().lower(),
                    "url": doc.url,
                    "published": day,
                    # What the local BM25 indexes: title, date and passage.
                    "keywords": " ".join(bm25_tokens(f"{doc.title} {doc.published} {c.text}")),
                    "vector": vectors[len(rows)].tolist(),
                }
            )
    # The chunks these articles have before the write (a previous version, or a killed run's).
    ids = [doc.id for doc, _ in batch if doc.id in held]
    exprs = _doc_filters(ids)
    before = {
        r["pk"]: r["keywords"]
        for expr in exprs
        for r in all_rows(client, chunks_name, expr, ["pk", "keywords"])
    }
    _upsert(client, chunks_name, rows)
    new_pks = {r["pk"] for r in rows}
    new_keys = {r["key"] for r in doc_rows}
    for r in rows:
        if r["pk"] not in before:  # an upsert of a stored pk rewrites the same passage
            delta.update(passage_terms(r["keywords"]))
    stale = [pk for pk in before if pk not in new_pks]
    for pk in stale:
        delta.subtract(passage_terms(before[pk]))
    for b in range(0, len(stale), ROWS_PER_WRITE):
        client.delete(chunks_name, ids=stale[b : b + ROWS_PER_WRITE])
    for expr in exprs:
        old_keys = [
            r["key"] for r in all_rows(client, docs_name, expr, ["key"]) if r["key"] not in new_keys
        ]
        if old_keys:
            client.delete(docs_name, ids=old_keys)
    finished = [{**r, "state": "done"} for r in doc_rows if r["part"] == 0]
    _upsert(client, docs_name, finished)


def _doc_rows(doc: Document, chunks: int, state: str) -> list[dict[str, Any]]:
    """The stored article as JSON in pieces; part 0 also says what the planner needs."""
    payload = json.dumps(
        {
            "title": doc.title,
            "text": doc.text,
            "segments": doc.segments,
            "published": doc.published,
            "source": doc.source,
            "url": doc.url,
            "path": doc.path,
        },
        ensure_ascii=False,
    )
    pieces = [payload[b : b + PIECE] for b in range(0, len(payload), PIECE)] or [""]
    rows = []
    for part, piece in enumerate(pieces):
        first = part == 0
        rows.append(
            {
                "key": f"{part}:{doc.id}",
                "doc_id": doc.id,
                "part": part,
                "parts": len(pieces),
                "piece": piece,
                "doc_hash": doc.content_hash if first else "",
                "state": state if first else "",
                "title": doc.title[:PIECE] if first else "",
                "published_text": doc.published if first else "",
                "source": doc.source if first else "",
                "url": doc.url if first else "",
                "path": doc.path if first else "",
                "chunks": chunks if first else 0,
                "unused": [0.0, 0.0],
            }
        )
    return rows


def _upsert(client: Any, collection: str, rows: list[dict[str, Any]]) -> None:
    for begin in range(0, len(rows), ROWS_PER_WRITE):
        client.upsert(collection, rows[begin : begin + ROWS_PER_WRITE])
