"""Short answers: the answer type a question asks for, and candidates voted by the passages.

These run the real spaCy pipeline (en_core_web_sm): the claims are about what it finds."""

from __future__ import annotations

import pytest
from llm_helpers import make_prompt

from qa.answering.check import check_answer
from qa.llm.extractive import ExtractiveLLM
from qa.llm.prompts import CANNOT_ANSWER
from qa.reading.answer_type import (
    AMOUNT,
    COUNT,
    NAMED,
    ORG,
    PERCENT,
    PERSON,
    PLACE,
    TIME,
    answer_type,
    kind_of,
    question_focus,
)
from qa.reading.short_answer import vote

pytestmark = pytest.mark.slow  # loads en_core_web_sm


@pytest.mark.parametrize(
    ("question", "labels", "focus", "typed"),
    [
        ("Who beat Luke Littler to become world champion?", PERSON | ORG, "", True),
        ("Where did the incident occur?", PLACE, "", True),
        ("When was the Indra exercise last held?", TIME, "", True),
        ("How many new bills did the governor sign?", COUNT, "bills", True),
        ("How much did the carrier cost?", AMOUNT, "", True),
        ("What percentage of British teenagers feel addicted?", PERCENT, "percentage", True),
        ("Which US state became the first to certify him?", PLACE, "state", True),
        ("Which of the following politicians is not a candidate?", PERSON, "politicians", True),
        ("Which automaker recalled 112,000 vehicles?", ORG, "automaker", True),
        ("In which year did India hold the SCO presidency?", TIME, "year", True),
        ("Manufacturer Reckitt recalled which product this week?", NAMED, "product", False),
        ("What kind of stance on terrorism did India reaffirm?", NAMED, "stance", False),
        # "the name of the X": the X says the kind, when it names one.
        ("What is the name of the storm that hit Britain?", NAMED, "storm", False),
        ("What is the name of the NFL team that Travis Kelce plays for?", ORG, "team", True),
        ("What is its name?", NAMED, "", False),
        # General English kinds: agent nouns are people, a "tech giant" is a company.
        ("Which comedian will return to late-night TV?", PERSON, "comedian", True),
        ("Which pianist won the competition?", PERSON, "pianist", True),
        ("Which tech giant surpassed Apple?", ORG, "giant", True),
        ("What is the minimum age for users on TikTok?", COUNT | TIME, "age", True),
    ],
)
def test_answer_type(question: str, labels: frozenset[str], focus: str, typed: bool) -> None:
    atype = answer_type(question)
    assert atype is not None
    assert (atype.labels, atype.focus, atype.typed) == (labels, focus, typed)


def test_kind_of_agent_nouns() -> None:
    assert kind_of("activists") == PERSON and kind_of("historian") == PERSON
    assert kind_of("playlist") is None and kind_of("list") is None  # not agents
    assert kind_of("country") == PLACE and kind_of("insect") is None


def test_who_prefers_people_to_organisations() -> None:
    atype = answer_type("Who beat Luke Littler?")
    assert atype is not None and atype.weaker == ORG
    # Two passages name the organisation, one the winner: the person still wins.
    sentences = [
        "Luke Humphries won the title, the Professional Darts Corporation said on its website.",
        "The title was won after a final organised by the Professional Darts Corporation.",
    ]
    assert best("Who won the title?", sentences) == "Luke Humphries"


def test_the_slot_of_the_wh_phrase() -> None:
    atype = answer_type("South Korea passed a law banning the sale of what?")
    assert atype is not None and (atype.labels, atype.before) == (NAMED, "sale")
    atype = answer_type("Billions of which insect are expected to emerge this spring?")
    assert atype is not None and (atype.focus, atype.before, atype.after) == (
        "insect",
        "billion",
        "expect",
    )
    # An inverted question's answer is the verb's object, not next to its subject.
    atype = answer_type("In which two fields did the talks seek to expand cooperation?")
    assert atype is not None and (atype.focus, atype.after) == ("fields", "")
    # A relative clause with its own subject, and a word of an earlier sentence, are no slot.
    atype = answer_type("What is the name of the festival that Phish is hosting in Dover?")
    assert atype is not None and (atype.focus, atype.before, atype.after) == ("festival", "", "")
    atype = answer_type("A lander flew to the moon this week. What is the name of the spacecraft?")
    assert atype is not None and (atype.focus, atype.before, atype.after) == ("spacecraft", "", "")
    # A question that starts with "what" and names no noun still asks for no short answer.
    assert answer_type("What did Khrenin say about India?") is None


