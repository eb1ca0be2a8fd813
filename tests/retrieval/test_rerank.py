"""The sentence rerank of qa.retrieval.retriever: a passage that holds the question's words in one
sentence beats one that scatters them, by the rule RetrievalSettings describes, with the
idf of the whole index (BM25's own document counts)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import fake_settings

from qa.core.config import Settings
from qa.core.types import Document
from qa.embedding.fake import FakeEmbedder
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.index import LocalIndex, sync
from qa.retrieval.retriever import Retriever
from qa.text.words import content_terms

FAKE = fake_settings(max_tokens=200, overlap_tokens=20)
QUESTION = "Which harbour did the storm flood?"


def doc(doc_id: str, text: str) -> Document:
    return Document(doc_id, doc_id.title(), text, ((0, len(text)),), published="2025-06-26")


# Both passages hold "storm", "flood" and "harbour"; only "together" says it in one sentence.
DOCS = [
    doc(
        "apart",
        "A storm came in the night. Rain fell on the hills. The harbour was quiet. "
        "Nobody spoke of a flood.",
    ),
    doc(
        "together",
        "Officials met on Monday. The storm flooded the harbour of Kell at dawn. "
        "Schools were shut.",
    ),
    *(doc(f"filler{i}", f"The council met on day {i} about parks and roads.") for i in range(8)),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    root = tmp_path_factory.mktemp("rerank") / "index"
    sync(root, DOCS, FakeEmbedder(name="fake"), FAKE)
    return LocalIndex.open(root, FAKE, 64)


def search(index: LocalIndex, **changes: object) -> list[tuple[str, float]]:
    settings = replace(FAKE.retrieval, max_per_doc=1, **changes)
    hits = Retriever(index, FakeEmbedder(name="fake"), settings).search(QUESTION, 10).hits
    return [(h.doc.id, h.score) for h in hits]


def test_term_weights_are_the_index_idf(index: LocalIndex) -> None:
    weights = index.term_weights({"storm", "harbour", "council", "absent"})
    n = len(index)
    assert weights["storm"] == pytest.approx(math.log(1 + n / (1 + 2)))
    assert weights["council"] == pytest.approx(math.log(1 + n / (1 + 8)))
    assert weights["absent"] == pytest.approx(math.log(1 + n))
    assert weights["harbour"] > weights["council"]


def test_the_passage_that_says_it_in_one_sentence_is_raised(index: LocalIndex) -> None:
    off = dict(search(index, sentence_weight=0.0))
    on = dict(search(index, sentence_weight=1.0))
    # The rule: fused x (1 + w x best sentence's idf-weighted share of the question's terms).
    terms = content_terms(QUESTION)
    weights = index.term_weights(terms)
    held = terms & content_terms("The storm flooded the harbour of Kell at dawn.")
    share = sum(weights[t] for t in held) / sum(weights.values())
    assert share > 0.5
    assert on["together"] == pytest.approx(off["together"] * (1 + share))
    best_apart = max(
        sum(weights[t] for t in terms & content_terms(s)) for s in DOCS[0].text.split(". ")
    )
    assert on["apart"] == pytest.approx(off["apart"] * (1 + best_apart / sum(weights.values())))
    ranked = [d for d, _ in search(index, sentence_weight=1.0)]
    assert ranked.index("together") < ranked.index("apart")


def test_only_the_rerank_depth_is_read(index: LocalIndex) -> None:
    off = search(index, sentence_weight=0.0)
    shallow = dict(search(index, sentence_weight=1.0, rerank_depth=1))
    # The first candidate alone is rescored; every other score is the fused one.
    first, *rest = off
    assert shallow[first[0]] >= first[1]
    for doc_id, score in rest:
        assert shallow[doc_id] == pytest.approx(score)


@pytest.mark.slow
def test_rerank_on_the_real_index(
    real_embedder: SentenceTransformerEmbedder, corpus_index: Path
) -> None:
    """With the real model the rerank keeps the headline passage first on the bundled corpus
    and changes scores only by its factor (at most 1 + sentence_weight)."""
    index = LocalIndex.open(corpus_index, Settings(), real_embedder.dim)
    question = "What did Khrenin say about India?"
    base = Settings().retrieval
    on = Retriever(index, real_embedder, base).search(question).hits
    off = Retriever(index, real_embedder, replace(base, sentence_weight=0.0)).search(question)
    assert on[0].doc.id.startswith("001_")
    fused = {h.chunk.id: h.score for h in off.hits}
    for h in on:
        if h.chunk.id in fused:
            assert fused[h.chunk.id] <= h.score <= fused[h.chunk.id] * (1 + base.sentence_weight)
