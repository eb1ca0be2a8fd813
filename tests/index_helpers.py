"""Helpers shared by the index tests: small generated articles, an ingest with the fake
embedder, and a consistency check of every part of a generation."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from conftest import fake_settings

from qa.core.config import Settings
from qa.core.types import Document
from qa.embedding.fake import FakeEmbedder
from qa.index import LocalIndex, SyncReport, scope, sync
from qa.ingest import read_paths
from qa.ingest.chunk import chunks_for, embed_text, embedded_title
from qa.retrieval.retriever import Retriever

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
PYTHON = sys.executable

FAKE = fake_settings(max_tokens=60, overlap_tokens=15)


class CountingEmbedder:
    """Wraps an embedder and records how many texts it was asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
        self.identity = inner.identity
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.embedded.extend(texts)
        return self.inner.embed(texts, progress=progress)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


def article(title: str, topic: str, n: int = 12, extra: str = "") -> str:
    body = " ".join(
        f"Report {i} about {topic} notes that the {topic} talks continued on day {i}."
        for i in range(n)
    )
    return f'---\ntitle: "{title}"\ndate: 2025-06-2{n % 10}\n---\n{body}\n\n{extra}\n'


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def make_corpus(folder: Path) -> Path:
    write(folder, "alpha.md", article("Alpha summit", "alpaca", extra="A walrus was seen."))
    write(folder, "bravo.md", article("Bravo treaty", "badger"))
    write(folder, "charlie.md", article("Charlie trade", "cheetah", n=20))
    return folder


def ingest(
    root: Path,
    folders: Sequence[Path],
    embedder: Any = None,
    settings: Settings = FAKE,
    rebuild: bool = False,
) -> SyncReport:
    result = read_paths(list(folders))
    assert result.skipped == []
    return sync(
        root,
        result.documents,
        embedder or FakeEmbedder(name="fake"),
        settings,
        in_scope=scope(folders),
        rebuild=rebuild,
    )


def generations(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def consistent(root: Path, embedder: Any = None, sample: int | None = None) -> LocalIndex:
    """Open the live generation and check that every part holds exactly the same chunks."""
    index = LocalIndex.open(root)
    m = index.manifest
    db = index.db
    rows = [r for (r,) in db.execute("SELECT row FROM chunks ORDER BY row")]
    chunk_ids = [c for (c,) in db.execute("SELECT id FROM chunks")]
    n = len(rows)
    assert len(set(chunk_ids)) == n, "duplicate chunk ids"
    assert m["counts"]["chunks"] == len(index) == n
    assert index.vectors.shape == (n, m["build"]["dim"])
    assert index.vectors.dtype == np.float32
    ids = index.ids.tolist()
    assert len(ids) == len(set(ids)) == n
    assert sorted(ids) == rows
    # Every segment's FAISS structure holds exactly its own rows; the live ones are the index's.
    deleted = set(index.deleted.tolist())
    assert deleted <= {int(r) for s in index.segments for r in s.ids}
    for segment in index.segments:
        assert segment.dense.ntotal == len(segment.ids) == len(segment.vectors)
        assert sorted(_faiss_ids(segment.dense)) == sorted(segment.ids.tolist())
        assert segment.postings.lengths.shape == (len(segment.ids),)
    assert sorted(r for s in index.segments for r in s.ids.tolist() if r not in deleted) == rows
    assert m["vector_index"]["n"] == n and m["deleted"] == len(deleted)
    if n:
        assert index.bm25.num_docs == n
        assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-4)
    assert m["next_row"] > max(rows, default=0)
    docs = sorted(d for (d,) in db.execute("SELECT id FROM docs"))
    assert docs == sorted(m["docs"]) and m["counts"]["articles"] == len(docs)
    per_doc = dict(db.execute("SELECT doc_id, count(*) FROM chunks GROUP BY doc_id").fetchall())
    assert per_doc == {d: meta["chunks"] for d, meta in m["docs"].items() if meta["chunks"]}
    for doc_id in docs:  # ordinals 0..k-1 and ids "doc:ordinal"
        got = db.execute(
            "SELECT id, ordinal FROM chunks WHERE doc_id=? ORDER BY ordinal", (doc_id,)
        ).fetchall()
        assert got == [(f"{doc_id}:{i}", i) for i in range(len(got))]
    if embedder is not None and n:
        # Row i of vectors.npy really is the embedding of chunk ids[i].
        by_row = {r: (t, title) for r, t, title in _chunk_texts(index)}
        check = ids if sample is None else ids[:: max(1, n // sample)]
        texts = [
            embed_text(
                embedded_title(by_row[r][1], embedder.count_tokens),
                by_row[r][0],
                m["build"]["embed_title"],
            )
            for r in check
        ]
        again = embedder.embed(texts)
        stored = np.asarray(index.vectors[[index.row_of(r) for r in check]])
        assert np.allclose(again, stored, atol=1e-4)
    return index


def _faiss_ids(dense: Any) -> list[int]:
    inner = faiss.downcast_index(dense.index) if hasattr(dense, "id_map") else dense
    if hasattr(dense, "id_map"):
        return faiss.vector_to_array(dense.id_map).tolist()
    invlists = faiss.extract_index_ivf(inner).invlists
    ids: list[int] = []
    for lst in range(invlists.nlist):
        size = invlists.list_size(lst)
        if size:
            ids += faiss.rev_swig_ptr(invlists.get_ids(lst), size).tolist()
    return ids


def _chunk_texts(index: LocalIndex) -> list[tuple[int, str, str]]:
    return index.db.execute(
        "SELECT c.row, c.text, d.title FROM chunks c JOIN docs d ON d.id = c.doc_id"
    ).fetchall()


def doc_chunks(index: LocalIndex, doc_id: str) -> list[str]:
    return [
        t
        for (t,) in index.db.execute(
            "SELECT text FROM chunks WHERE doc_id=? ORDER BY ordinal", (doc_id,)
        )
    ]


def search(root: Path, query: str, settings: Settings = FAKE, embedder: Any = None) -> list[str]:
    index = LocalIndex.open(root, settings, (embedder or FakeEmbedder(name="fake")).dim)
    retriever = Retriever(index, embedder or FakeEmbedder(name="fake"), settings.retrieval)
    return [h.chunk.id for h in retriever.search(query, 5).hits]


def expected_chunks(doc: Document, settings: Settings = FAKE) -> int:
    return len(chunks_for(doc, FakeEmbedder(name="fake"), settings.chunking))
