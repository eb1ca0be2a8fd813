"""Citation checking and prompt budgeting, on hand-made passages (no model, no index)."""

from __future__ import annotations

from qa.answering.check import build_prompt, check_answer, split_short_answer
from qa.answering.short_line import echoed_words
from qa.core.types import Chunk, DocInfo, Document, Hit
from qa.llm import prompts

BELARUS = (
    "Belarusian Defence Minister Viktor Khrenin has underscored that India is a significant "
    "focus within Belarus's foreign policy. He noted that both countries share similar positions "
    "on pressing international security issues."
)
RUSSIA = (
    "Russian Defence Minister Andrey Belousov said Russia stands in complete solidarity with "
    "India against terrorism. The talks covered S-400 deliveries."
)


def _doc(doc_id: str, title: str, text: str) -> Document:
    return Document(doc_id, title, text, ((0, len(text)),), published="2025-06-26")


DOCS = {
    "belarus": _doc("belarus", "Khrenin on India", BELARUS),
    "russia": _doc("russia", "Belousov", RUSSIA),
}


def _hit(doc: Document, rank: int) -> Hit:
    chunk = Chunk(f"{doc.id}:0", doc.id, 0, doc.text, 0, len(doc.text))
    return Hit(chunk, DocInfo(doc.id, doc.title, doc.published), 1.0 / rank, rank)


PASSAGES = (_hit(DOCS["belarus"], 1), _hit(DOCS["russia"], 2))


