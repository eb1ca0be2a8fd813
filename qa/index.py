"""The on-disk index: chunk store, vectors, FAISS, BM25 and a manifest, saved atomically.

Layout of the index folder::

    CURRENT          name of the live generation (replaced atomically with os.replace)
    LOCK             held while a writer builds a new generation
    gen-000007/      one complete, immutable generation
        manifest.json   schema, embedding model and dimension, chunking, a content hash per article
        store.sqlite    articles (with their stored text) and chunks
        vectors.npy     float32 rows, row i belongs to chunk row id ids[i]; the source of truth
        ids.npy         int64 chunk row ids, in the same order
        dense.faiss     FAISS structure over the vectors (exact or approximate, see qa.vectors)
        bm25/           bm25s index over title + chunk text, positions in the same order as ids

A writer builds a whole new generation beside the live one and only then points CURRENT at it,
so a crash or kill at any moment leaves the previous generation loadable and consistent: the
vectors, the chunk store and BM25 can never fall out of step (the failure mem0 #7117 reports).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from qa import vectors
from qa.chunk import chunks_for, embed_text, embedded_title
from qa.config import Settings
from qa.embed import Embedder
from qa.types import Chunk, DocInfo, Document, Filters, QAError

SCHEMA_VERSION = 1
CURRENT = "CURRENT"
# A filter that keeps this few vectors is searched exactly when the approximate index finds
# fewer than k of them (about 5 ms at 384 dims).
EXACT_FILTERED_MAX = 50_000


@dataclass(frozen=True)
class BuildSettings:
    """What the stored vectors depend on; any change means the index must be rebuilt."""

    embedding_model: str
    dim: int
    max_tokens: int
    overlap_tokens: int
    embed_title: bool

    @classmethod
    def from_settings(cls, settings: Settings, dim: int) -> BuildSettings:
        return cls(
            embedding_model=settings.embedding.model,
            dim=dim,
            max_tokens=settings.chunking.max_tokens,
            overlap_tokens=settings.chunking.overlap_tokens,
            embed_title=settings.chunking.embed_title,
        )

    def compatible(self, other: BuildSettings) -> bool:
        return self == other


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_total: int = 0
    articles_total: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        if not self.changed:
            head = f"nothing to embed: {self.unchanged} articles unchanged"
        else:
            head = (
                f"{self.added} added, {self.updated} updated, {self.removed} removed, "
                f"{self.unchanged} unchanged; {self.chunks_embedded} chunks embedded"
            )
        return (
            f"{head}; index holds {self.articles_total} articles, {self.chunks_total} chunks "
            f"({self.seconds:.1f} s)"
        )


# ---------------------------------------------------------------- BM25 text handling


@cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased, stop words removed, Snowball-stemmed word tokens (numbers kept)."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in _stopwords()]
    return list(_stemmer().stemWords(words))


# ---------------------------------------------------------------- reading


class Index:
    """A read-only view of one generation; parts load on first use and are shared by threads."""

    def __init__(self, root: Path, generation: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.path = generation
        self.manifest = manifest
        self.build = BuildSettings(**manifest["build"])
        self._lock = threading.Lock()
        self._local = threading.local()
        self._faiss: Any = None
        self._bm25: Any = None
        self._vectors: np.ndarray | None = None
        self._ids: np.ndarray | None = None
        self._row_of: dict[int, int] | None = None
        self._days: np.ndarray | None = None  # per position: YYYYMMDD published, 0 undated
        self._sources: np.ndarray | None = None  # per position: code of the lower-cased source
        self._source_codes: dict[str, int] = {}
        self._masks: dict[Filters, np.ndarray | None] = {}

    # -- opening

    @classmethod
    def open(cls, root: Path, settings: Settings | None = None, dim: int | None = None) -> Index:
        """Open the live generation; with settings, refuse an index built differently."""
        generation = live_generation(root)
        if generation is None:
            raise QAError(f"no index at {root}: run `qa ingest` first")
        try:
            manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise QAError(
                f"index at {root} is unreadable ({exc}); run `qa ingest --rebuild`"
            ) from None
        if manifest.get("schema") != SCHEMA_VERSION:
            raise QAError(
                f"index at {root} has schema {manifest.get('schema')}, this qa reads "
                f"{SCHEMA_VERSION}: run `qa ingest --rebuild`"
            )
        index = cls(root, generation, manifest)
        if settings is not None:
            index.check(settings, dim or index.build.dim)
        return index

    def check(self, settings: Settings, dim: int) -> None:
        """Raise a clear error when the index was built with another model or chunking."""
        wanted = BuildSettings.from_settings(settings, dim)
        if not self.build.compatible(wanted):
            diffs = [
                f"{k}: index has {v!r}, settings say {getattr(wanted, k)!r}"
                for k, v in asdict(self.build).items()
                if getattr(wanted, k) != v
            ]
            raise QAError(
                "the index was built with other settings ("
                + "; ".join(diffs)
                + "): run `qa ingest --rebuild` to re-embed the corpus"
            )

    # -- parts, loaded lazily

    @property
    def db(self) -> sqlite3.Connection:
        # One read-only connection per thread: sqlite connections must not be shared.
        conn = getattr(self._local, "db", None)
        if conn is None:
            uri = f"file:{self.path / 'store.sqlite'}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._local.db = conn
        return conn

    @property
    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            # Memory-mapped: a cold query reads only the rows it scores.
            self._vectors = np.load(self.path / "vectors.npy", mmap_mode="r")
        return self._vectors

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = np.load(self.path / "ids.npy")
        return self._ids

    def row_of(self, chunk_row: int) -> int:
        """Position of a chunk row id in vectors/ids/BM25."""
        with self._lock:
            if self._row_of is None:
                self._row_of = {int(r): i for i, r in enumerate(self.ids)}
        return self._row_of[chunk_row]

    @property
    def faiss(self) -> Any:
        with self._lock:
            if self._faiss is None:
                self._faiss = vectors.load(self.path / "dense.faiss")
        return self._faiss

    @property
    def bm25(self) -> Any:
        with self._lock:
            if self._bm25 is None:
                import bm25s

                self._bm25 = bm25s.BM25.load(
                    str(self.path / "bm25"), mmap=True, show_progress=False, verbosity=0
                )
        return self._bm25

    def _metadata(self) -> tuple[np.ndarray, np.ndarray]:
        """Publication day and source of every position, read once from the chunk store: the
        filters and the recency prior work on these arrays, not on fetched rows."""
        with self._lock:
            if self._days is None or self._sources is None:
                meta = {
                    row: (published, (source or "").strip().lower())
                    for row, published, source in self.db.execute(
                        "SELECT c.row, d.published, d.source FROM chunks c "
                        "JOIN docs d ON d.id = c.doc_id"
                    )
                }
                days = np.zeros(len(self.ids), dtype=np.int32)
                sources = np.zeros(len(self.ids), dtype=np.int32)
                codes: dict[str, int] = {}
                for pos, row in enumerate(self.ids):
                    published, source = meta[int(row)]
                    days[pos] = day_number(published)
                    sources[pos] = codes.setdefault(source, len(codes))
                self._days, self._sources, self._source_codes = days, sources, codes
            return self._days, self._sources

    def published_days(self, chunk_rows: Sequence[int]) -> list[int]:
        """YYYYMMDD publication day of each chunk's article (0 when undated)."""
        days, _ = self._metadata()
        return [int(days[self.row_of(r)]) for r in chunk_rows]

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """Which positions ``filters`` let through, as a boolean mask; None when all pass (the
        common case costs nothing at search time)."""
        if filters is None or len(self) == 0:
            return None
        with self._lock:
            if filters in self._masks:
                return self._masks[filters]
        days, sources = self._metadata()
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
            if len(self._masks) > 64:
                self._masks.clear()
            self._masks[filters] = result
        return result

    # -- queries

    def __len__(self) -> int:
        return int(self.manifest["counts"]["chunks"])

    def dense_search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk row id, cosine) of the nearest chunks among the ``allowed`` positions."""
        if len(self) == 0:
            return []
        if allowed is None:
            scores, ids = vectors.search(self.faiss, query.reshape(1, -1), k)
        else:
            positions = np.flatnonzero(allowed)
            if positions.size == 0:
                return []
            # The filter runs inside FAISS (an id selector), so the k best allowed chunks come
            # back however few the filter keeps.
            scores, ids = vectors.search(
                self.faiss, query.reshape(1, -1), k, allowed_ids=self.ids[positions]
            )
            found = int((ids[0] >= 0).sum())
            if found < min(k, positions.size) and positions.size <= EXACT_FILTERED_MAX:
                # An approximate index probes a few lists; a narrow filter can leave them
                # nearly empty. Few allowed vectors are cheap to score exactly.
                cos = np.asarray(self.vectors[positions]) @ query.reshape(-1)
                best = np.argsort(-cos, kind="stable")[:k]
                return [(int(self.ids[positions[b]]), float(cos[b])) for b in best]
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def bm25_search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk row id, BM25 score) of the best keyword matches with a positive score among
        the ``allowed`` positions (a mask on the scores, inside bm25s)."""
        tokens = bm25_tokens(query)
        if not tokens or len(self) == 0:
            return []
        mask = None if allowed is None else allowed.astype(np.float32)
        positions, scores = self.bm25.retrieve(
            [tokens], k=min(k, len(self)), show_progress=False, n_threads=1, weight_mask=mask
        )
        return [
            (int(self.ids[p]), float(s))
            for p, s in zip(positions[0], scores[0], strict=True)
            if s > 0
        ]

    def cosine(self, query: np.ndarray, chunk_rows: Sequence[int]) -> list[float]:
        """Exact cosine of the query with stored chunk vectors (for hits BM25 found)."""
        rows = [self.row_of(r) for r in chunk_rows]
        return [float(v) for v in np.asarray(self.vectors[rows]) @ query.reshape(-1)]

    def chunks(self, chunk_rows: Sequence[int]) -> dict[int, tuple[Chunk, DocInfo]]:
        """Chunks and their article metadata by row id."""
        if not chunk_rows:
            return {}
        marks = ",".join("?" * len(chunk_rows))
        rows = self.db.execute(
            "SELECT c.row, c.id, c.doc_id, c.ordinal, c.text, c.start, c.end, "
            "d.title, d.published, d.source, d.url FROM chunks c JOIN docs d ON d.id = c.doc_id "
            f"WHERE c.row IN ({marks})",
            list(chunk_rows),
        ).fetchall()
        return {
            r[0]: (
                Chunk(r[1], r[2], r[3], r[4], r[5], r[6]),
                DocInfo(r[2], r[7], r[8], r[9], r[10]),
            )
            for r in rows
        }

    def document(self, doc_id: str) -> Document | None:
        """The stored article (text as stored, so citation offsets can be checked)."""
        row = self.db.execute(
            "SELECT id, title, text, segments, published, source, url, path FROM docs WHERE id=?",
            (doc_id,),
        ).fetchone()
        if row is None:
            return None
        segments = tuple((int(s), int(e)) for s, e in json.loads(row[3]))
        return Document(row[0], row[1], row[2], segments, row[4], row[5], row[6], row[7])

    def iter_chunks(self) -> Iterator[tuple[Chunk, DocInfo]]:
        """Every chunk with its article, in store order, for tools that walk the whole store."""
        cur = self.db.execute(
            "SELECT c.id, c.doc_id, c.ordinal, c.text, c.start, c.end, d.title, d.published, "
            "d.source, d.url FROM chunks c JOIN docs d ON d.id = c.doc_id ORDER BY c.row"
        )
        for r in cur:
            yield Chunk(r[0], r[1], r[2], r[3], r[4], r[5]), DocInfo(r[1], r[6], r[7], r[8], r[9])

    def status(self) -> dict[str, Any]:
        size = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return {
            "index": str(self.root),
            "generation": self.path.name,
            "articles": self.manifest["counts"]["articles"],
            "chunks": self.manifest["counts"]["chunks"],
            "build": self.manifest["build"],
            "vector_index": self.manifest.get("vector_index", {}),
            "bytes_on_disk": size,
            "created": self.manifest.get("created"),
        }


