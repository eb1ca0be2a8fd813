"""Multiple choice by evidence: the option that relevant passages name, cited."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from llm_helpers import make_prompt

from qa.answering.assistant import Assistant
from qa.answering.check import check_answer
from qa.embedding.fake import FakeEmbedder
from qa.llm.extractive import ExtractiveLLM
from qa.llm.prompts import CANNOT_ANSWER
from qa.reading.choice import decide, option_terms
from qa.text.words import content_terms


def terms(*sentences: str) -> list[frozenset[str]]:
    return [frozenset(content_terms(s)) for s in sentences]


def test_options_lose_the_words_they_all_share() -> None:
    assert option_terms(["King Harald", "King Felipe"]) == [{"harald"}, {"felip"}]
    # An option made only of shared words keeps them (it must still be findable).
    assert option_terms(["King", "King"]) == [{"king"}, {"king"}]


def test_passages_that_agree_outvote_a_single_one() -> None:
    choices = ["Honda", "Ford"]
    sentences = terms(
        "Honda recalled 112,000 vehicles, a rumour said.",
        "Ford recalled 112,000 vehicles over a roll-away risk.",
        "The recall by Ford covers 112,000 vehicles.",
    )
    decision = decide(choices, sentences, [1, 2, 3], np.array([1.0, 0.8, 0.8]), lambda t: 1.0)
    assert decision is not None and decision.option == 1
    assert decision.sentence in (1, 2)  # a sentence that names Ford decides it
    assert decision.support[1] > decision.support[0]


def test_no_sentence_names_an_option_is_no_evidence() -> None:
    sentences = terms("Heavy rain flooded streets in Mumbai on Monday.")
    assert decide(["Honda", "Ford"], sentences, [1], np.array([1.0]), lambda t: 1.0) is None


KHRENIN = (
    "Belarusian Defence Minister Viktor Khrenin met Rajnath Singh in Qingdao. Khrenin said "
    "India is a significant focus of Belarus's foreign policy."
)
BELOUSOV = (
    "Russian Defence Minister Andrey Belousov met Rajnath Singh in Qingdao. Belousov said the "
    "ties had stood the test of time."
)


def test_extractive_choice_cites_the_deciding_passage() -> None:
    question = "Which minister said India is a significant focus of his country's foreign policy?"
    prompt = make_prompt(question, [BELOUSOV, KHRENIN], ("Andrey Belousov", "Viktor Khrenin"))
    raw = ExtractiveLLM().generate(prompt).text
    assert raw.startswith("Option 2: Viktor Khrenin.")
    checked = check_answer(raw, prompt.passages, lambda _id: None, prompt.choices)
    assert checked.choice == 1
    assert [c.n for c in checked.citations] == [2]
    assert "Khrenin" in checked.citations[0].quote


def test_extractive_choice_without_evidence_says_so() -> None:
    # No sentence names an option, and no embedder to judge closeness: a refusal.
    prompt = make_prompt("Which carmaker recalled vehicles?", [KHRENIN], ("Honda", "Ford"))
    raw = ExtractiveLLM().generate(prompt).text
    assert raw == CANNOT_ANSWER
    checked = check_answer(raw, prompt.passages, lambda _id: None, prompt.choices)
    assert not checked.answered and checked.choice is None


@pytest.mark.slow
def test_assistant_retrieves_per_option_and_cites_the_decision(assistant: Assistant) -> None:
    question = "Which Belarusian minister did Rajnath Singh meet in Qingdao?"
    choices = ("Andrey Belousov", "Viktor Khrenin", "Sergei Shoigu", "Li Shangfu")
    # At the shipped bar: that option, or "the articles do not decide"; never another.
    assert assistant.ask(question, choices=choices).choice in (1, None)
    bar_at_0 = replace(
        assistant.settings, answer=replace(assistant.settings.answer, min_choice_confidence=0.0)
    )
    answer = Assistant(bar_at_0, embedder=assistant.embedder).ask(question, choices=choices)
    assert answer.choice == 1 and answer.answered
    assert answer.citations
    assert all("Khrenin" in answer.passages[c.n - 1].chunk.text for c in answer.citations)
    # Passages for every option were retrieved (more than one search's k).
    assert len(answer.passages) > assistant.settings.retrieval.k


def test_choice_without_a_named_option_is_refused() -> None:
    # The passage is about the question but names no option: no option is chosen (a choice by
    # closeness in meaning was right less often than a guess on RealTime QA), and the answer
    # says the articles do not answer, as it does for unrelated passages.
    recall = "A large carmaker recalled 112,000 vehicles over a roll-away risk on Monday."
    question = "Which carmaker recalled vehicles over a roll-away risk?"
    llm = ExtractiveLLM(FakeEmbedder())
    assert llm.generate(make_prompt(question, [KHRENIN], ("Honda", "Ford"))).text == CANNOT_ANSWER
    prompt = make_prompt(question, [recall], ("Honda", "Ford"))
    assert llm.generate(prompt).text == CANNOT_ANSWER
    named = make_prompt(question, [recall.replace("A large carmaker", "Ford")], ("Honda", "Ford"))
    raw = llm.generate(named).text
    assert raw.startswith("Option 2: Ford.")
    checked = check_answer(raw, named.passages, lambda _id: None, named.choices)
    assert checked.choice == 1 and [c.n for c in checked.citations] == [1]
