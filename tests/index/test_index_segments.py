"""Ingest whose cost follows the change (qa.index.segments, qa.index.generation): an update
adds a small segment and marks replaced rows deleted, old segments are shared by hard links,
deltas merge when they pile up, and every search gives what a full rebuild of the same
articles gives (dense and BM25, with changes and removals, before and after merges)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from index_helpers import FAKE, CountingEmbedder, article, consistent, ingest, make_corpus, write

import qa.index.segments
from qa.core.types import QAError
from qa.embedding.fake import FakeEmbedder
from qa.index import bm25_tokens, scope, sync, vectors
from qa.index.local import LocalIndex

QUERIES = [
    "alpha summit election",
    "bravo treaty court verdict",
    "charlie trade tariff",
    "storm harbour minister",
    "delta pact rocket satellite",
    "glacier tariff ceasefire inflation",
    "budget strike protest",
]
EMBEDDER = FakeEmbedder(name="fake")


WORDS = [
    "minister",
    "harbour",
    "election",
    "storm",
    "vaccine",
    "court",
    "budget",
    "strike",
    "rocket",
    "summit",
    "border",
    "drought",
    "merger",
    "verdict",
    "protest",
    "satellite",
    "tariff",
    "glacier",
    "ceasefire",
    "inflation",
]


def _text(seed: int, n: int) -> str:
    """Sentences of words drawn by ``seed``: chunks that differ, so rankings have few ties."""
    rng = np.random.default_rng(seed)
    return " ".join(
        " ".join(rng.choice(WORDS, int(rng.integers(5, 12)))).capitalize() + "." for _ in range(n)
    )


def _ranked(hits: list[tuple[str, float]]) -> list[tuple[float, frozenset[str]]]:
    """A top-k list as its groups of equal scores: two indexes of the same chunks order ties
    by their positions, which differ (an update appends, a rebuild goes by article); the last
    group may be cut anywhere, so only its score counts."""
    groups: dict[float, set[str]] = {}
    for chunk, score in hits:
        groups.setdefault(score, set()).add(chunk)
    ranked = sorted(groups.items(), reverse=True)
    if not ranked:
        return []
    return [(s, frozenset(ids)) for s, ids in ranked[:-1]] + [(ranked[-1][0], frozenset())]


def _results(root: Path) -> dict[str, object]:
    """Per query: every chunk's cosine and BM25 score by chunk id, and the top 10 of each."""
    index = LocalIndex.open(root)
    chunk_id = {r: c.id for r, (c, _) in index.chunks(list(map(int, index.ids))).items()}
    out: dict[str, object] = {}
    for q in QUERIES:
        qv = EMBEDDER.embed([q])[0]
        dense = {chunk_id[r]: s for r, s in index.dense_search(qv, len(index))}
        scores = index.bm25.scores(bm25_tokens(q)).tolist()
        keyword = dict(zip([chunk_id[int(r)] for r in index.ids], scores, strict=True))
        top = _ranked([(chunk_id[r], s) for r, s in index.dense_search(qv, 10)])
        top_bm25 = _ranked([(chunk_id[r], s) for r, s in index.bm25_search(q, 10)])
        out[q] = (dense, keyword, top, top_bm25)
    index.close()
    return out


def _article(title: str, seed: int, n: int) -> str:
    return f'---\ntitle: "{title}"\ndate: 2025-06-{10 + seed % 20}\n---\n{_text(seed, n)}\n'


def _indexed_steps(tmp_path: Path) -> tuple[Path, Path]:
    """The first step's corpus, ingested: (corpus folder, index root)."""
    corpus, root = tmp_path / "corpus", tmp_path / "index"
    _corpus_steps(corpus)
    ingest(root, [corpus])
    return corpus, root


def _corpus_steps(corpus: Path) -> None:
    write(corpus, "alpha.md", _article("Alpha summit", 1, 20))
    write(corpus, "bravo.md", _article("Bravo treaty", 2, 20))
    write(corpus, "charlie.md", _article("Charlie trade", 3, 30))


def _evolve(corpus: Path, step: int) -> None:
    """One more article each step, and a change or a removal."""
    write(corpus, f"extra{step}.md", _article(f"Extra {step}", 10 + step, 15))
    if step == 1:
        write(corpus, "alpha.md", _article("Alpha summit", 4, 20))
    if step == 2:
        (corpus / "bravo.md").unlink()
    if step == 3:
        write(corpus, "delta.md", _article("Delta pact", 5, 10))
    if step == 4:
        (corpus / "extra1.md").unlink()


def _fresh(tmp_path: Path, corpus: Path, name: str) -> Path:
    root = tmp_path / name
    ingest(root, [corpus])
    return root


@pytest.fixture
def no_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa.index.segments, "REBUILD_SHARE", 1e9)
    monkeypatch.setattr(qa.index.segments, "MAX_SEGMENTS", 100)


