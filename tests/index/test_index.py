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
import subprocess
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from index_helpers import (
    CORPUS,
    FAKE,
    PYTHON,
    CountingEmbedder,
    article,
    consistent,
    doc_chunks,
    expected_chunks,
    generations,
    ingest,
    make_corpus,
    search,
    write,
)

from qa.core.config import Settings
from qa.core.types import Document, QAError
from qa.embedding.fake import FakeEmbedder
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.index import (
    SCHEMA_VERSION,
    LocalIndex,
    SyncReport,
    live_generation,
    scope,
    stored_path,
    sync,
)
from qa.ingest import read_paths

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
        "model_fingerprint": real_embedder.identity,  # of the weights loaded
        "precision": "fp32",
    }
    assert re.fullmatch(r"[0-9a-f]{16}", m["build"]["model_fingerprint"])
    assert m["vector_index"]["kind"] == "flat" and m["vector_index"]["dim"] == 384
    assert m["counts"] == {"articles": 5, "chunks": report.chunks_total}
    for doc in documents:
        meta = m["docs"][doc.id]
        assert re.fullmatch(r"[0-9a-f]{64}", meta["hash"])
        assert meta["hash"] == doc.content_hash
        # Stored relative to the settings' folder (here the working directory, the repo).
        assert meta["path"] == stored_path(str((CORPUS / f"{doc.id}.md").resolve()), Path.cwd())
        assert meta["chunks"] >= 1
        stored = index.document(doc.id)
        assert stored is not None and stored.text == doc.text and stored.segments == doc.segments
    # The index opens with the settings it was built with.
    LocalIndex.open(root, Settings(), 384)
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
        LocalIndex.open(root, FAKE, 64)
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
    assert LocalIndex.open(root).build.embedding_model == "fake"

    with pytest.raises(QAError) as info:
        LocalIndex.open(root, Settings(), real_embedder.dim)
    message = str(info.value)
    assert "run `qa ingest --rebuild`" in message
    assert "embedding_model: index has 'fake'" in message and "dim: index has 64" in message

    counting = CountingEmbedder(real_embedder)
    with pytest.raises(QAError, match="qa ingest --rebuild"):
        ingest(root, [corpus], counting, Settings())
    assert counting.embedded == []  # refused before embedding anything

    report = ingest(root, [corpus], counting, Settings(), rebuild=True)
    assert (report.added, report.unchanged) == (0, 1) and report.rebuilt
    assert report.chunks_embedded == len(counting.embedded) > 0
    index = consistent(root, real_embedder)
    assert index.build.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert index.build.dim == 384
    LocalIndex.open(root, Settings(), 384)  # no longer refused


# ----------------------------------------------------------------------------- incremental


def test_unchanged_corpus_embeds_nothing(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    before = generations(root)
    fake = FakeEmbedder(name="fake")
    report = ingest(root, [corpus], fake)
    assert fake.calls == [] and report.chunks_embedded == 0 and report.unchanged == 3
    assert generations(root) == before


def test_added_article_embeds_only_its_chunks(fake_index: tuple[Path, Path]) -> None:
    root, corpus = fake_index
    old = LocalIndex.open(root)
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
    old = LocalIndex.open(root)
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
    old = LocalIndex.open(root)
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
    assert live is not None and gens == [live.name]  # no reader holds an older one


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
        LocalIndex.open(root, smaller, 64)

    old_chunks = len(LocalIndex.open(root))
    report = ingest(root, [corpus], settings=smaller, rebuild=True)
    assert (report.added, report.unchanged) == (0, 3)
    assert report.chunks_embedded == report.chunks_total > old_chunks
    assert consistent(root).build.max_tokens == 30
    LocalIndex.open(root, smaller, 64)


def test_unreadable_or_foreign_index(tmp_path: Path) -> None:
    root = tmp_path / "index"
    with pytest.raises(QAError, match=r"no index at .*: run `qa ingest` first"):
        LocalIndex.open(root)
    ingest(root, [make_corpus(tmp_path / "corpus")])
    live = live_generation(root)
    assert live is not None
    manifest = json.loads((live / "manifest.json").read_text())
    (live / "manifest.json").write_text(json.dumps({**manifest, "schema": 99}))
    # A newer qa's index is not to be thrown away: no advice to rebuild it.
    with pytest.raises(QAError, match=r"written by a newer qa \(schema 99") as raised:
        LocalIndex.open(root)
    assert "--rebuild" not in str(raised.value)
    (live / "manifest.json").write_text("{not json")
    with pytest.raises(QAError, match=r"damaged: gen-\d+/manifest.json is not JSON.*qa ingest"):
        LocalIndex.open(root)
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
    from qa.index import writer_lock

    with writer_lock(Path(sys.argv[1])):
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
