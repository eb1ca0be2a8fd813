"""Acceptance tests of the on-disk index (qa.index): ingest, incremental sync, scope, crash
safety, settings mismatch and the writer lock.

The bundled corpus is ingested once with the real model (all-MiniLM-L6-v2, loaded once for the
module); the incremental and failure cases use the FakeEmbedder on small generated articles, so
they run in well under a second each. After every write the whole index is checked for
consistency: chunk store, manifest, vectors.npy, ids.npy, FAISS and BM25 hold the same chunks.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
from conftest import fake_settings

import qa.index
import qa.vectors
from qa.chunk import chunks_for, embed_text, embedded_title
from qa.config import Settings
from qa.embed import FakeEmbedder, SentenceTransformerEmbedder
from qa.index import SCHEMA_VERSION, Index, SyncReport, live_generation, scope, sync
from qa.ingest import read_paths
from qa.retrieve import Retriever
from qa.types import Document, QAError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
PYTHON = sys.executable

FAKE = fake_settings(max_tokens=60, overlap_tokens=15)


# ----------------------------------------------------------------------------- helpers


class CountingEmbedder:
    """Wraps an embedder and records how many texts it was asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
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


def consistent(root: Path, embedder: Any = None, sample: int | None = None) -> Index:
    """Open the live generation and check that every part holds exactly the same chunks."""
    index = Index.open(root)
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
    assert index.faiss.ntotal == n
    assert sorted(faiss.vector_to_array(index.faiss.id_map).tolist()) == rows
    assert m["vector_index"]["n"] == n
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


def _chunk_texts(index: Index) -> list[tuple[int, str, str]]:
    return index.db.execute(
        "SELECT c.row, c.text, d.title FROM chunks c JOIN docs d ON d.id = c.doc_id"
    ).fetchall()


def doc_chunks(index: Index, doc_id: str) -> list[str]:
    return [
        t
        for (t,) in index.db.execute(
            "SELECT text FROM chunks WHERE doc_id=? ORDER BY ordinal", (doc_id,)
        )
    ]


def search(root: Path, query: str, settings: Settings = FAKE, embedder: Any = None) -> list[str]:
    index = Index.open(root, settings, (embedder or FakeEmbedder(name="fake")).dim)
    retriever = Retriever(index, embedder or FakeEmbedder(name="fake"), settings.retrieval)
    return [h.chunk.id for h in retriever.search(query, 5).hits]


def expected_chunks(doc: Document, settings: Settings = FAKE) -> int:
    return len(chunks_for(doc, FakeEmbedder(name="fake"), settings.chunking))


# ----------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def real_index(
    real_embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, SyncReport, list[Document]]]:
    root = tmp_path_factory.mktemp("real") / "index"
    documents = read_paths([CORPUS]).documents
    report = sync(root, documents, real_embedder, Settings(), in_scope=scope([CORPUS]))
    yield root, report, documents


@pytest.mark.slow
def test_ingest_bundled_corpus_with_the_real_model(
    real_embedder: SentenceTransformerEmbedder,
    real_index: tuple[Path, SyncReport, list[Document]],
) -> None:
    root, report, documents = real_index
    assert (report.added, report.updated, report.removed, report.unchanged) == (5, 0, 0, 0)
    assert report.articles_total == 5
    assert report.chunks_total == report.chunks_embedded > 5
    assert set(report.timings) == {"chunk_s", "embed_s", "write_s"}

    index = consistent(root, real_embedder, sample=6)
    m = index.manifest
    assert m["schema"] == SCHEMA_VERSION
    assert m["build"] == {
        "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
        "dim": 384,
        "max_tokens": 200,
        "overlap_tokens": 40,
        "embed_title": True,
    }
    assert m["vector_index"]["kind"] == "flat" and m["vector_index"]["dim"] == 384
    assert m["counts"] == {"articles": 5, "chunks": report.chunks_total}
    for doc in documents:
        meta = m["docs"][doc.id]
        assert re.fullmatch(r"[0-9a-f]{64}", meta["hash"])
        assert meta["hash"] == doc.content_hash
        assert meta["path"] == str((CORPUS / f"{doc.id}.md").resolve())
        assert meta["chunks"] >= 1
        stored = index.document(doc.id)
        assert stored is not None and stored.text == doc.text and stored.segments == doc.segments
    # The index opens with the settings it was built with.
    Index.open(root, Settings(), 384)
    status = index.status()
    assert status["articles"] == 5 and status["chunks"] == report.chunks_total
    assert status["bytes_on_disk"] > report.chunks_total * 384 * 4


