"""Tests for qa.ingest.chunk, budgeted with the real tokenizer of all-MiniLM-L6-v2.

The token budget is checked by re-tokenising exactly what the index embeds (title + passage)
with the model's own tokenizer, special tokens included.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from qa.core.config import Settings
from qa.core.types import Chunk, Document
from qa.embedding.fake import FakeEmbedder
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.ingest import read_paths
from qa.ingest.chunk import MAX_TITLE_TOKENS, chunk_document, embed_text, embedded_title

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
MODEL_LIMIT = 256  # word pieces all-MiniLM-L6-v2 reads, [CLS] and [SEP] included
SETTINGS = Settings().chunking  # max_tokens 200, overlap_tokens 40, embed_title True

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    result = read_paths([CORPUS])
    assert len(result.documents) == 5
    return result.documents


def model_tokens(embedder: SentenceTransformerEmbedder, text: str) -> int:
    """Word pieces the model really reads for ``text``, special tokens included."""
    return len(embedder.model.tokenizer(text, add_special_tokens=True)["input_ids"])


def chunks_of(
    doc: Document,
    embedder: SentenceTransformerEmbedder | FakeEmbedder,
    max_tokens: int = SETTINGS.max_tokens,
    overlap_tokens: int = SETTINGS.overlap_tokens,
    with_title: bool = True,
) -> list[Chunk]:
    return chunk_document(
        doc,
        embedder.count_tokens,
        max_tokens=max_tokens,
        overlap_tokens=overlap_tokens,
        model_max_tokens=MODEL_LIMIT,
        with_title=with_title,
    )


def embedded(doc: Document, chunk: Chunk, embedder: SentenceTransformerEmbedder) -> str:
    return embed_text(embedded_title(doc.title, embedder.count_tokens), chunk.text, True)


def assert_exact_offsets(doc: Document, chunk: Chunk) -> None:
    """``chunk.text`` is consecutive pieces of the kept text of ``doc.text``, joined by single
    spaces (a blank line around a heading): walking the article from ``start``, every
    character matches, and between two pieces only whitespace or dropped (boilerplate) lines
    are passed over, never kept text; the walk ends exactly at ``end``."""
    kept = [False] * len(doc.text)
    for s, e in doc.segments:
        kept[s:e] = [True] * (e - s)

    def skip(p: int) -> int:
        while p < chunk.end and (doc.text[p].isspace() or not kept[p]):
            p += 1
        return p

    assert kept[chunk.start] and doc.text[chunk.start] == chunk.text[0], chunk.id
    p, prev = chunk.start, ""
    for ch in chunk.text:
        if p < chunk.end and doc.text[p] == ch:
            assert kept[p] or ch.isspace(), (chunk.id, p)
            p += 1
        elif ch.isspace():
            p = skip(p)  # the separator of two pieces: a space, or blank lines at a heading
        elif prev.isspace():
            p = skip(p)  # the article had more whitespace (or a dropped line) there
            assert p < chunk.end and doc.text[p] == ch, (chunk.id, p)
            p += 1
        else:
            raise AssertionError(f"{chunk.id}: text differs from the article at offset {p}")
        prev = ch
    assert p == chunk.end, (chunk.id, p, chunk.end)


def assert_nothing_lost(doc: Document, chunks: list[Chunk]) -> None:
    """Every word of the cleaned article lies inside some chunk's span and text."""
    for s, e in doc.segments:
        for m in re.finditer(r"\S+", doc.text[s:e]):
            ws, we = s + m.start(), s + m.end()
            assert any(c.start <= ws and we <= c.end and m.group() in c.text for c in chunks), (
                f"{doc.id}: word {m.group()!r} at {ws} is in no chunk"
            )


def assert_ids(doc: Document, chunks: list[Chunk]) -> None:
    assert [c.id for c in chunks] == [f"{doc.id}:{i}" for i in range(len(chunks))]
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(c.doc_id == doc.id for c in chunks)


def overlap_tokens_between(
    doc: Document, prev: Chunk, nxt: Chunk, embedder: SentenceTransformerEmbedder
) -> int:
    """Tokens of the sentences the next chunk repeats from the previous one (0 if none)."""
    assert nxt.start > prev.start, "each chunk must advance"
    if nxt.start >= prev.end:
        return 0
    # The repeated part is a prefix of the next chunk and a suffix of the previous one.
    words = [
        w
        for s, e in doc.segments
        for w in doc.text[max(s, nxt.start) : min(e, prev.end)].split()
        if max(s, nxt.start) < min(e, prev.end)
    ]
    assert nxt.text.split()[: len(words)] == words
    assert prev.text.split()[-len(words) :] == words
    return embedder.count_tokens([" ".join(words)])[0]


