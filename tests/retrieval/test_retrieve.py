"""Tests for qa.retrieval.retriever: fusion modes, diversity, de-duplication, the relevance floor
and k.

Mechanics are checked on small generated articles with the FakeEmbedder; the headline question
and the relevance floor are checked on the bundled corpus with the real model (loaded once).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import fake_settings

from qa.core.config import RetrievalSettings, Settings
from qa.core.types import Chunk, Document, Hit
from qa.embedding.fake import FakeEmbedder
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.index import LocalIndex, sync
from qa.ingest import read_paths
from qa.retrieval.retriever import NEAR_DUPLICATE, SPAN_OVERLAP, Retriever, _jaccard

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
HEADLINE = "What did Khrenin say about India?"
KHRENIN = "India is a significant focus within Belarus"

FAKE = fake_settings(max_tokens=40, overlap_tokens=30)


def doc(doc_id: str, title: str, text: str) -> Document:
    return Document(doc_id, title, text, ((0, len(text)),), published="2025-06-26")


def sentences(topic: str, n: int, word: str = "") -> str:
    return " ".join(f"The {topic} council met on day {i} {word}." for i in range(n))


DOCS = [
    # A long article whose every chunk mentions the volcano: diversity must cap it.
    doc("long", "Volcano watch", sentences("volcano eruption lava", 40)),
    doc("lake", "Lake report", sentences("lake fishing boats", 6, "volcano")),
    doc("farm", "Farm report", sentences("farm harvest wheat", 6, "volcano")),
    doc("city", "City report", sentences("city traffic buses", 6)),
    # A syndicated copy: the same text under another id.
    doc("wire", "Glacier melt", sentences("glacier melt ice", 4)),
    doc("wire-copy", "Glacier melt (copy)", sentences("glacier melt ice", 4)),
    # A keyword only BM25 can find well: a rare token in a long chunk.
    doc("rare", "Misc notes", sentences("misc notes items", 3, "xylophone")),
]


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    root = tmp_path_factory.mktemp("fake") / "index"
    sync(root, DOCS, FakeEmbedder(name="fake"), FAKE)
    return LocalIndex.open(root, FAKE, 64)


def retriever(index: LocalIndex, **changes: object) -> Retriever:
    return Retriever(index, FakeEmbedder(name="fake"), replace(FAKE.retrieval, **changes))


def row_of_chunk(index: LocalIndex) -> dict[str, int]:
    return dict(index.db.execute("SELECT id, row FROM chunks").fetchall())


def assert_well_formed(hits: tuple[Hit, ...], k: int) -> None:
    assert len(hits) <= k
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.chunk.id for h in hits}) == len(hits)


# ----------------------------------------------------------------------------- fusion


def test_rrf_scores_follow_the_formula(fake_index: LocalIndex) -> None:
    s = FAKE.retrieval
    r = retriever(fake_index, max_per_doc=10, sentence_weight=0.0)  # fusion alone
    query = "volcano council lava"
    hits = r.search(query, 10).hits
    assert_well_formed(hits, 10)
    qv = FakeEmbedder(name="fake").embed([query])[0]
    dense = {row: rank for rank, (row, _) in enumerate(fake_index.dense_search(qv, 50), 1)}
    bm25 = {row: rank for rank, (row, _) in enumerate(fake_index.bm25_search(query, 50), 1)}
    rows = row_of_chunk(fake_index)
    for h in hits:
        row = rows[h.chunk.id]
        expected = 0.0
        if row in dense:
            expected += s.dense_weight / (s.rrf_k + dense[row])
        if row in bm25:
            expected += s.bm25_weight / (s.rrf_k + bm25[row])
        assert h.score == pytest.approx(expected)
        assert h.dense_score is not None
        assert (h.bm25_score is not None) == (row in bm25)


def test_weights_change_the_fusion(fake_index: LocalIndex) -> None:
    query = "xylophone council"
    only_bm25 = retriever(fake_index, dense_weight=0.0).search(query, 3).hits
    assert only_bm25[0].chunk.doc_id == "rare"
    assert all(h.bm25_score is not None for h in only_bm25 if h.score > 0)


def test_dense_only(fake_index: LocalIndex) -> None:
    hits = retriever(fake_index, fusion="dense").search("glacier melt ice council", 5).hits
    assert_well_formed(hits, 5)
    assert all(h.bm25_score is None and h.dense_score is not None for h in hits)
    dense = [h.dense_score for h in hits]
    assert dense == sorted(dense, reverse=True)  # rank order is cosine order
    assert hits[0].chunk.doc_id in ("wire", "wire-copy")


def test_bm25_only(fake_index: LocalIndex) -> None:
    hits = retriever(fake_index, fusion="bm25").search("xylophone", 5).hits
    assert_well_formed(hits, 5)
    assert hits and all(h.bm25_score is not None and h.bm25_score > 0 for h in hits)
    assert {h.chunk.doc_id for h in hits} == {"rare"}
    # The cosine is still computed (for the relevance floor).
    assert all(h.dense_score is not None for h in hits)
    bm25 = [h.bm25_score for h in hits]
    assert bm25 == sorted(bm25, reverse=True)
    # A query of stop words only gives BM25 nothing to match.
    assert retriever(fake_index, fusion="bm25").search("the of and", 5).hits == ()


# ----------------------------------------------------------------------------- k


def test_k_is_respected(fake_index: LocalIndex) -> None:
    r = retriever(fake_index, max_per_doc=10)
    for k in (1, 2, 3, 7):
        hits = r.search("council met on day", k).hits
        assert len(hits) == k
        assert_well_formed(hits, k)
    assert len(r.search("council met on day").hits) == FAKE.retrieval.k  # the default
    many = r.search("council met on day", 100).hits
    assert 7 < len(many) <= len(fake_index)
    assert_well_formed(many, 100)


# ----------------------------------------------------------------------------- diversity


def test_max_per_doc(fake_index: LocalIndex) -> None:
    for limit in (1, 2, 3):
        hits = retriever(fake_index, max_per_doc=limit).search("volcano eruption lava", 5).hits
        per_doc: dict[str, int] = {}
        for h in hits:
            per_doc[h.doc.id] = per_doc.get(h.doc.id, 0) + 1
        assert max(per_doc.values()) == min(limit, per_doc["long"])
        assert all(n <= limit for n in per_doc.values())
        # The other articles mentioning the volcano fill the places the cap frees, even
        # though the long article's chunks fill the top of the candidate list.
        if limit == 1:
            assert {"long", "lake", "farm"} <= set(per_doc)
        else:
            assert len(hits) == 5 and "farm" in per_doc
    # Without the cap the long article would take every place.
    capped = retriever(fake_index, max_per_doc=100).search("volcano eruption lava", 5).hits
    assert {h.doc.id for h in capped} == {"long"}


def _span_overlap(a: Chunk, b: Chunk) -> float:
    shared = min(a.end, b.end) - max(a.start, b.start)
    return shared / min(a.end - a.start, b.end - b.start)


def test_overlapping_windows_are_not_returned_twice(fake_index: LocalIndex) -> None:
    # With 30 tokens of overlap in 40, consecutive chunks of "long" share most of their text.
    chunks = [c for c, _ in fake_index.iter_chunks() if c.doc_id == "long"]
    assert max(_span_overlap(a, b) for a, b in itertools.pairwise(chunks)) > 0.5
    hits = retriever(fake_index, max_per_doc=100).search("volcano eruption lava", 20).hits
    assert len(hits) >= 3
    for i, a in enumerate(hits):
        for b in hits[i + 1 :]:
            if a.doc.id == b.doc.id:
                assert _span_overlap(a.chunk, b.chunk) <= SPAN_OVERLAP, (a.chunk.id, b.chunk.id)


def test_near_identical_passages_are_returned_once(fake_index: LocalIndex) -> None:
    query = "glacier melt ice"
    qv = FakeEmbedder(name="fake").embed([query])[0]
    raw = fake_index.chunks([row for row, _ in fake_index.dense_search(qv, 4)])
    assert {c.doc_id for c, _ in raw.values()} == {"wire", "wire-copy"}  # both are candidates
    hits = retriever(fake_index).search(query, 5).hits
    assert [h.doc.id for h in hits].count("wire") + [h.doc.id for h in hits].count("wire-copy") == 1
    words = [set(h.chunk.text.lower().split()) for h in hits]
    for i, a in enumerate(words):
        for b in words[i + 1 :]:
            assert _jaccard(a, b) < NEAR_DUPLICATE


# ----------------------------------------------------------------------------- floor


def test_relevance_floor_with_the_fake_embedder(fake_index: LocalIndex) -> None:
    query = "volcano eruption lava"
    everything = retriever(fake_index, min_dense_score=-1.0).search(query, 20).hits
    cosines = sorted(h.dense_score or 0.0 for h in everything)
    floor = cosines[len(cosines) // 2]
    floored = retriever(fake_index, min_dense_score=floor).search(query, 20).hits
    assert floored and len(floored) < len(everything)
    assert all((h.dense_score or 0.0) >= floor for h in floored)
    assert retriever(fake_index, min_dense_score=1.01).search(query, 20).hits == ()


def test_empty_index_returns_nothing(tmp_path: Path) -> None:
    root = tmp_path / "index"
    sync(root, [], FakeEmbedder(name="fake"), FAKE)
    r = Retriever(LocalIndex.open(root), FakeEmbedder(name="fake"), FAKE.retrieval)
    assert r.search("anything at all").hits == ()


# ----------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def real_index(
    real_embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalIndex]:
    root = tmp_path_factory.mktemp("real") / "index"
    sync(root, read_paths([CORPUS]).documents, real_embedder, Settings())
    yield LocalIndex.open(root, Settings(), real_embedder.dim)


def real_retriever(
    index: LocalIndex, embedder: SentenceTransformerEmbedder, **changes: object
) -> Retriever:
    settings: RetrievalSettings = replace(Settings().retrieval, **changes)
    return Retriever(index, embedder, settings)


@pytest.mark.slow
def test_headline_question_finds_the_belarus_side_passage(
    real_index: LocalIndex, real_embedder: SentenceTransformerEmbedder
) -> None:
    hits = real_retriever(real_index, real_embedder).search(HEADLINE).hits
    assert_well_formed(hits, 5)
    top3 = [(h.doc.id, h.chunk.text) for h in hits[:3]]
    assert any(d.startswith("001_") and KHRENIN in t for d, t in top3), top3
    # Offsets point at the stored article text.
    for h in hits:
        stored = real_index.document(h.doc.id)
        assert stored is not None and stored.text[h.chunk.start : h.chunk.end].startswith(
            h.chunk.text[:20]
        )


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["rrf", "dense", "bm25"])
def test_headline_passage_is_found_in_every_fusion_mode(
    real_index: LocalIndex, real_embedder: SentenceTransformerEmbedder, fusion: str
) -> None:
    hits = real_retriever(real_index, real_embedder, fusion=fusion).search(HEADLINE).hits
    assert any(h.doc.id.startswith("001_") and KHRENIN in h.chunk.text for h in hits)
    if fusion == "dense":
        assert all(h.bm25_score is None for h in hits)
    if fusion == "bm25":
        assert all(h.bm25_score is not None for h in hits)


UNRELATED = [
    "How to bake sourdough bread",
    "chocolate cake recipe with strawberries",
    "best football team in the Premier League",
]


@pytest.mark.slow
def test_unrelated_questions_retrieve_nothing(
    real_index: LocalIndex, real_embedder: SentenceTransformerEmbedder
) -> None:
    floor = Settings().retrieval.min_dense_score
    vectors = np.asarray(real_index.vectors)
    best_related = float(np.max(vectors @ real_embedder.embed([HEADLINE])[0]))
    # The floor separates: the headline's best passage is far above it...
    assert best_related > floor + 0.2
    for query in UNRELATED:
        best = float(np.max(vectors @ real_embedder.embed([query])[0]))
        # ...and an unrelated question's best passage (by exact cosine) is well below it,
        assert best < floor - 0.05, (query, best)
        # so nothing is retrieved, though BM25 alone might match a word.
        assert real_retriever(real_index, real_embedder).search(query).hits == ()
    # With the floor off, the same question does return passages: the floor is what stops it.
    assert real_retriever(real_index, real_embedder, min_dense_score=-1.0).search(UNRELATED[0]).hits


@pytest.mark.slow
def test_real_hits_respect_k_and_max_per_doc(
    real_index: LocalIndex, real_embedder: SentenceTransformerEmbedder
) -> None:
    r = real_retriever(real_index, real_embedder, max_per_doc=1)
    hits = r.search("Rajnath Singh defence cooperation at the SCO meeting", 5).hits
    assert len(hits) == 5  # five articles, one passage each
    assert len({h.doc.id for h in hits}) == 5
    hits = real_retriever(real_index, real_embedder).search("Rajnath Singh SCO Qingdao", 2).hits
    assert len(hits) == 2