@pytest.mark.slow
def test_reingest_unchanged_corpus_embeds_nothing_and_writes_nothing(
    real_embedder: SentenceTransformerEmbedder,
    real_index: tuple[Path, SyncReport, list[Document]],
) -> None:
    root, first, _ = real_index
    before_gens = generations(root)
    before_current = (root / "CURRENT").read_text()
    counting = CountingEmbedder(real_embedder)
    report = sync(
        root, read_paths([CORPUS]).documents, counting, Settings(), in_scope=scope([CORPUS])
    )
    assert counting.embedded == []
    assert report.chunks_embedded == 0
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 5)
    assert not report.changed and "nothing to embed" in report.summary()
    assert (report.chunks_total, report.articles_total) == (first.chunks_total, 5)
    assert generations(root) == before_gens
    assert (root / "CURRENT").read_text() == before_current


@pytest.mark.slow
def test_real_index_refuses_other_settings(
    real_index: tuple[Path, SyncReport, list[Document]],
) -> None:
    root, _, _ = real_index
    with pytest.raises(QAError, match=r"qa ingest --rebuild") as info:
        Index.open(root, FAKE, 64)
    assert "embedding_model: index has 'sentence-transformers/all-MiniLM-L6-v2'" in str(info.value)


@pytest.mark.slow
def test_fake_index_rebuilt_with_the_real_model(
    real_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "001.md").write_bytes((CORPUS / "001_b56badeed06a7e90.md").read_bytes())
    root = tmp_path / "index"
    fake_default = replace(Settings(), embedding=replace(Settings().embedding, model="fake"))
    ingest(root, [corpus], FakeEmbedder(name="fake"), fake_default)
    assert Index.open(root).build.embedding_model == "fake"

    with pytest.raises(QAError) as info:
        Index.open(root, Settings(), real_embedder.dim)
    message = str(info.value)
    assert "run `qa ingest --rebuild`" in message
    assert "embedding_model: index has 'fake'" in message and "dim: index has 64" in message

    counting = CountingEmbedder(real_embedder)
    with pytest.raises(QAError, match="qa ingest --rebuild"):
        ingest(root, [corpus], counting, Settings())
    assert counting.embedded == []  # refused before embedding anything

    report = ingest(root, [corpus], counting, Settings(), rebuild=True)
    assert report.added == 1 and report.chunks_embedded == len(counting.embedded) > 0
    index = consistent(root, real_embedder)
    assert index.build.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert index.build.dim == 384
    Index.open(root, Settings(), 384)  # no longer refused


# ----------------------------------------------------------------------------- incremental


@pytest.fixture
def fake_index(tmp_path: Path) -> tuple[Path, Path]:
    corpus = make_corpus(tmp_path / "corpus")
    root = tmp_path / "index"
    report = ingest(root, [corpus])
    assert report.added == 3 and report.chunks_total == report.chunks_embedded
    consistent(root, FakeEmbedder(name="fake"))
    return root, corpus