def day_number(published: str | date) -> int:
    """ "2024-01-05" (or that date) -> 20240105; 0 for an undated or unparseable article."""
    if isinstance(published, date):
        return published.year * 10000 + published.month * 100 + published.day
    digits = published[:10].replace("-", "")
    return int(digits) if len(digits) == 8 and digits.isdigit() else 0


def live_generation(root: Path) -> Path | None:
    """The generation CURRENT points at, or None when there is no complete index."""
    try:
        name = (root / CURRENT).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    generation = root / name
    return generation if (generation / "manifest.json").is_file() else None


# ---------------------------------------------------------------- writing


@contextlib.contextmanager
def _writer_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "LOCK", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise QAError(f"another `qa ingest` is writing the index at {root}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for p in [*path.rglob("*"), path]:
        _fsync(p)


def _create_store(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE docs (id TEXT PRIMARY KEY, title TEXT, text TEXT, segments TEXT,
                           published TEXT, source TEXT, url TEXT, path TEXT);
        CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT UNIQUE, doc_id TEXT, ordinal INTEGER,
                             text TEXT, start INTEGER, end INTEGER);
        CREATE INDEX chunks_doc ON chunks(doc_id);
        """
    )
    return conn


def scope(roots: Sequence[Path], keep: Iterable[str] = ()) -> Callable[[str], bool]:
    """Which indexed articles an ingest of ``roots`` may remove: those read from a file under
    one of the roots, except the files in ``keep`` (read this time without success: a file that
    turned corrupt must not cost the article already stored)."""
    resolved = [r.resolve() for r in roots]
    kept = {k.split("#", 1)[0] for k in keep}

    def in_scope(path: str) -> bool:
        file = Path(path.split("#", 1)[0])
        if str(file) in kept:
            return False
        return any(file == r or file.is_relative_to(r) for r in resolved)

    return in_scope


ProgressHook = Callable[[int, int], None]  # (chunks embedded so far, chunks to embed)


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
    """Bring the index at ``root`` in line with ``documents``.

    Only new or changed articles are chunked and embedded. Indexed articles whose ``path`` is
    ``in_scope`` (under the folders being ingested) but absent from ``documents`` are removed;
    articles outside the scope are kept. Nothing is written when nothing changed.
    """
    started = time.perf_counter()
    report = SyncReport()
    with _writer_lock(root):
        old = None if rebuild else _open_for_update(root, settings, embedder)
        old_docs: dict[str, dict[str, Any]] = old.manifest["docs"] if old else {}

        incoming: dict[str, Document] = {}
        for doc in documents:
            doc = _distinct_id(doc, old_docs, in_scope)
            incoming.setdefault(doc.id, doc)
        fresh: list[Document] = []
        for doc_id, doc in incoming.items():
            known = old_docs.get(doc_id)
            if known is None:
                report.added += 1
                fresh.append(doc)
            elif known["hash"] != doc.content_hash:
                report.updated += 1
                fresh.append(doc)
            else:
                report.unchanged += 1
        gone = {d for d, meta in old_docs.items() if d not in incoming and in_scope(meta["path"])}
        report.removed = len(gone)
        replaced = gone | {doc.id for doc in fresh}
        kept_docs = {d: m for d, m in old_docs.items() if d not in replaced}

        if old is not None and not report.changed:
            report.articles_total = len(old_docs)
            report.chunks_total = len(old)
            report.seconds = time.perf_counter() - started
            return report

        # Chunk and embed only what is new or changed.
        t0 = time.perf_counter()
        new_chunks: list[tuple[Document, Chunk]] = []
        for doc in fresh:
            for chunk in chunks_for(doc, embedder, settings.chunking):
                new_chunks.append((doc, chunk))
        report.timings["chunk_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # Long titles are cut as chunk_document budgeted them, so no input is truncated.
        titles = {d.id: embedded_title(d.title, embedder.count_tokens) for d in fresh}
        new_vectors = _embed_batched(
            embedder,
            [
                embed_text(titles[d.id], c.text, settings.chunking.embed_title)
                for d, c in new_chunks
            ],
            progress,
        )
        report.timings["embed_s"] = time.perf_counter() - t0
        report.chunks_embedded = len(new_chunks)

        t0 = time.perf_counter()
        build = BuildSettings.from_settings(settings, embedder.dim)
        _write_generation(root, old, kept_docs, fresh, new_chunks, new_vectors, build, settings)
        report.timings["write_s"] = time.perf_counter() - t0
        live = Index.open(root)
        report.articles_total = live.manifest["counts"]["articles"]
        report.chunks_total = len(live)
    report.seconds = time.perf_counter() - started
    return report


def _distinct_id(
    doc: Document, old_docs: dict[str, dict[str, Any]], in_scope: Callable[[str], bool]
) -> Document:
    """Ids are paths relative to the folder ingested, so ``a/x.md`` and, in another run,
    ``b/x.md`` are both ``x``. An indexed article of that id from outside this run's folders is
    another article, not an older version: give the newcomer an id of its own."""
    known = old_docs.get(doc.id)
    if known is None or known["path"] == doc.path or in_scope(known["path"]):
        return doc
    digest = hashlib.sha1(doc.path.encode("utf-8")).hexdigest()[:8]
    return replace(doc, id=f"{doc.id}@{digest}")


def _open_for_update(root: Path, settings: Settings, embedder: Embedder) -> Index | None:
    if live_generation(root) is None:
        return None
    index = Index.open(root)
    index.check(settings, embedder.dim)  # vectors of another model must never mix in
    return index


def _embed_batched(
    embedder: Embedder, texts: list[str], progress: ProgressHook | None
) -> np.ndarray:
    """Embed in slices so a progress bar can follow long runs."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    step = 256
    parts = []
    for begin in range(0, len(texts), step):
        parts.append(embedder.embed(texts[begin : begin + step]))
        if progress:
            progress(min(begin + step, len(texts)), len(texts))
    return np.vstack(parts).astype(np.float32)


def _write_generation(
    root: Path,
    old: Index | None,
    kept_docs: dict[str, dict[str, Any]],
    fresh: list[Document],
    new_chunks: list[tuple[Document, Chunk]],
    new_vectors: np.ndarray,
    build: BuildSettings,
    settings: Settings,
) -> None:
    number = 1 + max(
        (int(p.name.split("-")[1]) for p in root.glob("gen-*") if p.name.split("-")[1].isdigit()),
        default=0,
    )
    final = root / f"gen-{number:06d}"
    tmp = root / f".tmp-gen-{number:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        conn = _create_store(tmp / "store.sqlite")
        next_row = old.manifest["next_row"] if old else 1
        kept_rows: list[int] = []
        if old is not None:
            # Copy the kept articles and their chunks; their vectors are reused, not re-embedded.
            conn.execute("ATTACH DATABASE ? AS old", (f"file:{old.path / 'store.sqlite'}?mode=ro",))
            conn.execute("CREATE TEMP TABLE keep (id TEXT PRIMARY KEY)")
            conn.executemany("INSERT INTO keep VALUES (?)", [(d,) for d in kept_docs])
            conn.execute(
                "INSERT INTO docs SELECT * FROM old.docs WHERE id IN (SELECT id FROM keep)"
            )
            conn.execute(
                "INSERT INTO chunks SELECT * FROM old.chunks WHERE doc_id IN (SELECT id FROM keep)"
            )
            conn.commit()
            conn.execute("DETACH DATABASE old")
            kept_rows = [r for (r,) in conn.execute("SELECT row FROM chunks ORDER BY row")]
        conn.executemany(
            "INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.id,
                    d.title,
                    d.text,
                    json.dumps(d.segments),
                    d.published,
                    d.source,
                    d.url,
                    d.path,
                )
                for d in fresh
            ],
        )
        new_rows = list(range(next_row, next_row + len(new_chunks)))
        conn.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (row, c.id, c.doc_id, c.ordinal, c.text, c.start, c.end)
                for row, (_, c) in zip(new_rows, new_chunks, strict=True)
            ],
        )
        conn.commit()

        # Vectors: the kept rows in the order the store lists them, then the new ones.
        if old is not None and kept_rows:
            positions = [old.row_of(r) for r in kept_rows]
            kept_vectors = np.asarray(old.vectors[positions], dtype=np.float32)
        else:
            kept_vectors = np.zeros((0, build.dim), dtype=np.float32)
        all_vectors = np.vstack([kept_vectors, new_vectors.reshape(-1, build.dim)])
        all_ids = np.asarray(kept_rows + new_rows, dtype=np.int64)
        np.save(tmp / "vectors.npy", all_vectors)
        np.save(tmp / "ids.npy", all_ids)
        dense = vectors.build(all_vectors, all_ids, settings.index.kind)
        vectors.save(dense, tmp / "dense.faiss")

        # BM25 has no incremental update; re-indexing token lists is cheap next to embedding.
        texts = _bm25_corpus(conn, all_ids)
        conn.close()
        _save_bm25(texts, tmp / "bm25")

        doc_meta = dict(kept_docs)
        chunk_counts: dict[str, int] = {}
        for _, chunk in new_chunks:
            chunk_counts[chunk.doc_id] = chunk_counts.get(chunk.doc_id, 0) + 1
        for d in fresh:
            doc_meta[d.id] = {
                "hash": d.content_hash,
                "path": d.path,
                "chunks": chunk_counts.get(d.id, 0),
            }
        manifest = {
            "schema": SCHEMA_VERSION,
            "build": asdict(build),
            "vector_index": vectors.describe(dense),
            "counts": {"articles": len(doc_meta), "chunks": len(all_ids)},
            "next_row": next_row + len(new_chunks),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "docs": doc_meta,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _fsync_tree(tmp)
        os.replace(tmp, final)
        # The switch: one atomic rename of a one-line file.
        pointer = root / f".{CURRENT}.tmp"
        pointer.write_text(final.name + "\n", encoding="utf-8")
        with open(pointer) as handle:
            os.fsync(handle.fileno())
        os.replace(pointer, root / CURRENT)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _collect_garbage(root, keep={final.name, old.path.name if old else ""})


def _collect_garbage(root: Path, keep: set[str]) -> None:
    """Remove generations other than the live one and the one just replaced (a process may
    still be reading it), and any temporary folder a killed writer left behind."""
    for p in root.iterdir():
        if p.is_dir() and (p.name.startswith(("gen-", ".tmp-gen-"))) and p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)


def _bm25_corpus(conn: sqlite3.Connection, ids: np.ndarray) -> list[list[str]]:
    # Titles and dates are indexed with the passage: news questions often name the event.
    rows = dict(
        conn.execute(
            "SELECT c.row, d.title || ' ' || d.published || ' ' || c.text "
            "FROM chunks c JOIN docs d ON d.id = c.doc_id"
        ).fetchall()
    )
    return [bm25_tokens(rows[int(r)]) for r in ids]


def _save_bm25(tokens: list[list[str]], path: Path) -> None:
    import bm25s

    retriever = bm25s.BM25()
    # bm25s cannot index an empty corpus; an empty index is represented by no folder.
    if tokens:
        retriever.index(tokens, show_progress=False)
        retriever.save(str(path), show_progress=False)
    else:
        path.mkdir()