def check(raw: str, choices: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return check_answer(raw, PASSAGES, DOCS.get, choices)


def test_valid_citation_is_kept_with_quote_and_offsets() -> None:
    result = check("Khrenin said India is a significant focus of Belarus's foreign policy [1].")
    assert result.answered
    assert [c.n for c in result.citations] == [1]
    c = result.citations[0]
    assert c.doc_id == "belarus" and c.published == "2025-06-26"
    assert BELARUS[c.start : c.end] == c.quote
    assert "significant focus" in c.quote
    assert result.text.endswith("[1].")


def test_invented_citation_number_is_removed_and_replaced_by_support() -> None:
    result = check("Khrenin said India is a significant focus of Belarus's foreign policy [7].")
    assert "[7]" not in result.text
    assert [c.n for c in result.citations] == [1]


def test_wrong_citation_is_moved_to_the_supporting_passage() -> None:
    result = check("Belousov said Russia stands in complete solidarity with India [1].")
    assert [c.n for c in result.citations] == [2]
    assert "[2]" in result.text and "[1]" not in result.text


def test_uncited_sentence_gets_the_best_passage() -> None:
    result = check("Russia stands in complete solidarity with India against terrorism.")
    assert result.answered
    assert [c.n for c in result.citations] == [2]
    assert result.text.endswith("[2].")


def test_unsupported_sentence_is_dropped_and_listed() -> None:
    result = check(
        "Khrenin said India is a significant focus of Belarus's foreign policy [1]. "
        "The ministers also signed a trade deal worth ten billion dollars on bananas."
    )
    assert result.answered
    assert len(result.unsupported) == 1 and "bananas" in result.unsupported[0]
    assert "bananas" not in result.text


def test_refusal_and_all_unsupported_answers_are_not_answered() -> None:
    refused = check(prompts.CANNOT_ANSWER)
    assert not refused.answered and refused.citations == ()
    invented = check("The Eiffel Tower was painted green in 1999.")
    assert not invented.answered and invented.text == prompts.CANNOT_ANSWER
    assert invented.unsupported
    assert not check("").answered


def test_every_stock_refusal_phrase_is_a_refusal_not_a_claim() -> None:
    # One list with qa.evaluation.metrics.is_refusal: phrases it knew ("cannot determine") count
    # here too.
    for reply in (
        "I cannot determine what Khrenin said about India.",
        "I can’t tell what Khrenin said about India.",
        "There is not enough information about what Khrenin said about India.",
    ):
        result = check(reply)
        assert not result.answered and result.text == prompts.CANNOT_ANSWER, reply


def test_duplicate_and_grouped_markers() -> None:
    result = check(
        "Khrenin said India is a significant focus of Belarus's foreign policy [1][1]. "
        "Russia stands in complete solidarity with India against terrorism [1, 2]."
    )
    assert [c.n for c in result.citations] == [1, 2]
    assert result.text.count("[1]") == 1


def test_multiple_choice_option_is_parsed() -> None:
    choices = ("Pakistan", "India", "China")
    result = check("Option 2: India. Khrenin said India is a significant focus [1].", choices)
    assert result.choice == 1 and result.answered
    by_name = check("It is India, a significant focus of Belarus's foreign policy.", choices)
    assert by_name.choice == 1
    assert check("No option fits.", choices).choice is None


def test_a_choice_no_passage_supports_is_not_answered() -> None:
    choices = ("Pakistan", "India", "China")
    guess = check("Option 3", choices)
    assert guess.choice == 2  # the pick is kept for the caller...
    assert not guess.answered and guess.citations == ()  # ...but it is not a cited answer
    assert guess.text == "Option 3: China. No passage supports this choice."
    cited = check("Option 2: India. Khrenin said India is a significant focus [1].", choices)
    assert cited.answered and cited.citations


def test_prompt_numbers_passages_and_respects_the_window() -> None:
    def words(text: str) -> int:
        return len(text.split())

    prompt = build_prompt(
        "What did Khrenin say?",
        PASSAGES,
        context_window=4096,
        max_answer_tokens=100,
        count_tokens=words,
    )
    assert len(prompt.passages) == 2
    assert "[1] Khrenin on India" in prompt.messages[1]["content"]
    assert "[2] Belousov" in prompt.messages[1]["content"]
    assert prompts.CANNOT_ANSWER in prompt.messages[0]["content"]

    fixed = words(prompts.SYSTEM) + words(
        prompts.USER.format(passages="", question="What did Khrenin say?", choices="")
    )
    tight = build_prompt(
        "What did Khrenin say?",
        PASSAGES,
        context_window=fixed + 100 + 32 + 40,
        max_answer_tokens=100,
        count_tokens=words,
    )
    # Room for the first passage only: the second must not overflow the window.
    assert len(tight.passages) == 1
    window = fixed + 100 + 32 + 40
    used = sum(words(m["content"]) for m in tight.messages)
    assert used + 100 <= window


def test_a_window_larger_than_the_bytes_skips_the_tokenizer() -> None:
    def forbidden(text: str) -> int:
        raise AssertionError("the tokenizer should not be needed")

    prompt = build_prompt(
        "What did Khrenin say?",
        PASSAGES,
        context_window=1_000_000,
        max_answer_tokens=300,
        count_tokens=forbidden,
    )
    assert len(prompt.passages) == 2


# ------------------------------------------------------------------ the short-answer line


def test_short_answer_line_is_parsed_from_the_reply() -> None:
    assert split_short_answer("Answer: Andrey Belousov [2]\nHe said so [2].") == (
        "Andrey Belousov [2]",
        "He said so [2].",
    )
    assert split_short_answer("  **Short answer:** 33 years [1]")[0] == "33 years [1]"
    assert split_short_answer("Belousov said so [2].") == ("", "Belousov said so [2].")


def test_short_answer_held_by_the_cited_passage_is_kept_with_its_citation() -> None:
    result = check(
        "Answer: complete solidarity [2]\n"
        "Belousov said Russia stands in complete solidarity with India against terrorism [2]."
    )
    assert result.answered
    assert (result.short_answer, result.short_citation) == ("complete solidarity", 2)
    assert [c.n for c in result.citations] == [2]
    assert result.text.startswith("Belousov said Russia stands")  # the label line is not text


def test_short_answer_with_a_wrong_citation_moves_to_the_passage_that_holds_it() -> None:
    result = check("Answer: India [2]")  # both passages hold "India": the cited one wins
    assert result.short_citation == 2
    moved = check("Answer: significant focus [2]")
    assert (moved.short_answer, moved.short_citation) == ("significant focus", 1)
    # Only the short answer came back: it is explained by the sentence that holds it.
    assert moved.answered and "significant focus within Belarus" in moved.text
    assert moved.text.endswith("[1].")


def test_short_answer_not_in_any_passage_or_not_on_word_boundaries_is_dropped() -> None:
    invented = check("Answer: Sergei Shoigu [2]\nShoigu met Singh in Qingdao [2].")
    assert invented.short_answer == "" and invented.short_citation is None
    assert not invented.answered  # and the explanation has no support either
    partial = check("Answer: Belarus [1]")  # "Belarus" occurs only inside "Belarusian" ...
    assert partial.short_citation == 1  # ... and as "Belarus's": the possessive is a word
    assert check("Answer: Defen [1]").short_answer == ""  # a piece of "Defence" is not a word


def test_short_answer_may_drop_a_plural_or_demonym_ending_of_the_passage_word() -> None:
    """The model answers "Nepal" to "from which country?" where the passage says "a Nepali
    national": the same word less a demonym ending, so it is kept and cited."""
    attack = _doc(
        "attack",
        "Pahalgam",
        "The attack killed 26 civilians, including a Nepali national and guides.",
    )
    hits, docs = (_hit(attack, 1),), {"attack": attack}
    question = "The victims included a foreign national from which country?"
    nepal = check_answer("Answer: Nepal [1]", hits, docs.get, question=question)
    assert nepal.answered and (nepal.short_answer, nepal.short_citation) == ("Nepal", 1)
    assert "a Nepali national" in nepal.text
    guide = check_answer("Answer: guide [1]", hits, docs.get, question=question)
    assert guide.short_answer == "guide"  # a plural ending
    for piece in ("Nep", "Attac", "civil"):  # too short, or not an inflection ending
        assert check_answer(f"Answer: {piece} [1]", hits, docs.get).short_answer == ""


def test_short_answer_refusal_is_a_refusal() -> None:
    result = check(f"Answer: {prompts.CANNOT_ANSWER}")
    assert not result.answered and result.short_answer == ""
    assert not check("Answer: I don't know [1]").answered


def test_option_on_the_answer_line_is_the_choice() -> None:
    choices = ("Pakistan", "India", "China")
    result = check("Answer: Option 2: India [1]\nIndia is a significant focus [1].", choices)
    assert result.choice == 1 and result.answered


def test_short_answer_that_only_repeats_the_question_is_dropped() -> None:
    question = "What did Khrenin say about India?"
    echo = check_answer("Answer: India [1]", PASSAGES, DOCS.get, question=question)
    assert not echo.answered and echo.short_answer == ""
    real = check_answer("Answer: a significant focus [1]", PASSAGES, DOCS.get, question=question)
    assert real.answered and real.short_answer == "a significant focus"


def test_short_answer_may_drop_or_add_articles_and_list_glue() -> None:
    """A copied list or name without its "the" or "and" is the same phrase; any other word
    left out or added, or the words out of order, is not."""
    sectors = _doc(
        "sectors",
        "Belarus",
        "Belarus is a valuable partner in pharmaceuticals, technology, and agriculture. "
        "India must keep its ties with the United States and the European Union.",
    )
    hits, docs = (_hit(sectors, 1),), {"sectors": sectors}
    for kept in (
        "pharmaceuticals, technology, agriculture",
        "United States and European Union",
        "the pharmaceuticals and technology",
    ):
        result = check_answer(f"Answer: {kept} [1]", hits, docs.get)
        assert result.answered and result.short_answer == kept, kept
    for dropped in (
        "pharmaceuticals, agriculture",  # a word of the list left out
        "agriculture, technology",  # out of order
        "United States or European Union",  # "or" is a word that counts
        "the",
    ):
        assert check_answer(f"Answer: {dropped} [1]", hits, docs.get).short_answer == "", dropped


def test_echoed_words_are_the_short_answer_that_only_repeats_the_question() -> None:
    question = "How did Singh describe his talks with Khrenin on X?"
    assert echoed_words("Answer: X [1]", question) == ("X",)
    assert echoed_words("Answer: Singh, Khrenin [2]\nMore.", question) == ("Singh", "Khrenin")
    assert echoed_words("Answer: an enriching interaction [1]", question) == ()
    assert echoed_words("Answer: X and an enriching talk [1]", question) == ()
    assert echoed_words(f"Answer: {prompts.CANNOT_ANSWER}", question) == ()
    assert echoed_words("Singh said X [1].", question) == ()  # no short answer line
    assert echoed_words("Answer: the [1]", question) == ()  # a word the question does not hold
    assert echoed_words("Answer: X [1]", "") == ()
    # A word of the question less an ending the passage check allows is still the question's.
    nepali = "Who was the Nepali national killed in the attack?"
    assert echoed_words("Answer: Nepal [1]", nepali) == ("Nepal",)
    assert echoed_words("Answer: Nepal [1]", "Where was the victim from?") == ()


def test_short_answer_naming_a_question_word_less_an_ending_is_dropped() -> None:
    attack = _doc(
        "attack", "Pahalgam", "The attack killed 26 civilians, including a Nepali national."
    )
    hits, docs = (_hit(attack, 1),), {"attack": attack}
    asked = "Who was the Nepali national killed in the attack?"
    assert not check_answer("Answer: Nepal [1]", hits, docs.get, question=asked).answered
    other = "The victims included a foreign national from which country?"
    assert check_answer("Answer: Nepal [1]", hits, docs.get, question=other).answered