def test_questions_without_a_short_answer() -> None:
    assert answer_type("What did Khrenin say about India?") is None
    assert answer_type("Did Singh meet Belousov?") is None
    assert question_focus("What did Khrenin say about India?") == ""


def best(question: str, sentences: list[str], weights: list[float] | None = None) -> str:
    atype = answer_type(question)
    assert atype is not None
    found = vote(
        question,
        atype,
        sentences,
        list(range(1, len(sentences) + 1)),
        weights or [1.0] * len(sentences),
    )
    return found[0].text if found else ""


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        (
            "Who won the PDC world darts championship?",
            "Luke Humphries won the PDC world darts championship on Wednesday night.",
            "Luke Humphries",
        ),
        (
            "Where did the two planes collide?",
            "Two planes collided on a runway in Tokyo on Tuesday.",
            "Tokyo",
        ),
        (
            "When did the Pahalgam attack take place?",
            "The Pahalgam attack took place on April 22, 2025, officials said.",
            "April 22, 2025",
        ),
        (
            "How many civilians were killed in the Pahalgam attack?",
            "The attack in Pahalgam killed 26 civilians including a Nepali national.",
            "26",
        ),
        (
            "What percentage of teenagers feel addicted to social media?",
            "The survey found that 48% of teenagers feel addicted to social media.",
            "48%",
        ),
        (
            "Which automaker recalled more than 112,000 vehicles?",
            "Ford recalled more than 112,000 vehicles over a roll-away risk.",
            "Ford",
        ),
        (
            "Which aircraft carrier is among the projects?",
            "The projects include the INS Vikramaditya aircraft carrier and BrahMos missiles.",
            "INS Vikramaditya",
        ),
        # "who" wants a person before an organisation in the same sentence.
        (
            "Who won the title?",
            "The Professional Darts Corporation said the title was won by Luke Humphries.",
            "Luke Humphries",
        ),
        # "which month" wants the month of a date, and a weekday is no month.
        (
            "Which month will the trial start?",
            "The trial will start on Tuesday, after jury selection in March.",
            "March",
        ),
        (
            "In which month is the deadline to file tax returns?",
            "The deadline to file tax returns is April 15 for most Americans.",
            "April",
        ),
        # A hedge is not part of the number.
        (
            "How much will the corridor project cost?",
            "The corridor project will cost nearly $200 million.",
            "$200 million",
        ),
        # A possessive is not part of a name; a dateline is not an answer.
        (
            "Presidents' Day falls near which president's birthday?",
            "Presidents' Day falls near George Washington's birthday, on February 22.",
            "George Washington",
        ),
        (
            "Which state held a special election this week?",
            "WASHINGTON (AP) — New York held a special election on Tuesday.",
            "New York",
        ),
        # Common nouns that fill the wh-phrase's slot in the sentence.
        (
            "South Korea passed a law this week banning the sale of what?",
            "South Korea's parliament passed a law banning the sale of dog meat.",
            "dog meat",
        ),
        (
            "Billions of which insect are expected to emerge across the US Midwest?",
            "Billions of cicadas are expected to emerge across the Midwest this spring.",
            "cicadas",
        ),
        (
            "What is the name of the spacecraft that landed on the Moon?",
            "The Odysseus spacecraft landed on the Moon on Thursday, Intuitive Machines said.",
            "Odysseus",
        ),
        (
            "Which holiday is celebrated by millions of people this month?",
            "Lunar New Year is celebrated by millions of people around the world.",
            "Lunar New Year",
        ),
    ],
)
def test_candidate_by_type(question: str, sentence: str, expected: str) -> None:
    assert best(question, [sentence]) == expected