# ----------------------------------------------------------------------------- the corpus


def test_corpus_chunks_fit_the_budget_with_the_real_tokenizer(
    real_embedder: SentenceTransformerEmbedder, corpus: list[Document]
) -> None:
    for doc in corpus:
        chunks = chunks_of(doc, real_embedder)
        assert chunks, doc.id
        for chunk in chunks:
            n = model_tokens(real_embedder, embedded(doc, chunk, real_embedder))
            # The configured budget (title included) plus [CLS] and [SEP].
            assert n <= SETTINGS.max_tokens + 2, (chunk.id, n)


def test_budget_above_the_model_limit_is_capped(
    real_embedder: SentenceTransformerEmbedder, corpus: list[Document]
) -> None:
    for doc in corpus:
        for chunk in chunks_of(doc, real_embedder, max_tokens=1000):
            assert (
                model_tokens(real_embedder, embedded(doc, chunk, real_embedder)) <= MODEL_LIMIT
            ), chunk.id


def test_corpus_offsets_ids_and_coverage(
    real_embedder: SentenceTransformerEmbedder, corpus: list[Document]
) -> None:
    for doc in corpus:
        chunks = chunks_of(doc, real_embedder)
        assert_ids(doc, chunks)
        assert_nothing_lost(doc, chunks)
        for chunk in chunks:
            assert_exact_offsets(doc, chunk)


def test_corpus_overlap_is_present_and_bounded(
    real_embedder: SentenceTransformerEmbedder, corpus: list[Document]
) -> None:
    pairs = with_overlap = 0
    for doc in corpus:
        chunks = chunks_of(doc, real_embedder)
        for prev, nxt in itertools.pairwise(chunks):
            pairs += 1
            shared = overlap_tokens_between(doc, prev, nxt, real_embedder)
            assert shared <= SETTINGS.overlap_tokens, (nxt.id, shared)
            with_overlap += shared > 0
    # A sentence longer than the overlap budget cannot be repeated, so not every pair shares
    # one; but most do in these news articles.
    assert pairs >= 10
    assert with_overlap >= pairs * 0.6, (with_overlap, pairs)


def test_no_overlap_when_disabled(
    real_embedder: SentenceTransformerEmbedder, corpus: list[Document]
) -> None:
    doc = max(corpus, key=lambda d: len(d.clean_text))
    chunks = chunks_of(doc, real_embedder, overlap_tokens=0)
    assert len(chunks) > 3
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.start > prev.end
    assert_nothing_lost(doc, chunks)


# ----------------------------------------------------------------------------- synthetic


def long_sentence_doc() -> Document:
    """Short sentences around one 600-word sentence with no punctuation to split on."""
    words = [f"{w}{i}" for i, w in enumerate(["alpha", "Bravo", "charlie's", "delta-x"] * 150)]
    long = "The committee listed " + " ".join(words) + " before adjourning."
    intro = " ".join(f"Short sentence number {i} opens the report." for i in range(12))
    outro = " ".join(f"Closing remark {i} ends the report." for i in range(12))
    text = f"{intro}\n\n{long}\n\nNavigation link\n\n{outro}\n"
    start_long = text.index(long)
    nav = text.index("Navigation link")
    start_outro = text.index(outro)
    segments = (
        (0, len(intro)),
        (start_long, start_long + len(long)),
        (start_outro, start_outro + len(outro)),
    )
    assert nav < start_outro
    return Document("synthetic/long", "A report with a very long sentence", text, segments)


