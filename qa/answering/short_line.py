"""The short-answer line of a reply ("Answer: <span> [n]"): parsed, verified against the
passages, and recognised when it only repeats the question.

A span is kept only when a passage holds its words in a row, on word boundaries; a word may
lack a plural or demonym ending of the passage's ("Nepal" for "a Nepali national"), and
articles and "and" may be dropped or added. A span that only names what the question names
answers nothing; ``echoed_words`` gives its words, so that the pipeline can ask once more with
them barred.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.core.types import Hit
from qa.llm import prompts
from qa.text.words import CITATION_MARKER, WORD, content_terms, same_word, words

MARKER = CITATION_MARKER
REFUSAL = prompts.REFUSAL
# The short-answer line (see prompts.SHORT_ANSWER_LABEL); "Short answer:" is accepted too.
SHORT_ANSWER_LINE = re.compile(r"^\W*(?:short\s+)?answer\W*:\W*(.*)$", re.IGNORECASE)


def content_words(text: str) -> set[str]:
    """The content terms of an answer's text, an "Option N:" prefix left out."""
    return content_terms(re.sub(r"\boption\s*\d+\s*:?", " ", text, flags=re.IGNORECASE))


def split_short_answer(raw: str) -> tuple[str, str]:
    """("<span> [n]", rest) when the reply opens with an "Answer: ..." line, else ("", raw)."""
    text = raw.strip()
    first, _, rest = text.partition("\n")
    match = SHORT_ANSWER_LINE.match(first.strip())
    if not match:
        return "", raw
    return match.group(1).strip(), rest


# Words that models drop or add when they copy a phrase, without changing what it names:
# "pharmaceuticals, technology, agriculture" for "pharmaceuticals, technology, and
# agriculture", "United States and European Union" for "the United States and the European
# Union". They are skipped on both sides; every other word must still come in the same order.
_GLUE = frozenset({"a", "an", "the", "and"})


def _holds(text: str, span_words: Sequence[str]) -> bool:
    """Whether ``text`` holds the span's words in a row (each as itself or with a short
    ending; articles and "and" are not counted on either side)."""
    found = [w for w in words(text) if w not in _GLUE]
    span_words = [w for w in span_words if w not in _GLUE] or list(span_words)
    n = len(span_words)
    return any(
        all(same_word(a, b) for a, b in zip(span_words, found[i : i + n], strict=True))
        for i in range(len(found) - n + 1)
    )


def verify_short(
    line: str,
    passages: Sequence[Hit],
    spans: dict[int, list[tuple[int, int, str]]],
    question: str = "",
) -> tuple[str, int | None]:
    """The short answer and the passage that holds it, or ("", None) when no passage does or
    when it only repeats words of the question ("Pakistan" to "What did he say about
    Pakistan?" is in the passages, but answers nothing)."""
    span = _span(line)
    if not span or REFUSAL.search(span) or prompts.CANNOT_ANSWER.lower() in span.lower():
        return "", None
    if question and _echoes(span, question):
        return "", None
    span_words = words(span)
    if not span_words:
        return "", None
    cited = [int(n) for group in MARKER.findall(line) for n in group.split(",") if n.strip()]
    order = [n for n in dict.fromkeys(cited) if n in spans]
    order += [n for n in spans if n not in order]
    for n in order:
        if any(_holds(text, span_words) for _, _, text in spans[n]):
            return span, n
    return "", None


def _span(line: str) -> str:
    """The short answer line's words, without markers and the punctuation around them."""
    return MARKER.sub("", line).strip().strip(" .;:,\"'“”")


def _asked(word: str, asked: Sequence[str]) -> bool:
    """Whether the lower-case ``word`` is one of the question's words ``asked``, either of
    them lacking an ending the passage check allows ("Nepal" and "Nepali")."""
    return any(same_word(word, q) or same_word(q, word) for q in asked)


def _echoes(span: str, question: str) -> bool:
    """Whether the span only names what the question names: its content words are the
    question's, counting the endings the passage check allows ("Nepal" repeats "Nepali")."""
    if content_words(span) <= content_words(question):
        return True
    asked = words(question)
    return all(not content_terms(w) or _asked(w, asked) for w in words(span))


def echoed_words(raw: str, question: str) -> tuple[str, ...]:
    """The words of the reply's short answer when it only repeats words of the question
    ("X" to "How did Singh describe the talks on X?"), else (). The small local model does
    this both where its passages hold the answer and where they do not; asked once more with
    these words barred (``Prompt.avoid``) it often names the answer, and where there is none
    it names something no passage holds, which the checker refuses."""
    span = _span(split_short_answer(raw)[0])
    if not span or not question or not _echoes(span, question):
        return ()
    asked = words(question)
    return tuple(dict.fromkeys(w for w in WORD.findall(span) if _asked(w.lower(), asked)))


def sentence_with(span: str, sentences: list[tuple[int, int, str]]) -> tuple[int, int, str]:
    """The first passage sentence that holds ``span`` (offsets in the article)."""
    span_words = words(span)
    for start, end, text in sentences:
        if _holds(text, span_words):
            return start, end, text
    return sentences[0] if sentences else (0, 0, "")