def test_passages_that_agree_outvote_one_better_passage() -> None:
    question = "Who won the election in Taiwan?"
    sentences = [
        "Hou Yu-ih won the election in Taiwan, one early report claimed.",
        "Lai Ching-te won the election in Taiwan on Saturday.",
        "Taiwan's election was won by Lai Ching-te of the ruling party.",
    ]
    assert best(question, sentences, [0.9, 0.6, 0.6]) == "Lai Ching-te"
    # One passage alone: the best sentence wins.
    assert best(question, sentences[:2], [0.9, 0.6]) == "Hou Yu-ih"


def test_a_candidate_of_question_words_only_is_no_answer() -> None:
    question = "Who did Luke Littler lose to in the final?"
    sentence = "Luke Littler lost to Luke Humphries in the final."
    assert best(question, [sentence]) == "Luke Humphries"


def test_same_passage_votes_once() -> None:
    question = "Who won the final?"
    atype = answer_type(question)
    assert atype is not None
    sentences = [
        "Luke Humphries won the final.",
        "Luke Humphries won the final in London.",
        "Rob Cross won it.",
    ]
    found = vote(question, atype, sentences, [1, 1, 2], [0.5, 0.5, 0.9])
    by_text = {c.text: c for c in found}
    # Two sentences of passage 1 count as one vote (of about 0.5, less a little for distance).
    assert by_text["Luke Humphries"].passages == 1
    assert by_text["Luke Humphries"].score == pytest.approx(0.5, rel=0.05)
    assert found[0].text == "Rob Cross"


# ---- the extractive client writes the short answer; the checker keeps it


FLOODS = (
    "Heavy rain flooded streets in Mumbai on Monday. Officials said 14 people died in the "
    "floods. The city closed schools because the roads were under water."
)


def test_extractive_short_answer_survives_the_checker() -> None:
    prompt = make_prompt("How many people died in the Mumbai floods?", [FLOODS])
    raw = ExtractiveLLM().generate(prompt).text
    assert raw.startswith("Answer: 14 [1]\n")
    checked = check_answer(raw, prompt.passages, lambda _id: None)
    assert checked.answered and checked.short_answer == "14" and checked.short_citation == 1
    assert "14 people died" in checked.text


@pytest.mark.parametrize(
    "question",
    [
        "How many people were injured in the Delhi earthquake?",  # the event is in no passage
        "When did the Mumbai schools reopen?",  # on topic, but no date in any sentence about it
        "Who is the mayor of Mumbai?",  # no person in the passage
    ],
)
def test_refuses_what_no_passage_answers(question: str) -> None:
    assert ExtractiveLLM().generate(make_prompt(question, [FLOODS])).text == CANNOT_ANSWER


def test_answers_the_same_kind_of_question_when_the_passage_does() -> None:
    text = ExtractiveLLM().generate(make_prompt("When did rain flood Mumbai?", [FLOODS])).text
    assert text.startswith("Answer: Monday [1]")


def test_a_name_found_under_its_short_form_votes_for_the_full_name() -> None:
    question = "Whose voice did the robocall fake?"
    sentences = [
        "The robocall faked the voice of Joe Biden, officials said.",
        "Biden's voice was faked in the call.",
        "The fake Biden voice urged voters to stay home.",
    ]
    atype = answer_type(question)
    assert atype is not None
    found = vote(question, atype, sentences, [1, 2, 3], [0.5, 0.6, 0.6])
    assert found[0].text == "Joe Biden"
    assert "Biden" not in {c.text for c in found}
    # All three passages now support the full name.
    assert found[0].passages == 3


def test_only_names_are_tiled() -> None:
    question = "How much will the corridor project cost?"
    sentences = [
        "The corridor project will cost nearly $200 million, the state said.",
        "Planners put the corridor project at $200 million.",
        "The corridor project's $200 million budget was approved.",
    ]
    assert best(question, sentences) == "$200 million"


def test_a_dateline_is_no_candidate() -> None:
    question = "Which state held a special election this week?"
    sentence = "WASHINGTON (AP) — New York held a special election on Tuesday."
    atype = answer_type(question)
    assert atype is not None
    found = {c.text for c in vote(question, atype, [sentence], [1], [1.0])}
    assert found == {"New York"}


def test_a_mention_run_over_a_dash_is_cut() -> None:
    question = "What time can bars start serving alcohol?"
    sentence = "Bars can start serving alcohol at 8 a.m. ― an hour earlier than before."
    assert best(question, [sentence]) == "8 a.m."