def test_long_sentence_is_cut_at_word_boundaries(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    doc = long_sentence_doc()
    chunks = chunks_of(doc, real_embedder)
    assert len(chunks) >= 5  # 600+ words cannot fit in two 200-token chunks
    assert_ids(doc, chunks)
    assert_nothing_lost(doc, chunks)
    whole_words = set(doc.clean_text.split())
    for chunk in chunks:
        assert (
            model_tokens(real_embedder, embedded(doc, chunk, real_embedder))
            <= SETTINGS.max_tokens + 2
        )
        assert_exact_offsets(doc, chunk)
        # Cut between words, never inside one.
        assert set(chunk.text.split()) <= whole_words, chunk.id
        assert doc.text[chunk.start - 1].isspace() or chunk.start == 0
        assert chunk.end == len(doc.text) or not doc.text[chunk.end].isalnum()
    # The dropped navigation line (not in a segment) is in no chunk.
    assert not any("Navigation" in c.text for c in chunks)


def test_long_sentence_with_budget_above_the_model_limit(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    doc = long_sentence_doc()
    chunks = chunks_of(doc, real_embedder, max_tokens=512)
    for chunk in chunks:
        assert model_tokens(real_embedder, embedded(doc, chunk, real_embedder)) <= MODEL_LIMIT
    assert_nothing_lost(doc, chunks)


def test_overlap_between_every_pair_of_short_sentences(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    text = " ".join(f"Minister number {i} met the delegation on day {i}." for i in range(80))
    doc = Document("synthetic/short", "Meetings", text, ((0, len(text)),))
    chunks = chunks_of(doc, real_embedder, max_tokens=100, overlap_tokens=30)
    assert len(chunks) > 5
    for prev, nxt in itertools.pairwise(chunks):
        shared = overlap_tokens_between(doc, prev, nxt, real_embedder)
        assert 0 < shared <= 30, (nxt.id, shared)
    assert_nothing_lost(doc, chunks)


def test_long_title_is_cut_and_budgeted(real_embedder: SentenceTransformerEmbedder) -> None:
    title = " ".join(["Extraordinary"] * 80)  # 80 word pieces, over MAX_TITLE_TOKENS
    text = " ".join(f"Sentence {i} talks about the weather in town." for i in range(150))
    doc = Document("synthetic/title", title, text, ((0, len(text)),))
    cut = embedded_title(title, real_embedder.count_tokens)
    assert title.startswith(cut)
    assert real_embedder.count_tokens([cut])[0] == MAX_TITLE_TOKENS
    for max_tokens in (200, 400):
        for chunk in chunks_of(doc, real_embedder, max_tokens=max_tokens):
            n = model_tokens(real_embedder, embedded(doc, chunk, real_embedder))
            assert n <= min(max_tokens + 2, MODEL_LIMIT), (max_tokens, chunk.id, n)
    assert embedded_title("Short title", real_embedder.count_tokens) == "Short title"


def test_without_title_the_whole_budget_is_the_passage(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    doc = long_sentence_doc()
    with_title = chunks_of(doc, real_embedder, with_title=True)
    without = chunks_of(doc, real_embedder, with_title=False)
    assert len(without) <= len(with_title)
    for chunk in without:
        assert model_tokens(real_embedder, chunk.text) <= SETTINGS.max_tokens + 2


def test_chunking_is_deterministic_and_empty_segments_give_no_chunks() -> None:
    fake = FakeEmbedder()
    doc = long_sentence_doc()
    assert chunks_of(doc, fake) == chunks_of(doc, fake)
    empty = Document("empty", "Title", "   \n", ())
    assert chunks_of(empty, fake) == []


# ----------------------------------------------------------------------------- one long line


def one_line_doc(words: int) -> Document:
    """An article that is a single line (issue #13: 1 MB of it): sentences of 1,500 words, each
    far longer than any chunk."""
    vocabulary = [f"{w}{i % 40}" for i, w in enumerate(["minister", "talks", "trade"] * 40)]
    text = " ".join(
        vocabulary[(i * 7) % len(vocabulary)] + ("." if i % 1500 == 1499 else "")
        for i in range(words)
    )
    return Document("one-line", "One line", text, ((0, len(text)),))


def test_a_long_line_is_never_tokenized_whole_and_each_word_once() -> None:
    """The tokenizer's cost grows faster than its input, and one call per word dominated:
    the work handed to it must not grow with the length of the line."""
    fake = FakeEmbedder()
    calls: list[list[str]] = []

    def recording(texts: Sequence[str]) -> list[int]:
        calls.append(list(texts))
        return fake.count_tokens(texts)

    seen = []
    for words in (20_000, 80_000):
        calls.clear()
        doc = one_line_doc(words)
        chunks = chunk_document(doc, recording, max_tokens=200, overlap_tokens=40)
        assert_nothing_lost(doc, chunks)
        longest = max(len(t) for call in calls for t in call)
        texts = sum(len(call) for call in calls)
        seen.append((longest, texts))
    (longest_small, texts_small), (longest_big, texts_big) = seen
    assert longest_big <= 4096 and longest_big == longest_small  # bounded, not the whole line
    assert texts_big == texts_small  # distinct words only: 4x the line, no more words counted


def test_a_1mb_line_is_chunked_in_seconds_with_the_real_tokenizer(
    real_embedder: SentenceTransformerEmbedder,
) -> None:
    # Before the fix: about 20 s and +350 MB on the shared 2-core machine; after: about 1 s.
    doc = one_line_doc(120_000)
    assert len(doc.text) > 1_000_000
    started = time.perf_counter()
    chunks = chunks_of(doc, real_embedder)
    assert time.perf_counter() - started < 10
    assert_nothing_lost(doc, chunks)
    for chunk in chunks[:: max(1, len(chunks) // 20)]:
        text = embedded(doc, chunk, real_embedder)
        assert model_tokens(real_embedder, text) <= SETTINGS.max_tokens + 2
