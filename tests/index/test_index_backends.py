"""Both index backends through the same ingest and retrieval checks (the fake embedder, a real
FAISS/BM25 folder or a real Milvus Lite database), and the two backends side by side: the same
fused candidates on a small corpus, the same top passages for the gold questions with the real
model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import check, expected, run, stored_chunks
from conftest import ROOT, on_backend
from index_helpers import FAKE, article, expected_chunks, make_corpus, write

from qa.answering.assistant import Assistant
from qa.core.config import Settings
from qa.core.types import Document, Filters, QAError
from qa.embedding.fake import FakeEmbedder
from qa.index import open_index, remove, sync
from qa.ingest import read_paths
from qa.retrieval.retriever import Retriever


@pytest.fixture
def settings(backend: str, tmp_path: Path, milvus_db: Path) -> Settings:
    base = replace(FAKE, paths=replace(FAKE.paths, index=tmp_path / "index"))
    return on_backend(base, backend, milvus_db)


def top(settings: Settings, query: str) -> list[str]:
    index = open_index(settings, dim=64)
    hits = Retriever(index, FakeEmbedder(name="fake"), settings.retrieval).search(query, 5).hits
    return [h.chunk.id for h in hits]


# ----------------------------------------------------------------------------- ingest


def test_incremental_ingest_adds_changes_and_deletes_by_content_hash(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    report = run(settings, [corpus])
    assert report.added == 3 and report.chunks_total == report.chunks_embedded
    check(settings, expected(corpus))

    embedder = FakeEmbedder(name="fake")
    again = run(settings, [corpus], embedder)
    assert not again.changed and embedder.calls == []  # nothing embedded

    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    text = (corpus / "alpha.md").read_text().replace("A walrus was seen.", "A zeppelin flew.")
    (corpus / "alpha.md").write_text(text)
    (corpus / "bravo.md").unlink()
    embedder = FakeEmbedder(name="fake")
    report = run(settings, [corpus], embedder)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 1, 1, 1)
    docs = {d.id: d for d in read_paths([corpus]).documents}
    # Only the new and the changed article were embedded.
    assert sum(embedder.calls) == expected_chunks(docs["delta"]) + expected_chunks(docs["alpha"])
    index = check(settings, expected(corpus))
    texts = " ".join(t for _, t in stored_chunks(index))
    assert "zeppelin" in texts and "walrus" not in texts and "badger" not in texts
    assert any(c.startswith("alpha:") for c in top(settings, "zeppelin flew"))


def test_deleting_everything_leaves_an_empty_searchable_index(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    run(settings, [corpus])
    for p in corpus.iterdir():
        p.unlink()
    assert run(settings, [corpus]).removed == 3
    check(settings, {})
    assert top(settings, "alpaca summit") == []


def test_rebuild_reembeds_everything_and_keeps_folders_not_given(
    settings: Settings, tmp_path: Path
) -> None:
    first = make_corpus(tmp_path / "first")
    second = write(tmp_path / "second", "echo.md", article("Echo deal", "eagle")).parent
    run(settings, [first])
    run(settings, [second])
    smaller = replace(settings, chunking=replace(settings.chunking, max_tokens=40))
    with pytest.raises(QAError, match=r"built with other settings.*max_tokens.*--rebuild"):
        run(smaller, [first])
    with pytest.raises(QAError, match="built with other settings"):
        open_index(smaller, dim=64)
    report = run(smaller, [first], rebuild=True)
    assert report.rebuilt and report.restored == 1  # echo, from the text stored
    wanted = expected(first, smaller) | expected(second, smaller)
    index = check(smaller, wanted)
    assert index.build.max_tokens == 40
    assert any(c.startswith("echo:") for c in top(smaller, "eagle deal"))


def test_another_model_is_refused_with_the_same_error(settings: Settings, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    run(settings, [corpus])
    other = FakeEmbedder(name="fake", dim=32)
    with pytest.raises(QAError, match=r"built with other settings \(dim: index has 64"):
        run(settings, [corpus], other)
    check(settings, expected(corpus))  # nothing written


def test_remove_drops_an_article_and_refuses_unknown_ids(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    run(settings, [corpus])
    with pytest.raises(QAError, match="no article with id nope"):
        remove(settings.index_dir, ["nope"], settings)
    report = remove(settings.index_dir, ["bravo"], settings)
    assert (report.removed, report.articles_total) == (1, 2)
    wanted = expected(corpus)
    del wanted["bravo"]
    index = check(settings, wanted)
    assert index.document("bravo") is None
    doc = index.document("alpha")
    assert doc is not None and "walrus" in doc.text


def test_a_long_article_is_stored_and_read_back_whole(settings: Settings) -> None:
    """An article longer than one Milvus VARCHAR (64 KB) is stored in pieces."""
    text = " ".join(f"Paragraph {i} about the long harbour story." for i in range(4000))
    doc = Document("long", "Long story", text, ((0, len(text)),), "2024-01-02", "Wire")
    sync(settings.index_dir, [doc], FakeEmbedder(name="fake"), settings)
    stored = open_index(settings, dim=64).document("long")
    assert stored == doc and len(text.encode()) > 65_535


# ----------------------------------------------------------------------------- parity


SYLLABLES = ("bar", "cen", "dor", "fal", "gim", "hos", "jut", "kel", "lum", "mav", "nix", "pry")
WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "po", "ri", "su", "te") for b in SYLLABLES]
QUERIES = ("kabar locen midor", "nufal pogim rihos sujut", "tekel kalum", "the")


def _random_documents() -> list[Document]:
    """Articles of random words and random lengths: no two chunks share a vector or a BM25
    score for the queries, so both backends must rank every list identically (no ties)."""
    import random

    rng = random.Random(7)
    docs = []
    for i in range(8):
        sentences = [" ".join(rng.choices(WORDS, k=rng.randint(5, 15))) + "." for _ in range(12)]
        text = " ".join(sentences)
        docs.append(Document(f"d{i}", f"Story {i}", text, ((0, len(text)),), f"2024-01-0{i + 1}"))
    return docs


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory, milvus_db: Path) -> tuple[Settings, Settings]:
    """The same fake-embedded articles in both backends."""
    out = []
    for backend in ("local", "milvus"):
        base = replace(FAKE, paths=replace(FAKE.paths, index=tmp_path_factory.mktemp(backend)))
        s = on_backend(base, backend, milvus_db)
        sync(s.index_dir, _random_documents(), FakeEmbedder(name="fake"), s)
        out.append(s)
    return out[0], out[1]


def _lists(s: Settings, query: str) -> tuple[list[Any], list[Any]]:
    """The dense and the BM25 list of one backend: (chunk id, score), best first."""
    index = open_index(s, dim=64)
    vector = FakeEmbedder(name="fake").embed([query])[0]
    out = []
    for fusion in ("dense", "bm25"):
        found = index.candidates(query, vector, None, replace(s.retrieval, fusion=fusion))
        names = index.chunks([c.row for c in found])
        ranked = sorted(found, key=lambda c: -c.fused)
        out.append([(names[c.row][0].id, c.bm25 if fusion == "bm25" else c.dense) for c in ranked])
    return out[0], out[1]


def _tie_ranks(ranked: list[tuple[str, float]]) -> dict[str, tuple[int, int]]:
    """chunk -> (first, last) rank of the chunks with its score: equal scores may come in
    either order (bm25s and Milvus break ties differently)."""
    ranks: dict[str, tuple[int, int]] = {}
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and abs(ranked[j + 1][1] - ranked[i][1]) <= 1e-6 * abs(
            ranked[i][1]
        ):
            j += 1
        for m in range(i, j + 1):
            ranks[ranked[m][0]] = (i + 1, j + 1)
        i = j + 1
    return ranks


@pytest.mark.parametrize(
    "retrieval",
    [{}, {"fusion": "dense"}, {"fusion": "bm25"}, {"dense_weight": 0.5, "bm25_weight": 2.0}],
    ids=["rrf-in-engine", "dense", "bm25", "weighted-rrf"],
)
def test_both_backends_fuse_the_same_candidates(
    twin: tuple[Settings, Settings], retrieval: dict[str, Any]
) -> None:
    """Every chunk is a candidate (the corpus is smaller than the candidate depth). The rule:
    each list ranks every chunk at the same place on both backends, up to the order of equal
    scores; each chunk's fused score differs at most by what that order can move it
    (``w / (rrf_k + first) - w / (rrf_k + last)`` per list), and its cosine agrees."""
    for query in QUERIES:
        local_dense, local_bm25 = _lists(twin[0], query)
        milvus_dense, milvus_bm25 = _lists(twin[1], query)
        assert {c for c, _ in local_dense} == {c for c, _ in milvus_dense}
        assert {c for c, _ in local_bm25} == {c for c, _ in milvus_bm25}
        assert local_bm25 or query == "the"  # a stop word alone finds nothing by keyword
        dense_ties, bm25_ties = _tie_ranks(local_dense), _tie_ranks(local_bm25)
        for ranked, ties in ((milvus_dense, dense_ties), (milvus_bm25, bm25_ties)):
            for rank, (chunk_id, _) in enumerate(ranked, 1):
                low, high = ties[chunk_id]
                assert low <= rank <= high, (query, chunk_id, rank, ties[chunk_id])

        scores = []
        for s in twin:
            settings = replace(s.retrieval, **retrieval)
            index = open_index(s, dim=64)
            vector = FakeEmbedder(name="fake").embed([query])[0]
            found = index.candidates(query, vector, None, settings)
            names = index.chunks([c.row for c in found])
            scores.append({names[c.row][0].id: (c.fused, c.dense) for c in found})
        local, milvus = scores
        assert local.keys() == milvus.keys()
        settings = replace(twin[0].retrieval, **retrieval)
        k = settings.rrf_k
        for chunk_id, (fused, dense) in local.items():
            slack = 1e-7 * fused  # Milvus Lite returns the fused score as a float32
            for ties, weight, used in (
                (dense_ties, settings.dense_weight, settings.fusion != "bm25"),
                (bm25_ties, settings.bm25_weight, settings.fusion != "dense"),
            ):
                if used and chunk_id in ties:
                    low, high = ties[chunk_id]
                    slack += weight * (1 / (k + low) - 1 / (k + high))
            assert abs(milvus[chunk_id][0] - fused) <= slack, (query, chunk_id)
            assert milvus[chunk_id][1] == pytest.approx(dense, abs=1e-5), chunk_id


def _gold_questions() -> list[str]:
    lines = (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


# A swap of two tied neighbours in one list moves a fused score by at most
# 1 / (61 * 62) = 2.6e-4; the recency prior scales it by at most 1.5.
TIE = 1e-3


@pytest.mark.slow
def test_both_backends_return_the_same_top_passages_for_the_gold_questions(
    assistant: Assistant, milvus_corpus: Settings
) -> None:
    """The rule: for every gold question (as of today, the shipped retrieval settings), the 5
    passages retrieved are the same chunks in the same order on both backends, except that
    where they differ the two chunks are tied on the local backend (their local scores within
    TIE: equal BM25 scores or equal vectors of repeated text ranked in another order). Scores
    agree within TIE, cosines of the same chunk within 1e-5; most questions agree exactly."""
    milvus = Assistant(milvus_corpus, embedder=assistant.embedder)
    questions = _gold_questions()
    assert len(questions) >= 100
    exact = 0
    for question in questions:
        a = assistant.retrieve(question, filters=Filters()).hits
        b = milvus.retrieve(question, filters=Filters()).hits
        assert len(a) == len(b), question
        exact += [h.chunk.id for h in a] == [h.chunk.id for h in b]
        deeper = {h.chunk.id: h for h in assistant.retrieve(question, 20, filters=Filters()).hits}
        for x, y in zip(a, b, strict=True):
            assert abs(x.score - y.score) < TIE, question
            if x.chunk.id == y.chunk.id:
                assert y.dense_score == pytest.approx(x.dense_score, abs=1e-5)
            else:  # a tie: Milvus's chunk scores (nearly) the same on the local backend
                assert y.chunk.id in deeper, (question, y.chunk.id)
                assert abs(deeper[y.chunk.id].score - x.score) < TIE, (question, y.chunk.id)
    assert exact >= 0.9 * len(questions), exact


# ----------------------------------------------------------------------------- settings


def test_backend_settings_are_checked_and_the_token_is_not_a_setting(tmp_path: Path) -> None:
    from qa.core.config import load_settings

    assert load_settings(env={}).index.backend == "local"
    with pytest.raises(QAError, match=r"index\.backend = 'faiss' is not one of: local, milvus"):
        load_settings(env={"QA_INDEX_BACKEND": "faiss"})
    with pytest.raises(QAError, match=r"index\.milvus\.index_type = 'IVF_PQ' is not one of"):
        load_settings(env={"QA_INDEX_MILVUS_INDEX_TYPE": "IVF_PQ"})
    # The token is read where it is used, from the environment only.
    assert load_settings(env={"QA_MILVUS_TOKEN": "root:Milvus"}).index.milvus.uri
    config = tmp_path / "config.toml"
    config.write_text('[index.milvus]\ntoken = "root:Milvus"\n')
    with pytest.raises(QAError, match=r"unknown setting 'index\.milvus\.token'"):
        load_settings(config, env={})


def test_bad_milvus_locations_are_one_line_errors(tmp_path: Path, milvus_db: Path) -> None:
    settings = on_backend(FAKE, "milvus", milvus_db)
    milvus = settings.index.milvus
    bad_uri = replace(settings, index=replace(settings.index, milvus=replace(milvus, uri="x.txt")))
    with pytest.raises(QAError, match=r"neither a Milvus Lite file .* nor a server address"):
        open_index(bad_uri)
    bad_name = replace(
        settings, index=replace(settings.index, milvus=replace(milvus, collection="no-dash"))
    )
    with pytest.raises(QAError, match="use letters, digits and _"):
        open_index(bad_name)
    with pytest.raises(QAError, match=r"no index in Milvus .* run `qa ingest` first"):
        open_index(settings)


def test_a_separate_index_is_a_folder_or_a_collection(settings: Settings, tmp_path: Path) -> None:
    from qa.index import index_version, separate_index

    other = separate_index(settings, tmp_path / "realtimeqa-2024q1-fdaf23bdbb")
    assert other.index_dir == tmp_path / "realtimeqa-2024q1-fdaf23bdbb"
    if settings.index.backend == "milvus":
        prefix = settings.index.milvus.collection
        assert other.index.milvus.collection == f"{prefix}_realtimeqa_2024q1_fdaf23bdbb"
    sync(other.index_dir, _random_documents()[:2], FakeEmbedder(name="fake"), other)
    assert index_version(other) is not None and index_version(settings) is None
