"""The Milvus database qa writes and reads: the connection (Milvus Lite for a .db path, a server
for a URL), one-line errors, the collections and their schema, the live record, filters as
expressions, and reading many rows.

One Milvus database holds, per ``index.milvus.collection`` (say ``qa``):

    qa_meta            key -> JSON: "live" names the generation read and its build settings
    qa_g<N>_chunks     one row per passage: its vector, the BM25 sparse vector Milvus derives
                       from ``keywords`` (a Function), the article's metadata for display, and
                       ``published`` (YYYYMMDD, 0 undated) and ``source_key`` for filters
    qa_g<N>_docs       one row per article part: the stored article as JSON split in pieces
                       (a VARCHAR holds 64 KB), part 0 also carrying its hash and state
    qa_g<N>_terms      term -> passages holding it, kept by the writer for the term weights
                       (:mod:`qa.index.milvus_terms`)

``keywords`` is the text the local BM25 indexes (title, date, passage) already analysed by
:func:`qa.index.bm25.bm25_tokens` (lower-cased, stop words out, Snowball stems), so both
backends count the same terms: one analysis rule, and Milvus Lite has no stemming filter.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from qa.core.config import Settings
from qa.core.extras import require
from qa.core.types import Filters, QAError
from qa.index.build import BuildSettings
from qa.index.filter_masks import day_number

TEXT_MAX = 65_535  # bytes a VARCHAR holds
_F = TypeVar("_F", bound=Callable[..., Any])
TOKEN_ENV = "QA_MILVUS_TOKEN"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")
_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()
_loaded: set[tuple[int, str]] = set()


def clear_errors(func: _F) -> _F:
    """Milvus errors become one-line QAErrors (the CLI prints them, the server returns them)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pymilvus.exceptions import MilvusException

        try:
            return func(*args, **kwargs)
        except MilvusException as exc:
            raise QAError(f"Milvus: {exc.message} (code {exc.code})") from None

    return wrapper  # type: ignore[return-value]


def lite_path(settings: Settings) -> Path | None:
    """The Milvus Lite database file, or None when the URI names a server."""
    uri = settings.index.milvus.uri
    if uri.startswith(("http://", "https://", "tcp://", "unix:")):
        return None
    if not uri.endswith(".db"):
        raise QAError(
            f"index.milvus.uri = {uri!r} is neither a Milvus Lite file (a path ending in .db) "
            "nor a server address (http://host:19530)"
        )
    return settings.resolve(Path(uri))


def connect(settings: Settings) -> Any:
    """One client per database and process (Milvus Lite serves a file from one process)."""
    milvus = settings.index.milvus
    if not _NAME.fullmatch(milvus.collection):
        raise QAError(f"index.milvus.collection = {milvus.collection!r}: use letters, digits and _")
    path = lite_path(settings)
    uri = str(path) if path is not None else milvus.uri
    token = os.environ.get(TOKEN_ENV, "")
    with _clients_lock:
        client = _clients.get((uri, token))
        if client is None:
            require("milvus", 'index.backend = "milvus"')
            from pymilvus import MilvusClient
            from pymilvus.exceptions import MilvusException

            # pymilvus logs every failed call with a traceback; qa reports it in one line.
            logging.getLogger("pymilvus").setLevel(logging.CRITICAL)

            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            try:
                client = MilvusClient(uri=uri, token=token, timeout=30)
            except MilvusException as exc:
                raise QAError(f"cannot reach Milvus at {uri}: {exc.message}") from None
            _clients[(uri, token)] = client
    return client


def ensure_loaded(client: Any, collection: str) -> None:
    """Load a collection for search once per process (Milvus Lite starts with all released;
    a server keeps a loaded collection loaded)."""
    from pymilvus.client.types import LoadState

    if (id(client), collection) in _loaded:
        return
    if client.get_load_state(collection)["state"] != LoadState.Loaded:
        client.load_collection(collection)
    with _clients_lock:
        _loaded.add((id(client), collection))


def names(settings: Settings, generation: int) -> tuple[str, str]:
    """(chunks collection, docs collection) of one generation."""
    prefix = f"{settings.index.milvus.collection}_g{generation}"
    return f"{prefix}_chunks", f"{prefix}_docs"


def meta_name(settings: Settings) -> str:
    return f"{settings.index.milvus.collection}_meta"


def read_live(client: Any, settings: Settings) -> dict[str, Any] | None:
    """The live generation's record (generation, build, created), None before any ingest."""
    meta = meta_name(settings)
    if not client.has_collection(meta):
        return None
    ensure_loaded(client, meta)
    rows = client.query(meta, filter='key == "live"', output_fields=["value"])
    return json.loads(rows[0]["value"]) if rows else None


@clear_errors
def quoted(value: str) -> str:
    """A string literal for a filter expression (JSON escaping is what Milvus parses)."""
    return json.dumps(value, ensure_ascii=False)


