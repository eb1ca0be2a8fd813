"""One copy of each rule: the citation-marker and option rules of qa.answering.check are the ones
the
eval harness strips, one Punkt tokenizer serves chunking and the extractive client, and one
stop-word list and stemmer serve BM25 and sentence scoring."""

from __future__ import annotations

from qa.answering import check, compact
from qa.answering.check import MARKER, OPTION
from qa.core.types import Answer
from qa.evaluation import runner as evaluate
from qa.llm import extractive
from qa.retrieval import retriever
from qa.text import evidence
from qa.text.sentences import passage_sentences, sentence_spans, sentence_tokenizer


def _answer(text: str, answered: bool = True) -> Answer:
    return Answer("q", text, answered, (), (), "fake")


def test_answer_text_strips_what_qa_answer_parses() -> None:
    assert evaluate.answer_text(_answer("Option 2: India and Russia [1, 2]")) == "India and Russia"
    assert evaluate.answer_text(_answer("OPTION 3 : Delhi [3]")) == "Delhi"
    assert evaluate.answer_text(_answer("India [1]", answered=False)) == ""
    # Built from the parser's own patterns, not a copy of them.
    assert MARKER.pattern in evaluate._MARKERS.pattern
    assert OPTION.pattern in evaluate._MARKERS.pattern


def test_one_punkt_tokenizer_for_chunking_the_rerank_and_the_extractive_client() -> None:
    from qa.retrieval import retriever as retrieve

    assert sentence_tokenizer() is sentence_tokenizer()
    assert evidence.passage_sentences is passage_sentences is retrieve.passage_sentences
    assert extractive.split_sentences is evidence.split_sentences
    assert not hasattr(extractive, "_sentence_tokenizer")
    text = "Mr. Khrenin met Mr. Singh. They spoke of India."
    expected = ["Mr. Khrenin met Mr. Singh.", "They spoke of India."]
    assert [text[s:e] for s, e in sentence_spans(text, 0, len(text))] == expected
    assert [text[s:e] for s, e in passage_sentences(text)] == expected
    assert passage_sentences(text) is passage_sentences(text)  # split once


def test_one_stop_word_list_and_one_stemmer_for_bm25_and_sentence_scoring() -> None:
    from qa.index import bm25
    from qa.text.words import STOPWORDS, bm25_stopwords, content_terms, stemmer

    # The content-word filter extends the BM25 stop words; it does not keep a copy of them.
    assert bm25_stopwords() < STOPWORDS
    assert not hasattr(bm25, "_stopwords") and not hasattr(bm25, "_stemmer")
    # Both stem alike, so the index's term counts weigh the terms sentences hold.
    text = "Khrenin praised the growing defence partnerships of India and Belarus"
    assert set(bm25.bm25_tokens(text)) >= content_terms(text)
    assert stemmer() is stemmer()


def test_one_sentence_scorer_for_the_rerank_the_compaction_the_check_and_the_reader() -> None:
    # "What weighted share of the question's words does this sentence hold" has one copy.
    assert retriever.share is compact.share is check.share is extractive.share is evidence.share
    assert evidence.share({"a", "b"}, {"a"}) == 0.5
    assert evidence.share({"a", "b"}, {"a"}, {"a": 3.0, "b": 1.0}) == 0.75
    assert evidence.share({"a"}, {"a"}, {"a": 0.0}) == 0.0  # words that weigh nothing