def test_unchanged_corpus_embeds_nothing(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    before = generations(root)
    fake = FakeEmbedder(name="fake")
    report = ingest(root, [corpus], fake)
    assert fake.calls == [] and report.chunks_embedded == 0 and report.unchanged == 3
    assert generations(root) == before


def test_added_article_embeds_only_its_chunks(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    old = Index.open(root)
    old_chunks = {c.id: (c.text, c.start, c.end) for c, _ in old.iter_chunks()}
    old_rows = set(old.ids.tolist())
    write(corpus, "delta.md", article("Delta pact", "dolphin", n=9))
    doc = next(d for d in read_paths([corpus]).documents if d.id == "delta")

    fake = FakeEmbedder(name="fake")
    report = ingest(root, [corpus], fake)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 0, 0, 3)
    assert sum(fake.calls) == report.chunks_embedded == expected_chunks(doc) > 1
    index = consistent(root, FakeEmbedder(name="fake"))
    assert index.path != old.path
    assert len(index) == len(old_chunks) + report.chunks_embedded
    new_chunks = {c.id: (c.text, c.start, c.end) for c, _ in index.iter_chunks()}
    # Kept chunks are carried over unchanged, with their row ids (vectors reused).
    assert {k: v for k, v in new_chunks.items() if not k.startswith("delta:")} == old_chunks
    assert old_rows <= set(index.ids.tolist())
    assert search(root, "dolphin Delta pact")[0].startswith("delta:")


def test_changed_article_replaces_its_chunks(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    old = Index.open(root)
    old_alpha = doc_chunks(old, "alpha")
    assert any("walrus" in t for t in old_alpha)
    assert old.bm25_search("walrus", 10)

    write(corpus, "alpha.md", article("Alpha summit", "alpaca", n=15, extra="A zeppelin flew."))
    doc = next(d for d in read_paths([corpus]).documents if d.id == "alpha")
    fake = FakeEmbedder(name="fake")
    report = ingest(root, [corpus], fake)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 0, 2)
    assert sum(fake.calls) == report.chunks_embedded == expected_chunks(doc)

    index = consistent(root, FakeEmbedder(name="fake"))
    alpha = doc_chunks(index, "alpha")
    assert len(alpha) == expected_chunks(doc) and alpha != old_alpha
    assert not any("walrus" in t for t in alpha)
    assert any("zeppelin" in t for t in alpha)
    assert index.manifest["docs"]["alpha"]["hash"] == doc.content_hash
    # Nothing of the old version is left anywhere: store, BM25 or vectors.
    assert index.bm25_search("walrus", 10) == []
    hits = index.chunks([r for r, _ in index.bm25_search("zeppelin", 10)])
    assert {c.doc_id for c, _ in hits.values()} == {"alpha"}
    assert len(index) == len(old) - len(old_alpha) + len(alpha)
    assert doc_chunks(index, "bravo") == doc_chunks(old, "bravo")


def test_metadata_change_counts_as_an_update(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    text = (corpus / "bravo.md").read_text().replace("Bravo treaty", "Bravo treaty signed")
    write(corpus, "bravo.md", text)
    report = ingest(root, [corpus])
    assert report.updated == 1 and report.unchanged == 2
    index = consistent(root)
    assert index.document("bravo") is not None
    assert index.document("bravo").title == "Bravo treaty signed"  # type: ignore[union-attr]


def test_deleted_article_is_removed(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    old = Index.open(root)
    assert doc_chunks(old, "charlie")
    (corpus / "charlie.md").unlink()
    fake = FakeEmbedder(name="fake")
    report = ingest(root, [corpus], fake)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 1, 2)
    assert fake.calls == [] and report.chunks_embedded == 0
    index = consistent(root, FakeEmbedder(name="fake"))
    assert doc_chunks(index, "charlie") == [] and index.document("charlie") is None
    assert "charlie" not in index.manifest["docs"]
    assert index.bm25_search("cheetah", 10) == []
    assert not any(c.startswith("charlie:") for c in search(root, "cheetah talks"))
    assert len(index) == len(old) - len(doc_chunks(old, "charlie"))


def test_deleting_everything_leaves_an_empty_searchable_index(
    fake_index: tuple[Path, Path],
) -> None:
    root, corpus = fake_index
    for p in corpus.iterdir():
        p.unlink()
    report = sync(root, [], FakeEmbedder(name="fake"), FAKE, in_scope=scope([corpus]))
    assert report.removed == 3 and report.chunks_total == 0
    index = consistent(root)
    assert len(index) == 0 and search(root, "alpaca") == []
    # And it fills up again.
    make_corpus(corpus)
    assert ingest(root, [corpus]).added == 3
    consistent(root, FakeEmbedder(name="fake"))


def test_ingesting_another_folder_keeps_the_first(tmp_path: Path) -> None:
    first = make_corpus(tmp_path / "first")
    second = tmp_path / "second"
    write(second, "echo.md", article("Echo accord", "eagle"))
    write(second, "foxtrot.md", article("Foxtrot deal", "ferret"))
    root = tmp_path / "index"
    ingest(root, [first])

    report = ingest(root, [second])
    assert (report.added, report.removed, report.unchanged) == (2, 0, 0)
    index = consistent(root, FakeEmbedder(name="fake"))
    assert sorted(index.manifest["docs"]) == ["alpha", "bravo", "charlie", "echo", "foxtrot"]

    # A deletion in the second folder removes only that article.
    (second / "foxtrot.md").unlink()
    report = ingest(root, [second])
    assert (report.added, report.removed, report.unchanged) == (0, 1, 1)
    assert sorted(consistent(root).manifest["docs"]) == ["alpha", "bravo", "charlie", "echo"]

    # Re-ingesting the first folder with one article gone removes it and keeps "echo".
    (first / "bravo.md").unlink()
    report = ingest(root, [first])
    assert (report.removed, report.unchanged) == (1, 2)
    assert sorted(consistent(root).manifest["docs"]) == ["alpha", "charlie", "echo"]

    # A single file is its own scope.
    report = ingest(root, [first / "alpha.md"])
    assert (report.removed, report.unchanged) == (0, 1)


def test_same_name_in_another_folder_is_another_article(tmp_path: Path) -> None:
    first = make_corpus(tmp_path / "first")
    other = tmp_path / "other"
    write(other, "alpha.md", article("A different alpha", "walrus"))
    root = tmp_path / "index"
    ingest(root, [first])

    report = ingest(root, [other])
    # Not an update of first/alpha.md: both articles stay, under distinct ids.
    assert (report.added, report.updated, report.removed) == (1, 0, 0)
    docs = consistent(root).manifest["docs"]
    assert "alpha" in docs and docs["alpha"]["path"].startswith(str(first.resolve()))
    newcomer = [d for d in docs if d.startswith("alpha@")]
    assert len(newcomer) == 1 and docs[newcomer[0]]["path"].startswith(str(other.resolve()))
    assert "walrus" in " ".join(doc_chunks(consistent(root), newcomer[0]))

    # Ingesting the other folder again is stable: same id, nothing re-embedded.
    report = ingest(root, [other])
    assert (report.added, report.updated, report.unchanged) == (0, 0, 1)


def test_old_generations_are_collected(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    for i in range(3):
        write(corpus, f"extra{i}.md", article(f"Extra {i}", f"topic{i}"))
        ingest(root, [corpus])
    gens = [g for g in generations(root) if g.startswith("gen-")]
    live = live_generation(root)
    assert live is not None and live.name == max(gens)
    assert len(gens) == 2  # the live one and the one a reader may still have open


# ----------------------------------------------------------------------------- crash safety


def _boom(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize(
    "target",
    [
        (qa.vectors, "save"),
        (qa.index, "_save_bm25"),
        (qa.index, "_fsync_tree"),  # everything written, just before the switch
    ],
    ids=["vectors.save", "_save_bm25", "_fsync_tree"],
)
def test_failed_save_keeps_the_previous_index(
    fake_index: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, target: tuple[Any, str]
) -> None:
    root, corpus = fake_index
    before = Index.open(root)
    counts = dict(before.manifest["counts"])
    results = search(root, "badger treaty")
    current = (root / "CURRENT").read_text()
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    (corpus / "bravo.md").unlink()

    with monkeypatch.context() as m:
        m.setattr(*target, _boom)
        with pytest.raises(RuntimeError, match="disk on fire"):
            ingest(root, [corpus])

    assert (root / "CURRENT").read_text() == current
    after = consistent(root, FakeEmbedder(name="fake"))
    assert after.path == before.path and after.manifest["counts"] == counts
    assert search(root, "badger treaty") == results
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-gen-")]

    report = ingest(root, [corpus])  # the lock was released, the next ingest works
    assert (report.added, report.removed) == (1, 1)
    index = consistent(root, FakeEmbedder(name="fake"))
    assert "delta" in index.manifest["docs"] and "bravo" not in index.manifest["docs"]


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from dataclasses import replace
    from pathlib import Path

    import qa.index
    from qa.config import Settings
    from qa.embed import FakeEmbedder
    from qa.ingest import read_paths

    root, corpus, where = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if where == "bm25":
        qa.index._save_bm25 = die
    else:  # after the new generation is renamed into place, before CURRENT points at it
        real_replace = os.replace

        def replace_then_die(src, dst):
            real_replace(src, dst)
            if Path(dst).name.startswith("gen-"):
                die()

        qa.index.os.replace = replace_then_die
    s = Settings()
    s = replace(
        s,
        embedding=replace(s.embedding, model="fake"),
        chunking=replace(s.chunking, max_tokens=60, overlap_tokens=15),
        retrieval=replace(s.retrieval, min_dense_score=0.0),
    )
    docs = read_paths([corpus]).documents
    qa.index.sync(root, docs, FakeEmbedder(name="fake"), s)
    print("not killed")
    """
)


@pytest.mark.parametrize("where", ["bm25", "before_switch"])
def test_writer_killed_mid_ingest(fake_index: tuple[Path, Path], where: str) -> None:
    root, corpus = fake_index
    before = Index.open(root)
    counts = dict(before.manifest["counts"])
    results = search(root, "cheetah trade")
    current = (root / "CURRENT").read_text()
    write(corpus, "delta.md", article("Delta pact", "dolphin"))

    script = root.parent / "kill.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.run(
        [PYTHON, str(script), str(root), str(corpus), where],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr

    # The killed writer left its work behind, but readers still see the previous index.
    leftovers = sorted(p.name for p in root.iterdir())
    if where == "bm25":
        assert [p for p in root.iterdir() if p.name.startswith(".tmp-gen-")], leftovers
    else:
        assert len([p for p in root.iterdir() if p.name.startswith("gen-")]) == 2, leftovers
    assert (root / "CURRENT").read_text() == current
    after = consistent(root, FakeEmbedder(name="fake"))
    assert after.path == before.path and after.manifest["counts"] == counts
    assert search(root, "cheetah trade") == results

    # The lock died with the writer: the next ingest succeeds and cleans up.
    report = ingest(root, [corpus])
    assert report.added == 1
    index = consistent(root, FakeEmbedder(name="fake"))
    assert "delta" in index.manifest["docs"]
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-gen-")]
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("gen-")) == sorted(
        [before.path.name, index.path.name]
    )


# ----------------------------------------------------------------------------- mismatch


def test_changed_chunking_needs_rebuild(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    smaller = replace(FAKE, chunking=replace(FAKE.chunking, max_tokens=30))
    with pytest.raises(QAError) as info:
        ingest(root, [corpus], settings=smaller)
    message = str(info.value)
    assert "max_tokens: index has 60, settings say 30" in message
    assert "run `qa ingest --rebuild`" in message
    with pytest.raises(QAError, match="qa ingest --rebuild"):
        Index.open(root, smaller, 64)

    old_chunks = len(Index.open(root))
    report = ingest(root, [corpus], settings=smaller, rebuild=True)
    assert report.added == 3 and report.chunks_embedded == report.chunks_total > old_chunks
    assert consistent(root).build.max_tokens == 30
    Index.open(root, smaller, 64)


def test_unreadable_or_foreign_index(tmp_path: Path) -> None:
    root = tmp_path / "index"
    with pytest.raises(QAError, match=r"no index at .*: run `qa ingest` first"):
        Index.open(root)
    ingest(root, [make_corpus(tmp_path / "corpus")])
    live = live_generation(root)
    assert live is not None
    manifest = json.loads((live / "manifest.json").read_text())
    (live / "manifest.json").write_text(json.dumps({**manifest, "schema": 99}))
    with pytest.raises(QAError, match=r"schema 99.*qa ingest --rebuild"):
        Index.open(root)
    (live / "manifest.json").write_text("{not json")
    with pytest.raises(QAError, match=r"unreadable.*qa ingest --rebuild"):
        Index.open(root)
    # A rebuild does not need to read the broken generation.
    assert ingest(root, [tmp_path / "corpus"], rebuild=True).added == 3
    consistent(root)


# ----------------------------------------------------------------------------- lock


def test_second_writer_in_the_same_process_is_refused(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    errors: list[str] = []

    class Intruder(FakeEmbedder):
        def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
            try:  # while the first writer embeds, a second one tries to write
                ingest(root, [corpus])
            except QAError as exc:
                errors.append(str(exc))
            return super().embed(texts, progress=progress)

    report = ingest(root, [corpus], Intruder(name="fake"))
    assert errors == [f"another `qa ingest` is writing the index at {root}"]
    assert report.added == 1
    consistent(root, FakeEmbedder(name="fake"))


LOCK_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from qa.index import _writer_lock

    with _writer_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


def test_second_writer_in_another_process_is_refused(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    proc = subprocess.Popen(
        [PYTHON, "-c", LOCK_SCRIPT, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(QAError, match="another `qa ingest` is writing the index"):
            ingest(root, [corpus])
    finally:
        proc.communicate("\n", timeout=30)
    assert proc.returncode == 0
    assert ingest(root, [corpus]).added == 1
