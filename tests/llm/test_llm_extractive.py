"""The extractive client: quotes the answering sentence with its passage number, or refuses."""

from __future__ import annotations

import pytest
from llm_helpers import KHRENIN, KHRENIN_REPRINT, MUMBAI, UNRELATED, make_prompt

from qa.answering.assistant import Assistant
from qa.core.config import Settings
from qa.core.types import Completion, Prompt
from qa.embedding.base import Embedder
from qa.embedding.fake import FakeEmbedder
from qa.llm import create
from qa.llm.extractive import ExtractiveLLM, content_terms
from qa.llm.prompts import CANNOT_ANSWER
from qa.text.evidence import cite, split_sentences

PRIORITY = "Khrenin said India is a priority for Moscow's foreign policy [{n}]."


@pytest.fixture(params=["none", "fake", pytest.param("real", marks=pytest.mark.slow)])
def llm(request: pytest.FixtureRequest) -> ExtractiveLLM:
    embedder: Embedder | None = {
        "none": lambda: None,
        "fake": FakeEmbedder,
        "real": lambda: request.getfixturevalue("real_embedder"),
    }[request.param]()
    client = create("extractive", Settings(), embedder)
    assert isinstance(client, ExtractiveLLM)
    return client


def answer(
    llm: ExtractiveLLM, question: str, texts: list[str], choices: tuple[str, ...] = ()
) -> str:
    return llm.generate(make_prompt(question, texts, choices)).text


def test_picks_the_answering_sentence(llm: ExtractiveLLM) -> None:
    text = answer(llm, "What did Khrenin say about India?", [KHRENIN, MUMBAI])
    assert text.startswith(PRIORITY.format(n=1))
    assert "[2]" not in text  # nothing from the Mumbai passage


def test_cites_the_right_passage_number(llm: ExtractiveLLM) -> None:
    text = answer(llm, "Why were schools closed in Mumbai?", [KHRENIN, MUMBAI])
    assert text.startswith(
        "The city authorities closed schools because the roads were under water [2]."
    )
    text = answer(llm, "What did Khrenin say about India?", [MUMBAI, UNRELATED, KHRENIN])
    assert text.startswith(PRIORITY.format(n=3))


def test_drops_repeated_sentences(llm: ExtractiveLLM) -> None:
    text = answer(llm, "What did Khrenin say about India?", [KHRENIN, KHRENIN_REPRINT, MUMBAI])
    assert text.count("India is a priority") == 1
    assert text.startswith(PRIORITY.format(n=1))  # the better-ranked passage is cited


def test_refuses_when_passages_are_unrelated(llm: ExtractiveLLM) -> None:
    for question in ("Who won the football World Cup final?", "What is the price of gold?"):
        assert answer(llm, question, [KHRENIN, MUMBAI, UNRELATED]) == CANNOT_ANSWER


def test_refuses_without_passages(llm: ExtractiveLLM) -> None:
    assert answer(llm, "What did Khrenin say about India?", []) == CANNOT_ANSWER


def test_multiple_choice_picks_the_supported_option(llm: ExtractiveLLM) -> None:
    text = answer(
        llm,
        "Which country did Khrenin call a priority?",
        [KHRENIN, MUMBAI],
        ("China", "India", "Brazil"),
    )
    assert text == f"Option 2: India. {PRIORITY.format(n=1)}"
    text = answer(
        llm,
        "What flooded the streets of Mumbai?",
        [KHRENIN, MUMBAI],
        ("A burst dam", "High tide", "Heavy rain"),
    )
    assert text == "Option 3: Heavy rain. Heavy rain flooded streets in Mumbai on Monday [2]."


def test_multiple_choice_refuses_when_nothing_supports_an_option(llm: ExtractiveLLM) -> None:
    text = answer(
        llm, "Who won the football World Cup final?", [KHRENIN, MUMBAI], ("France", "Argentina")
    )
    assert text == CANNOT_ANSWER


def test_deterministic(llm: ExtractiveLLM) -> None:
    prompt = make_prompt("What did Khrenin say about India?", [KHRENIN, KHRENIN_REPRINT, MUMBAI])
    first = llm.generate(prompt)
    assert all(llm.generate(prompt) == first for _ in range(3))