def test_updates_search_like_a_full_rebuild(tmp_path: Path, no_merges: None) -> None:
    corpus, root = _indexed_steps(tmp_path)
    for step in range(1, 6):
        _evolve(corpus, step)
        report = ingest(root, [corpus])
        assert report.changed
        index = consistent(root, EMBEDDER)
        # One segment per ingest that embedded something, nothing merged.
        assert len(index.manifest["segments"]) == 1 + step
        index.close()
        assert _results(root) == _results(_fresh(tmp_path, corpus, f"fresh{step}"))
    index = LocalIndex.open(root)
    assert index.manifest["deleted"] > 0  # the changes and removals are tombstones
    index.close()


def test_an_update_links_old_segments_and_writes_only_the_new_chunks(
    fake_index: tuple[Path, Path], no_merges: None
) -> None:
    root, corpus = fake_index
    old = LocalIndex.open(root)
    old_files = {p.relative_to(old.path): p.stat().st_ino for p in old.path.rglob("*.npy")}
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    report = ingest(root, [corpus])
    new = LocalIndex.open(root)
    assert new.path != old.path and report.chunks_embedded == len(new) - len(old)
    for rel, inode in old_files.items():
        if rel.parts[0].startswith("seg-"):  # the same file, not a copy
            assert (new.path / rel).stat().st_ino == inode
    newest = new.segments[-1]
    assert len(newest.ids) == report.chunks_embedded  # the delta holds only the new chunks
    assert new.manifest["store"] == old.manifest["store"]  # updated in place, not copied


def test_merges_keep_results_and_drop_tombstones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, root = _indexed_steps(tmp_path)
    monkeypatch.setattr(qa.index.segments, "REBUILD_SHARE", 1e9)
    monkeypatch.setattr(qa.index.segments, "MAX_SEGMENTS", 3)
    counts = []
    for step in range(1, 5):
        _evolve(corpus, step)
        ingest(root, [corpus])
        index = consistent(root, EMBEDDER)
        counts.append(len(index.manifest["segments"]))
        index.close()
        assert _results(root) == _results(_fresh(tmp_path, corpus, f"fresh{step}"))
    assert max(counts) <= 3 and 2 in counts  # the deltas were merged into one, base kept

    # A full merge: the deltas outgrow the share, everything becomes one new base.
    monkeypatch.setattr(qa.index.segments, "REBUILD_SHARE", 0.0)
    _evolve(corpus, 5)
    ingest(root, [corpus])
    index = consistent(root, EMBEDDER)
    assert len(index.manifest["segments"]) == 1 and index.manifest["deleted"] == 0
    index.close()
    assert _results(root) == _results(_fresh(tmp_path, corpus, "fresh5"))


def test_ivf_deltas_share_the_base_centroids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_merges: None
) -> None:
    """An IVF index: the delta is added to the base's trained centroids, and searching both
    gives exactly what one IVF index with those centroids holding all vectors gives."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(1, 3001, dtype=np.int64)
    base = vectors.build(x[:2500], ids[:2500], "ivf")
    delta = vectors.add_to_trained(vectors.centroids(base), base.nprobe, x[2500:], ids[2500:])
    whole = vectors.add_to_trained(vectors.centroids(base), base.nprobe, x, ids)
    q = x[rng.choice(3000, 50)] + 0.3 * rng.standard_normal((50, 32)).astype(np.float32)
    for row in q:
        s1, i1 = vectors.search(base, row, 10)
        s2, i2 = vectors.search(delta, row, 10)
        order = np.argsort(-np.concatenate([s1[0], s2[0]]), kind="stable")[:10]
        merged = np.concatenate([i1[0], i2[0]])[order]
        _, expected = vectors.search(whole, row, 10)
        assert merged.tolist() == expected[0].tolist()

    # Through the writer: an ingest into an IVF index writes an IVF delta, no training.
    settings = replace(FAKE, index=replace(FAKE.index, kind="ivf"))
    corpus = tmp_path / "corpus"
    _corpus_steps(corpus)
    for i in range(40):  # enough chunks for a few IVF lists
        write(corpus, f"bulk{i}.md", article(f"Bulk {i}", f"subject{i}", n=8))
    root = tmp_path / "index"
    ingest(root, [corpus], settings=settings)
    monkeypatch.setattr(vectors, "build", None)  # training again would call build
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    ingest(root, [corpus], settings=settings)
    index = consistent(root, EMBEDDER)
    assert [vectors.describe(s.dense)["kind"] for s in index.segments] == ["ivf", "ivf"]
    centroids = [vectors.centroids(s.dense) for s in index.segments]
    assert np.array_equal(
        centroids[0].reconstruct_n(0, centroids[0].ntotal),
        centroids[1].reconstruct_n(0, centroids[1].ntotal),
    )
    hits = index.dense_search(EMBEDDER.embed(["dolphin pact"])[0], 5)
    assert hits and hits[0][0] in set(index.segments[1].ids.tolist())


def test_crossing_to_an_approximate_index_retrains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, root = _indexed_steps(tmp_path)
    index = LocalIndex.open(root)
    monkeypatch.setattr(vectors, "FLAT_MAX", len(index))  # the next chunk crosses it
    index.close()
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    ingest(root, [corpus])
    index = consistent(root, EMBEDDER)
    assert len(index.manifest["segments"]) == 1
    assert index.manifest["vector_index"]["kind"] == "ivf"


V1_SCHEMA = """
CREATE TABLE docs (id TEXT PRIMARY KEY, title TEXT, text TEXT, segments TEXT,
                   published TEXT, source TEXT, url TEXT, path TEXT);
CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT UNIQUE, doc_id TEXT, ordinal INTEGER,
                     text TEXT, start INTEGER, end INTEGER);
"""


def test_a_schema_1_index_is_converted_without_embedding(fake_index: tuple[Path, Path]) -> None:
    """The layout before segments (one copy of everything per generation) becomes a segment by
    hard links on the next ingest; the index answers the same, nothing is embedded."""
    root, corpus = fake_index
    index = LocalIndex.open(root)
    before = _results(root)
    v1 = root / "gen-000050"  # what the previous writer made
    v1.mkdir()
    x = np.asarray(index.vectors)
    np.save(v1 / "vectors.npy", x)
    np.save(v1 / "ids.npy", index.ids)
    vectors.save(vectors.build(x, index.ids), v1 / "dense.faiss")
    conn = sqlite3.connect(v1 / "store.sqlite")
    conn.executescript(V1_SCHEMA)
    conn.executemany(
        "INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", index.db.execute("SELECT * FROM docs")
    )
    conn.executemany(
        "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", index.db.execute("SELECT * FROM chunks")
    )
    conn.commit()
    conn.close()
    manifest = {
        k: v
        for k, v in index.manifest.items()
        if k not in ("generation", "store", "segments", "deleted")
    }
    (v1 / "manifest.json").write_text(json.dumps({**manifest, "schema": 1}))
    (root / "CURRENT").write_text("gen-000050\n")
    index.close()
    with pytest.raises(QAError, match="schema-1 layout: run `qa ingest` once"):
        LocalIndex.open(root)

    embedder = CountingEmbedder(FakeEmbedder(name="fake"))
    report = ingest(root, [corpus], embedder=embedder)
    assert embedder.embedded == [] and not report.changed
    index = consistent(root, EMBEDDER)
    assert index.manifest["schema"] == 2 and not v1.exists()
    index.close()
    assert _results(root) == before


def test_a_rebuild_starts_a_new_store_and_the_old_goes_with_its_last_reader(
    fake_index: tuple[Path, Path],
) -> None:
    root, corpus = fake_index
    reader = LocalIndex.open(root)  # pins the generation, and so the store it names
    old_store = root / reader.manifest["store"]
    alpha = reader.document("alpha")
    ingest(root, [corpus], rebuild=True)
    index = consistent(root, EMBEDDER)
    assert index.manifest["store"] != old_store.name and old_store.is_file()
    assert reader.document("alpha") == alpha  # the reader still reads its own store
    index.close()
    reader.close()
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    ingest(root, [corpus])  # the collector: no generation names the old store any more
    assert not old_store.exists()
    live_store = LocalIndex.open(root).manifest["store"]
    assert {p.name.split("-wal")[0].split("-shm")[0] for p in root.glob("store-*")} == {live_store}


def test_emptied_index_refilled_while_a_reader_pins_the_old_rows(tmp_path: Path) -> None:
    """An index with no chunks is still the previous index: its row numbers go on, so a
    reader pinning the generation before the deletion (a running server) keeps its rows and
    the refill does not collide with them (an empty index once counted as no index)."""
    corpus = make_corpus(tmp_path / "corpus")
    root = tmp_path / "index"
    ingest(root, [corpus])
    before = LocalIndex.open(root)  # a server still reading the first generation
    try:
        rows = sorted(before.chunks([int(r) for r in before.ids]))
        for p in corpus.iterdir():
            p.unlink()
        sync(root, [], FakeEmbedder(name="fake"), FAKE, in_scope=scope([corpus]))
        make_corpus(corpus)
        assert ingest(root, [corpus]).added == 3
        refilled = LocalIndex.open(root)
        assert min(int(r) for r in refilled.ids) > max(rows)
        assert sorted(before.chunks(rows)) == rows  # the pinned reader still reads its rows
        refilled.close()
    finally:
        before.close()
