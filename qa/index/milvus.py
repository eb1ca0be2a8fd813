"""The Milvus backend's reader: hybrid search inside the engine, filters as scalar expressions
(the database layout is described in :mod:`qa.index.milvus_db`).

A question runs as one ``hybrid_search``: the dense request and the BM25 request, each with the
filter expression, fused by Milvus's RRF ranker (``1 / (rrf_k + rank)`` per list, the same
formula as :mod:`qa.index.fusion`). Unequal dense and BM25 weights are beyond that ranker: then
both lists are searched in the engine and fused by :func:`qa.index.fusion.rrf`.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from qa.core.config import RetrievalSettings, Settings
from qa.core.types import Chunk, DocInfo, Document, Filters, QAError
from qa.index.bm25 import bm25_tokens
from qa.index.build import BuildSettings
from qa.index.fusion import Candidate, rrf
from qa.index.milvus_db import (
    all_rows,
    clear_errors,
    connect,
    ensure_loaded,
    filter_expression,
    lite_path,
    names,
    quoted,
    read_live,
)
from qa.index.milvus_terms import TermCounts

CHUNK_FIELDS = [
    "pk",
    "chunk_id",
    "doc_id",
    "ordinal",
    "text",
    "span_start",
    "span_end",
    "title",
    "published_text",
    "source",
    "url",
]
DOC_FIELDS = ["doc_id", "title", "published_text", "source", "url", "path", "chunks"]


def live_version(settings: Settings) -> str | None:
    live = read_live(connect(settings), settings)
    return f"g{live['generation']}" if live else None


class MilvusIndex:
    """A view of the live generation in Milvus; safe to share between threads. Implements the
    :class:`qa.index.Index` protocol; chunk keys are the 63-bit primary keys."""

    backend = "milvus"

    def __init__(self, client: Any, settings: Settings, live: dict[str, Any]) -> None:
        self.client = client
        self.settings = settings
        self.generation = int(live["generation"])
        self.build = BuildSettings(**live["build"])
        self.created = live.get("created", "")
        self.chunk_collection, self.doc_collection = names(settings, self.generation)
        for name in (self.chunk_collection, self.doc_collection):
            ensure_loaded(client, name)
        self._days: dict[int, int] = {}  # publication days seen in search results
        self._df: dict[str, int] = {}  # passages holding a term
        self._lock = threading.Lock()

    @classmethod
    @clear_errors
    def open(
        cls,
        settings: Settings,
        *,
        check: Settings | None = None,
        dim: int | None = None,
        fingerprint: str = "",
    ) -> MilvusIndex:
        client = connect(settings)
        live = read_live(client, settings)
        if live is None:
            raise QAError(
                f"no index in Milvus at {settings.index.milvus.uri} (collection "
                f"{settings.index.milvus.collection}): run `qa ingest` first"
            )
        index = cls(client, settings, live)
        if check is not None:
            index.check(check, dim or index.build.dim, fingerprint)
        return index

    def check(self, settings: Settings, dim: int, fingerprint: str = "") -> None:
        """The same refusal as the local backend for another model or chunking."""
        diffs = self.build.differences(BuildSettings.from_settings(settings, dim, fingerprint))
        if diffs:
            raise QAError(
                "the index was built with other settings ("
                + "; ".join(diffs)
                + "): run `qa ingest --rebuild` to re-embed the corpus"
            )

    def close(self) -> None:
        """Nothing to release: the client is shared by the process."""

    @property
    def version(self) -> str:
        return f"g{self.generation}"

    def _count(self, collection: str, expr: str = "") -> int:
        rows = self.client.query(collection, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    @clear_errors
    def __len__(self) -> int:
        return self._count(self.chunk_collection)

    @clear_errors
    def articles(self) -> int:
        return self._count(self.doc_collection, "part == 0")

    def may_match(self, filters: Filters | None) -> bool:
        return True  # the engine applies the filter; an empty result costs one search

    # -- search

    @clear_errors
    def candidates(
        self, query: str, vector: np.ndarray, filters: Filters | None, settings: RetrievalSettings
    ) -> list[Candidate]:
        from pymilvus import AnnSearchRequest, RRFRanker

        expr = filter_expression(filters)
        n = settings.candidates
        qv = np.asarray(vector, dtype=np.float32).reshape(-1)
        keywords = " ".join(bm25_tokens(query))
        dense_request = {
            "data": [qv.tolist()],
            "anns_field": "vector",
            "param": self._dense_params(n),
            "limit": n,
        }
        sparse_request = {"data": [keywords], "anns_field": "sparse", "param": {}, "limit": n}
        fields = ["vector", "published"]
        use_dense = settings.fusion != "bm25"
        use_bm25 = settings.fusion != "dense" and bool(keywords)
        rows: dict[int, dict[str, Any]] = {}
        if use_dense and use_bm25 and settings.dense_weight == settings.bm25_weight:
            requests = [
                AnnSearchRequest(**dense_request, expr=expr or None),
                AnnSearchRequest(**sparse_request, expr=expr or None),
            ]
            found = self.client.hybrid_search(
                self.chunk_collection,
                requests,
                RRFRanker(settings.rrf_k),
                limit=2 * n,
                output_fields=fields,
            )[0]
            fused: dict[int, list[Any]] = {}
            for hit in found:
                rows[hit["pk"]] = hit["entity"]
                fused[hit["pk"]] = [settings.dense_weight * float(hit["distance"]), None, None]
        else:
            dense = self._search(dense_request, expr, fields, rows) if use_dense else []
            keyword = self._search(sparse_request, expr, fields, rows) if use_bm25 else []
            fused = rrf(dense, keyword, settings)
        out = []
        with self._lock:
            if len(self._days) > 200_000:
                self._days.clear()
            for pk, (score, _, bm25) in fused.items():
                entity = rows[pk]
                self._days[pk] = int(entity["published"])
                cosine = float(np.asarray(entity["vector"], dtype=np.float32) @ qv)
                out.append(Candidate(int(pk), float(score), cosine, bm25))
        return out

    def _dense_params(self, n: int) -> dict[str, Any]:
        kind = self.settings.index.milvus.index_type
        params: dict[str, Any] = {"metric_type": "COSINE"}
        if kind == "HNSW":
            params["params"] = {"ef": max(64, n)}
        elif kind == "IVF_FLAT":
            params["params"] = {"nprobe": 16}
        return params

    def _search(
        self, request: dict[str, Any], expr: str, fields: list[str], rows: dict[int, Any]
    ) -> list[tuple[int, float]]:
        found = self.client.search(
            self.chunk_collection,
            data=request["data"],
            anns_field=request["anns_field"],
            search_params=request["param"],
            limit=request["limit"],
            filter=expr,
            output_fields=fields,
        )[0]
        ranked = []
        for hit in found:
            rows[hit["pk"]] = hit["entity"]
            # Milvus Lite 3.2 reports BM25 as a negated distance; a server, as the score.
            ranked.append((int(hit["pk"]), abs(float(hit["distance"]))))
        return ranked

    @clear_errors
    def term_weights(self, terms: Iterable[str]) -> dict[str, float]:
        """The local backend's idf, log(1 + N / (1 + df)), with df read from the table the
        writer keeps (:mod:`qa.index.milvus_terms`), or counted by TEXT_MATCH while that is
        not exact (after a killed ingest); counts are kept while this view lives (the
        Assistant re-opens it after a rebuild; an incremental ingest shifts them little)."""
        terms = list(terms)
        n = len(self)
        if not terms or n == 0:
            return {t: 1.0 for t in terms}
        with self._lock:
            missing = [t for t in terms if t not in self._df]
        counts = (
            TermCounts(self.client, self.settings, self.generation).lookup(missing)
            if missing
            else {}
        )
        for term in missing:
            if counts is not None:
                count = counts[term]
            elif not re.fullmatch(r"\w+", term):
                count = 0  # not a keyword token: no passage holds it
            else:  # Milvus Lite scans every passage for each term: seconds at 10,000
                count = self._count(self.chunk_collection, f"TEXT_MATCH(keywords, '{term}')")
            with self._lock:
                self._df[term] = count
        with self._lock:
            return {t: math.log(1.0 + n / (1.0 + self._df[t])) for t in terms}

    # -- stored rows

    @clear_errors
    def published_days(self, chunk_rows: Sequence[int]) -> list[int]:
        with self._lock:
            missing = [r for r in chunk_rows if r not in self._days]
        if missing:
            rows = self.client.query(
                self.chunk_collection, filter=f"pk in {list(missing)}", output_fields=["published"]
            )
            with self._lock:
                self._days.update({int(r["pk"]): int(r["published"]) for r in rows})
        with self._lock:
            return [self._days.get(r, 0) for r in chunk_rows]

    @clear_errors
    def chunks(self, chunk_rows: Sequence[int]) -> dict[int, tuple[Chunk, DocInfo]]:
        if not chunk_rows:
            return {}
        rows = self.client.query(
            self.chunk_collection,
            filter=f"pk in {[int(r) for r in chunk_rows]}",
            output_fields=CHUNK_FIELDS,
        )
        return {
            int(r["pk"]): (
                Chunk(
                    r["chunk_id"],
                    r["doc_id"],
                    int(r["ordinal"]),
                    r["text"],
                    int(r["span_start"]),
                    int(r["span_end"]),
                ),
                DocInfo(r["doc_id"], r["title"], r["published_text"], r["source"], r["url"]),
            )
            for r in rows
        }

    @clear_errors
    def document(self, doc_id: str) -> Document | None:
        parts = self.client.query(
            self.doc_collection,
            filter=f"doc_id == {quoted(doc_id)}",
            output_fields=["part", "piece", "parts"],
        )
        parts.sort(key=lambda r: r["part"])
        if not parts or len(parts) != parts[0]["parts"]:
            return None  # absent, or half written by a killed ingest (the next one redoes it)
        d = json.loads("".join(p["piece"] for p in parts))
        segments = tuple((int(s), int(e)) for s, e in d["segments"])
        return Document(
            doc_id,
            d["title"],
            d["text"],
            segments,
            d["published"],
            d["source"],
            d["url"],
            d["path"],
        )

    @clear_errors
    def documents(self) -> list[tuple[DocInfo, str, int]]:
        rows = all_rows(self.client, self.doc_collection, "part == 0", DOC_FIELDS)
        rows.sort(key=lambda r: r["doc_id"])
        return [
            (
                DocInfo(r["doc_id"], r["title"], r["published_text"], r["source"], r["url"]),
                r["path"],
                int(r["chunks"]),
            )
            for r in rows
        ]

    def status(self) -> dict[str, Any]:
        path = lite_path(self.settings)
        size = 0
        if path is not None and path.exists():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return {
            "backend": "milvus",
            "index": self.settings.index.milvus.uri,
            "generation": self.chunk_collection,
            "articles": self.articles(),
            "chunks": len(self),
            "build": self.build.__dict__,
            "vector_index": {"type": self.settings.index.milvus.index_type, "metric": "COSINE"},
            "bytes_on_disk": size,
            "created": self.created,
        }
