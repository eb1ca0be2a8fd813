"""The local index reader: one generation (its segments of FAISS + BM25 postings, the rows of
the shared SQLite store it sees), opened read-only, its parts loaded on first use and shared by
threads."""

from __future__ import annotations

import functools
import json
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from qa.core.config import RetrievalSettings, Settings
from qa.core.types import Chunk, DocInfo, Document, Filters, QAError
from qa.index import check, chunk_store, vectors
from qa.index.bm25 import bm25_tokens
from qa.index.build import BuildSettings
from qa.index.filter_masks import FilterMasks
from qa.index.fusion import Candidate, local_candidates
from qa.index.segments import LiveVectors, Segment, live_mask, positions
from qa.index.store import SCHEMA_VERSION, live_generation, pin_generation

_T = TypeVar("_T")
# A filter that keeps this few vectors is searched exactly when the approximate index finds
# fewer than k of them (about 5 ms at 384 dims).
EXACT_FILTERED_MAX = 50_000


class LocalIndex:
    """A read-only view of one generation; parts load on first use and are shared by threads.
    Implements the :class:`qa.index.Index` protocol."""

    backend = "local"

    def __init__(self, root: Path, generation: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.path = generation
        self.manifest = manifest
        self.build = BuildSettings(**manifest["build"])
        self._lock = threading.RLock()  # a part's loader may need another part
        self._local = threading.local()
        self._bm25: Any = None
        self._segments: list[Segment] | None = None
        self._masks: list[np.ndarray] = []  # per segment: its chunks live in this generation
        self._excluded: list[np.ndarray] = []  # per segment: its rows deleted (for FAISS)
        self._vectors: LiveVectors | None = None
        self._ids: np.ndarray | None = None
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (order, ids[order])
        self._pin: IO[bytes] | None = None  # shared lock on the manifest while in use
        self._filters = FilterMasks()

    # -- opening

    @classmethod
    def open(
        cls,
        root: Path,
        settings: Settings | None = None,
        dim: int | None = None,
        fingerprint: str = "",
        *,
        verify: bool = True,
    ) -> LocalIndex:
        """Open the live generation; with settings, refuse an index built differently.
        ``verify``: check that every file the manifest records is there with its size
        (:func:`qa.index.check.check_sizes`; a rebuild reads what it can of a damaged index).

        The generation is pinned (a shared lock on its manifest) while this object lives, so a
        writer's garbage collection never removes it under the reader (see collect_garbage).
        """
        for _ in range(5):  # the generation read from CURRENT may be collected before the pin
            generation = live_generation(root)
            if generation is None:
                raise QAError(f"no index at {root}: run `qa ingest` first")
            try:
                pin = pin_generation(generation)
            except FileNotFoundError:
                continue
            break
        else:
            raise QAError(f"the index at {root} keeps changing under this reader: try again")
        manifest = check.pinned_manifest(root, generation, pin, SCHEMA_VERSION, verify)
        index = cls(root, generation, manifest)
        index._pin = pin
        if settings is not None:
            index.check(settings, dim or index.build.dim, fingerprint)
        return index

    def close(self) -> None:
        """Release the generation (a writer may then collect it)."""
        pin = getattr(self, "_pin", None)
        if pin is not None:
            pin.close()
            self._pin = None

    def check(self, settings: Settings, dim: int, fingerprint: str = "") -> None:
        """Raise a clear error when the index was built with another model or chunking."""
        wanted = BuildSettings.from_settings(settings, dim, fingerprint)
        diffs = self.build.differences(wanted)
        if diffs:
            raise QAError(
                "the index was built with other settings ("
                + "; ".join(diffs)
                + "): run `qa ingest --rebuild` to re-embed the corpus"
            )

    # -- parts, loaded lazily

    def _load(self, load: Callable[[], _T], what: str = "") -> _T:
        """``load()``, with one clear error when the generation vanished while in use (the
        index folder deleted by hand while a command or `qa serve` ran), or when ``what`` (a
        part of it) is damaged."""
        try:
            return load()
        except check.LOAD_ERRORS as exc:
            if (self.path / "manifest.json").is_file():
                what = what or f"a part of {self.path.name}"
                raise check.damaged(
                    self.root, f"{what} does not load ({check.reason(exc)})"
                ) from None
            raise QAError(
                f"the index at {self.root} was deleted or replaced while in use "
                f"({self.path.name} is gone): run the command again, after `qa ingest` if "
                "the index is missing"
            ) from None

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])

    @property
    def db(self) -> chunk_store.ReadConnection:
        # One read-only connection per thread: sqlite connections must not be shared.
        conn = getattr(self._local, "db", None)
        if conn is None:
            store = self.root / self.manifest["store"]
            what = f"the chunk store {store.name}"
            if not store.is_file():
                self._load(lambda: store.open("rb"), what)  # the one error when it vanished
            # The damage callback holds no reference to self: a reader dropped without
            # close() must still release its pin when its last reference goes.
            root = self.root
            conn = self._load(
                lambda: chunk_store.open_for_read(
                    store,
                    self.generation,
                    lambda exc: check.damaged(root, f"the chunk store {store.name} fails ({exc})"),
                ),
                what,
            )
            self._local.db = conn
        return conn

    @property
    def segments(self) -> list[Segment]:
        """The generation's segments, with which of their chunks are live."""
        with self._lock:
            if self._segments is None:
                self._segments = self._load(self._open_segments, "the segments")
            return self._segments

    @property
    def deleted(self) -> np.ndarray:
        """Chunk rows of the segments that this generation no longer has, sorted."""
        return self._load(
            lambda: np.load(self.path / "deleted.npy"), f"{self.path.name}/deleted.npy"
        )

    def _open_segments(self) -> list[Segment]:
        segments = [Segment(self.path / name) for name in self.manifest["segments"]]
        deleted = self.deleted
        self._masks = [live_mask(s, deleted) for s in segments]
        self._excluded = [s.ids[~m] for s, m in zip(segments, self._masks, strict=True)]
        live = [s.ids[m] for s, m in zip(segments, self._masks, strict=True)]
        self._ids = np.concatenate(live) if live else np.zeros(0, np.int64)
        return segments

    @property
    def vectors(self) -> LiveVectors:
        """The live vectors by position (a view over the segments' memory maps: a query reads
        only the rows it scores)."""
        segments = self.segments
        with self._lock:
            if self._vectors is None:
                self._vectors = self._load(
                    lambda: LiveVectors(segments, self._masks, self.build.dim), "the vectors"
                )
            return self._vectors

    @property
    def ids(self) -> np.ndarray:
        """Chunk row id of each position (the segments' live chunks, in order)."""
        _ = self.segments  # loads the ids with the segments
        assert self._ids is not None
        return self._ids

    def row_of(self, chunk_row: int) -> int:
        """Position of a chunk row id in vectors/ids/BM25."""
        ids = self.ids
        with self._lock:
            if self._sorted is None:
                order = np.argsort(ids, kind="stable")
                self._sorted = (order, ids[order])
        order, ordered = self._sorted
        at = int(np.searchsorted(ordered, chunk_row))
        if at == len(ordered) or ordered[at] != chunk_row:
            raise KeyError(chunk_row)
        return int(order[at])

    @property
    def bm25(self) -> Any:
        segments = self.segments
        with self._lock:
            if self._bm25 is None:
                from qa.index.bm25_read import BM25Scores  # no bm25s import at question time

                postings = [
                    self._load(functools.partial(getattr, s, "postings"), f"{s.path.name}/bm25")
                    for s in segments
                ]
                self._bm25 = BM25Scores(postings, positions(self._masks))
        return self._bm25

    def _dense_indexes(self) -> list[Any]:
        return [
            self._load(functools.partial(getattr, s, "dense"), f"{s.path.name}/dense.faiss")
            for s in self.segments
        ]

    def published_days(self, chunk_rows: Sequence[int]) -> list[int]:
        """YYYYMMDD publication day of each chunk's article (0 when undated)."""
        return self._filters.published_days(self, chunk_rows)

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """Which positions ``filters`` let through, as a boolean mask; None when all pass."""
        return self._filters.allowed(self, filters)

    # -- queries

    @property
    def version(self) -> str:
        """The generation read: a new one means `qa ingest` has written since."""
        return self.path.name

    def __len__(self) -> int:
        return int(self.manifest["counts"]["chunks"])

    def articles(self) -> int:
        return int(self.manifest["counts"]["articles"])

    def may_match(self, filters: Filters | None) -> bool:
        """False when ``filters`` leave nothing to search (then the question is not embedded)."""
        allowed = self.allowed(filters)
        return allowed is None or bool(allowed.any())

    def candidates(
        self, query: str, vector: np.ndarray, filters: Filters | None, settings: RetrievalSettings
    ) -> list[Candidate]:
        return local_candidates(self, query, vector, filters, settings)

    def documents(self) -> list[tuple[DocInfo, str, int]]:
        return documents_info(self)

    def dense_search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk row id, cosine) of the nearest chunks among the ``allowed`` positions."""
        if len(self) == 0:
            return []
        import faiss

        # One OpenMP thread: one query is too small to share out, and on a busy machine a
        # descheduled worker stalls the other (37k chunks: p50 58 -> 17 ms, bench/bench_ask.py).
        faiss.omp_set_num_threads(1)
        if allowed is None:
            return self._dense_search(query, k, None)
        positions = np.flatnonzero(allowed)
        if positions.size == 0:
            return []
        # The filter runs inside FAISS (an id selector), so the k best allowed chunks come back
        # however few the filter keeps.
        hits = self._dense_search(query, k, self.ids[positions])
        if len(hits) < min(k, positions.size) and positions.size <= EXACT_FILTERED_MAX:
            # An approximate index probes a few lists; a narrow filter can leave them nearly
            # empty. Few allowed vectors are cheap to score exactly.
            cos = self.vectors[positions] @ query.reshape(-1)
            best = np.argsort(-cos, kind="stable")[:k]
            return [(int(self.ids[positions[b]]), float(cos[b])) for b in best]
        return hits

    def _dense_search(
        self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """Each segment's best k (deleted rows excluded), then the best k of those: the results
        of one index over the live chunks."""
        filtered = allowed_ids is not None  # allowed ids are live: nothing to exclude
        found = [
            vectors.search(
                dense, query.reshape(1, -1), k, allowed_ids, None if filtered else excluded
            )
            for dense, excluded in zip(self._dense_indexes(), self._excluded, strict=True)
        ]
        scores = np.concatenate([s[0] for s, _ in found]) if found else np.zeros(0)
        ids = np.concatenate([i[0] for _, i in found]) if found else np.zeros(0, np.int64)
        best = np.argsort(-scores, kind="stable")[:k]
        return [(int(ids[b]), float(scores[b])) for b in best if ids[b] >= 0]

    def bm25_search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk row id, BM25 score) of the best keyword matches with a positive score among
        the ``allowed`` positions (a mask on the scores before the top k are taken)."""
        tokens = bm25_tokens(query)
        if not tokens or len(self) == 0:
            return []
        positions, scores = self.bm25.top_k(tokens, min(k, len(self)), allowed)
        return [
            (int(self.ids[p]), float(s)) for p, s in zip(positions, scores, strict=True) if s > 0
        ]

    def term_weights(self, terms: Iterable[str]) -> dict[str, float]:
        """Inverse document frequency of stemmed terms over the whole index (BM25's own
        counts): log(1 + N / (1 + df)), so a word every passage has weighs little."""
        terms = list(terms)
        if not terms or len(self) == 0:
            return {t: 1.0 for t in terms}
        counts = self.bm25.document_frequency(terms)
        n = len(self)
        return {t: math.log(1.0 + n / (1.0 + counts[t])) for t in terms}

    def cosine(self, query: np.ndarray, chunk_rows: Sequence[int]) -> list[float]:
        """Exact cosine of the query with stored chunk vectors (for hits BM25 found)."""
        rows = [self.row_of(r) for r in chunk_rows]
        return [float(v) for v in self.vectors[rows] @ query.reshape(-1)]

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
        files = [*self.path.rglob("*"), *self.root.glob(self.manifest["store"] + "*")]
        inodes = {p.stat().st_ino: p.stat().st_size for p in files if p.is_file()}
        size = sum(inodes.values())  # a segment shared by hard links counts once
        return {
            "index": str(self.root),
            "generation": self.path.name,
            "articles": self.manifest["counts"]["articles"],
            "chunks": self.manifest["counts"]["chunks"],
            "build": self.manifest["build"],
            "vector_index": self.manifest.get("vector_index", {}),
            "segments": len(self.manifest["segments"]),
            "deleted": self.manifest.get("deleted", 0),
            "bytes_on_disk": size,
            "created": self.manifest.get("created"),
        }


def documents_info(index: LocalIndex) -> list[tuple[DocInfo, str, int]]:
    """Every indexed article: its metadata, the file it was read from and its chunk count,
    in id order (for `qa articles list`)."""
    docs = index.manifest["docs"]
    rows = index.db.execute(
        "SELECT id, title, published, source, url, path FROM docs ORDER BY id"
    ).fetchall()
    return [(DocInfo(r[0], r[1], r[2], r[3], r[4]), r[5], docs[r[0]]["chunks"]) for r in rows]
