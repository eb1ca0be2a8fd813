"""Checks of an index that hold for either backend (tests/index/test_index_backends.py and
tests/index/test_milvus_crash.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from index_helpers import FAKE, expected_chunks

from qa.core.config import Settings
from qa.embedding.fake import FakeEmbedder
from qa.index import Index, open_index, scope, sync
from qa.ingest import read_paths


def stored_chunks(index: Index) -> list[tuple[str, str]]:
    """(chunk id, text) of every stored chunk, duplicates included, read from the backend's
    own storage (not through search)."""
    if index.backend == "milvus":
        from qa.index.milvus_db import all_rows

        rows = all_rows(index.client, index.chunk_collection, "", ["chunk_id", "text"])  # type: ignore[attr-defined]
        return sorted((r["chunk_id"], r["text"]) for r in rows)
    return sorted(index.db.execute("SELECT id, text FROM chunks").fetchall())  # type: ignore[attr-defined]


def expected(folder: Path, settings: Settings = FAKE) -> dict[str, int]:
    docs = read_paths([folder]).documents
    return {d.id: expected_chunks(d, settings) for d in docs}


def check(settings: Settings, wanted: dict[str, int]) -> Index:
    """The index holds exactly ``wanted`` (article -> chunk count): each chunk once, with
    ordinals 0..n-1, and the counts every reader reports agree."""
    index = open_index(settings, dim=64)
    chunks = stored_chunks(index)
    ids = [c for c, _ in chunks]
    assert len(ids) == len(set(ids)), "a chunk is stored twice"
    per_doc: dict[str, list[int]] = {}
    for chunk_id in ids:
        doc_id, _, ordinal = chunk_id.rpartition(":")
        per_doc.setdefault(doc_id, []).append(int(ordinal))
    assert {d: sorted(o) for d, o in per_doc.items()} == {
        d: list(range(n)) for d, n in wanted.items() if n
    }
    listed = {info.id: n for info, _, n in index.documents()}
    assert listed == wanted
    assert len(index) == len(ids) and index.articles() == len(wanted)
    if index.backend == "milvus":
        check_term_counts(index)
    return index


def check_term_counts(index: Any) -> None:
    """The writer's table of passages per term is exact: the counts of the stored passages."""
    from qa.index.milvus_db import all_rows
    from qa.index.milvus_terms import TermCounts, count_terms

    terms = TermCounts(index.client, index.settings, index.generation)
    assert terms.exact()
    rows = all_rows(index.client, index.chunk_collection, "", ["keywords"])
    assert terms.stored() == dict(count_terms(r["keywords"] for r in rows))


def run(settings: Settings, folders: list[Path], embedder: Any = None, **kw: Any) -> Any:
    docs = read_paths(folders).documents
    root = settings.index_dir
    return sync(root, docs, embedder or FakeEmbedder(name="fake"), settings,
                in_scope=scope(folders), **kw)  # fmt: skip