def filter_expression(filters: Filters | None) -> str:
    """The filters as a Milvus boolean expression over ``published`` and ``source_key``,
    with the local backend's rules: undated articles pass the as-of bound, not a window."""
    if filters is None:
        return ""
    parts = []
    if filters.as_of is not None:
        parts.append(f"(published == 0 or published <= {day_number(filters.as_of)})")
    if filters.until is not None:
        parts.append(f"(published > 0 and published <= {day_number(filters.until)})")
    if filters.since is not None:
        parts.append(f"published >= {day_number(filters.since)}")
    if filters.sources:
        parts.append(f"source_key in [{', '.join(quoted(s) for s in filters.sources)}]")
    return " and ".join(parts)


def all_rows(
    client: Any, collection: str, expr: str, fields: list[str], batch: int = 5000
) -> list[dict[str, Any]]:
    """Every row matching ``expr``, read in batches (a plain query stops at 16,384 rows)."""
    found: list[dict[str, Any]] = []
    iterator = client.query_iterator(
        collection, batch_size=batch, filter=expr, output_fields=fields
    )
    try:
        while page := iterator.next():
            found.extend(page)
    finally:
        iterator.close()
    return found


# -- collections


def create_generation(client: Any, settings: Settings, generation: int, dim: int) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    chunks_name, docs_name = names(settings, generation)
    for name in (chunks_name, docs_name):
        if client.has_collection(name):
            client.drop_collection(name)
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("pk", DataType.INT64, is_primary=True)
    for name in (
        "doc_id",
        "doc_hash",
        "chunk_id",
        "text",
        "title",
        "published_text",
        "source",
        "source_key",
        "url",
    ):
        s.add_field(name, DataType.VARCHAR, max_length=TEXT_MAX)
    for name in ("ordinal", "span_start", "span_end", "published"):
        s.add_field(name, DataType.INT64)
    # Already analysed by bm25_tokens: the analyzer only splits on spaces (a stop word list
    # that matches nothing replaces Milvus Lite's default one).
    s.add_field(
        "keywords",
        DataType.VARCHAR,
        max_length=TEXT_MAX,
        enable_analyzer=True,
        enable_match=True,  # TEXT_MATCH counts the passages holding a term (term_weights)
        analyzer_params={
            "tokenizer": "standard",
            "filter": [{"type": "stop", "stop_words": ["qa_no_stop"]}],
        },
    )
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    s.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["keywords"],
            output_field_names=["sparse"],
        )
    )
    params = client.prepare_index_params()
    kind = settings.index.milvus.index_type
    build = {"HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 1024}}.get(kind, {})
    params.add_index("vector", index_type=kind, metric_type="COSINE", params=build)
    # bm25s's defaults, which the local backend uses.
    params.add_index(
        "sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": 1.5, "bm25_b": 0.75},
    )
    params.add_index("doc_id", index_type="INVERTED")
    params.add_index("published", index_type="INVERTED")
    params.add_index("source_key", index_type="INVERTED")
    client.create_collection(chunks_name, schema=s, index_params=params, consistency_level="Strong")

    d = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    d.add_field("key", DataType.VARCHAR, is_primary=True, max_length=TEXT_MAX)
    for name in (
        "doc_id",
        "doc_hash",
        "state",
        "piece",
        "title",
        "published_text",
        "source",
        "url",
        "path",
    ):
        d.add_field(name, DataType.VARCHAR, max_length=TEXT_MAX)
    for name in ("part", "parts", "chunks"):
        d.add_field(name, DataType.INT64)
    d.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # a collection needs a vector field
    dparams = client.prepare_index_params()
    dparams.add_index("unused", index_type="FLAT", metric_type="L2")
    dparams.add_index("doc_id", index_type="INVERTED")
    client.create_collection(docs_name, schema=d, index_params=dparams, consistency_level="Strong")


def ensure_meta(client: Any, settings: Settings) -> str:
    from pymilvus import DataType, MilvusClient

    meta = meta_name(settings)
    if not client.has_collection(meta):
        m = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        m.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        m.add_field("value", DataType.VARCHAR, max_length=TEXT_MAX)
        m.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
        params = client.prepare_index_params()
        params.add_index("unused", index_type="FLAT", metric_type="L2")
        client.create_collection(meta, schema=m, index_params=params, consistency_level="Strong")
    return meta


def set_live(client: Any, settings: Settings, generation: int, build: BuildSettings) -> None:
    value = {
        "generation": generation,
        "build": asdict(build),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    client.upsert(
        ensure_meta(client, settings),
        [{"key": "live", "value": json.dumps(value), "unused": [0.0, 0.0]}],
    )


def drop_other_generations(client: Any, settings: Settings, keep: int | None) -> None:
    """Drop the collections of generations other than ``keep`` (a killed or replaced rebuild's)."""
    prefix = f"{settings.index.milvus.collection}_g"
    for name in client.list_collections():
        number = name[len(prefix) :].split("_", 1)[0]
        if name.startswith(prefix) and number.isdigit() and int(number) != keep:
            client.drop_collection(name)