def test_stream_yields_sentences_then_completion(llm: ExtractiveLLM) -> None:
    prompt = make_prompt("What did Khrenin say about India?", [KHRENIN, MUMBAI])
    out = list(llm.stream(prompt))
    final = out[-1]
    assert isinstance(final, Completion) and final.model == "extractive"
    assert "".join(p for p in out[:-1] if isinstance(p, str)) == final.text
    assert final == llm.generate(prompt)


def test_embeds_question_and_sentences_in_one_batch() -> None:
    embedder = FakeEmbedder()
    ExtractiveLLM(embedder).generate(make_prompt("What did Khrenin say?", [KHRENIN, MUMBAI]))
    assert len(embedder.calls) == 1


def test_split_sentences_offsets_and_headlines() -> None:
    prompt = make_prompt("q", [KHRENIN, MUMBAI])
    sentences = split_sentences(prompt.passages)
    texts = [s.text for s in sentences]
    assert "Heavy rain flooded streets in Mumbai on Monday." in texts
    assert all("Mumbai floods" not in t for t in texts)  # a two-word headline is no sentence
    for s in sentences:
        hit = prompt.passages[s.n - 1]
        local = s.start - hit.chunk.start
        assert hit.chunk.text[local : local + len(s.text)] == s.text


def test_cite_and_terms() -> None:
    assert cite("India is a priority.", 2) == "India is a priority [2]."
    assert cite('He said "no"', 1) == 'He said "no" [1]'
    assert content_terms("What did the US say about priorities?") == {"us", "prioriti"}


def test_refuses_when_no_passage_holds_the_kind_of_answer_asked_for(llm: ExtractiveLLM) -> None:
    # On topic, but no passage names a company: quoting the closest sentence would answer
    # another question.
    question = "Which Russian company will train Khrenin's officers?"
    assert answer(llm, question, [KHRENIN, MUMBAI]) == CANNOT_ANSWER
    # The same kind of question about something the passage does name is answered, short
    # answer first.
    named = answer(llm, "Which minister arrived in New Delhi on Tuesday?", [KHRENIN, MUMBAI])
    assert named.startswith("Answer: Sergei Khrenin [1]\n")
    assert "Khrenin arrived in New Delhi" in named


def test_the_index_idf_in_the_prompt_decides_which_word_matters() -> None:
    """Five passages are too few to tell a rare word from a common one: the weights the
    assistant puts in the prompt (the index's idf) decide which sentence covers the question."""
    llm = create("extractive", Settings(), None)
    question = "What did the harbour board decide about the ferry?"
    texts = [
        "The harbour board met on Tuesday in the old customs house by the quay.",
        "The ferry will stop running to the island from next spring, officials decided.",
    ]
    harbour = llm.generate(
        make_prompt(question, texts, term_weights={"harbour": 5.0, "board": 5.0, "ferri": 0.1})
    ).text
    ferry = llm.generate(
        make_prompt(question, texts, term_weights={"harbour": 0.1, "board": 0.1, "ferri": 5.0})
    ).text
    assert harbour.startswith("The harbour board met") and "[1]" in harbour
    assert ferry.startswith("The ferry will stop") and "[2]" in ferry


def test_the_assistant_gives_the_index_idf_to_the_model(assistant: Assistant) -> None:
    seen: list[Prompt] = []
    original = assistant.llm.generate

    def spy(prompt: Prompt) -> Completion:
        seen.append(prompt)
        return original(prompt)

    assistant.llm.generate = spy  # type: ignore[method-assign]
    try:
        assistant.ask("What did Khrenin say about India?", choices=("Nothing", "A priority"))
    finally:
        del assistant.llm.generate
    terms = content_terms("What did Khrenin say about India?") | {"noth", "prioriti"}
    assert set(seen[0].term_weights) == terms
    assert seen[0].term_weights == assistant.index.term_weights(terms)
    assert seen[0].term_weights["khrenin"] > seen[0].term_weights["india"]
