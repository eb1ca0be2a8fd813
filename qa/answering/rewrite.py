"""Follow-up questions in a conversation -> standalone questions for retrieval.

A generative client is asked to rewrite (``prompts.REWRITE_SYSTEM``). Without one (extractive),
or when the model's rewrite is unusable, pronouns are replaced by a name, which covers the
common "What did he say about X?" follow-up. The name is the person the last answer named when
it named one (its short answer, the bold first line of a Markdown message, if spaCy reads it as
a PERSON, else the first PERSON in its sentences): after "Who is the Russian defence
minister?", "he" is the minister the answer named, not a word of the question. Otherwise it is
the most recent name in the earlier questions. Either way the surname replaces the pronoun.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.core.types import Prompt
from qa.llm import prompts
from qa.llm.base import LLM
from qa.text.words import content_terms

PRONOUNS = {
    "he": "{}",
    "she": "{}",
    "him": "{}",
    "they": "{}",
    "them": "{}",
    "his": "{}'s",
    "her": "{}'s",
    "their": "{}'s",
}
# Capitalised words that start questions or sentences and are not names.
NOT_NAMES = {
    "What",
    "Who",
    "When",
    "Where",
    "Why",
    "How",
    "Which",
    "Did",
    "Does",
    "Do",
    "Is",
    "Are",
    "Was",
    "Were",
    "The",
    "A",
    "An",
    "In",
    "On",
    "At",
    "And",
    "But",
    "He",
    "She",
    "They",
    "It",
    "Tell",
    "Please",
    "Can",
    "Could",
    "Would",
    "Should",
    "Minister",
    "Defence",
    "Defense",
    "I",
    "This",
    "That",
    "These",
    "Those",
    "His",
    "Her",
    "Their",
}
NAME = re.compile(r"\b[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+)*")


def last_user_question(messages: Sequence[dict[str, str]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user" and str(message.get("content", "")).strip():
            return str(message["content"]).strip()
    return ""


def needs_rewrite(question: str) -> bool:
    return any(w.lower() in PRONOUNS for w in re.findall(r"[A-Za-z]+", question))


def _last_name(texts: Sequence[str]) -> str | None:
    for text in reversed(texts):
        for match in reversed(list(NAME.finditer(text))):
            words = [w for w in match.group(0).split() if w not in NOT_NAMES]
            if words:
                return words[-1]  # a surname is how follow-ups refer back
    return None


# The bold first line of a Markdown answer (qa.serving.openai_shapes), and where its sources begin.
_BOLD_LEAD = re.compile(r"\A\s*\*\*(.+?)\*\*")
_SOURCES = re.compile(r"\n\n(?:\*\*Sources\*\*|Sources:)\n")
_ESCAPED = re.compile(r"\\(.)")


def _last_answer(messages: Sequence[dict[str, str]]) -> str:
    """The assistant message just before the last question ("" when there is none)."""
    for message in reversed(messages[:-1]):
        if message.get("role") == "assistant":
            return str(message.get("content", ""))
        if message.get("role") == "user":
            return ""
    return ""


def answer_person(answer: str, question: str = "") -> str | None:
    """The person an earlier answer named: its short answer when that is a PERSON, else the
    PERSON its sentences name in the words of the question (see :func:`parse_answer_person`);
    the sources list is left out (titles name others)."""
    body = _SOURCES.split(answer, maxsplit=1)[0]
    lead = _BOLD_LEAD.match(body)
    short = _ESCAPED.sub(r"\1", lead.group(1)).strip() if lead else ""
    text = _ESCAPED.sub(r"\1", body[lead.end() :] if lead else body)
    if not (short or text.strip()):
        return None
    from qa.reading import spacy_pipeline  # here: retrieval alone never loads spaCy

    return spacy_pipeline.run(parse_answer_person, short, text, question)


# Words before a name, or after it and a comma, that may describe it ("Russian Defence Minister
# Andrey Belousov", "Belousov, Russia's defence minister"), within its sentence and not reaching
# back past the name before it.
_NEAR = 6


def parse_answer_person(short: str, text: str, question: str = "") -> str | None:
    """:func:`answer_person`, parsed now (runs where spaCy is: see ``spacy_pipeline.run``).

    An answer may name several people ("Rajnath Singh met Russian Defence Minister Andrey
    Belousov"); the one meant is the one described in the question's words: each person
    (grouped by surname) scores the most of the question's content terms in the words that
    describe one of its mentions (``_NEAR``), then how often it is named, then how early. Its
    name is its most frequent form of two words or more, the shorter of equals ("Andrey
    Belousov", not "Mr. Andrey Belousov"; "Rajnath Singh", not "Raksha Mantri Rajnath Singh").
    """
    from qa.reading import spacy_pipeline

    asked = content_terms(question)
    with spacy_pipeline.parsing() as nlp:
        if short:
            # Alone, a name has no context; in a sentence spaCy tags it as it would in text.
            doc = nlp(f"The answer is {short}.")
            people = [e.text for e in doc.ents if e.label_ == "PERSON"]
            if people and people[0] == short:
                return short
        doc = nlp(text[:3000])
        score: dict[str, list[int]] = {}
        forms: dict[str, list[str]] = {}
        previous = 0  # where the last name ended: its own description is not this one's
        for order, entity in enumerate(e for e in doc.ents if e.label_ == "PERSON"):
            words = [w for w in entity.text.split() if w.rstrip(".") not in _TITLES]
            start = max(entity.start - _NEAR, previous, entity.sent.start)
            previous = entity.end
            if not words:
                continue
            near = doc[start : entity.start].text
            if entity.end < len(doc) and doc[entity.end].text == ",":  # "Belousov, Russia's..."
                near += (
                    " " + doc[entity.end + 1 : min(entity.end + 1 + _NEAR, entity.sent.end)].text
                )
            key = words[-1]
            found = len(asked & content_terms(near))
            points = score.setdefault(key, [0, 0, -order])
            points[0] = max(points[0], found)
            points[1] += 1
            forms.setdefault(key, []).append(" ".join(words))
    if not score:
        return None
    best = max(score, key=lambda k: tuple(score[k]))
    named = [f for f in forms[best] if " " in f] or forms[best]
    return max(named, key=lambda f: (named.count(f), -len(f)))


_TITLES = {"Mr", "Mrs", "Ms", "Dr", "Shri", "Smt", "Sir", "Minister", "President"}


def heuristic_rewrite(messages: Sequence[dict[str, str]]) -> str:
    """Replace pronouns in the last question with the person the last answer named, else the
    latest name from earlier user turns."""
    question = last_user_question(messages)
    earlier = [str(m.get("content", "")) for m in messages if m.get("role") == "user"][:-1]
    person = answer_person(_last_answer(messages), earlier[-1] if earlier else "")
    # The surname, as with names from the questions: articles name a person in full once,
    # then by surname ("said Mr. Belousov"), so the surname finds the passage that quotes him.
    name = person.split()[-1] if person else _last_name(earlier)
    if name is None:
        return question

    def swap(match: re.Match[str]) -> str:
        return PRONOUNS[match.group(0).lower()].format(name)

    pattern = r"\b(" + "|".join(PRONOUNS) + r")\b"
    return re.sub(pattern, swap, question, flags=re.IGNORECASE)


def rewrite(messages: Sequence[dict[str, str]], llm: LLM | None) -> str:
    """The standalone form of the conversation's last user question."""
    question = last_user_question(messages)
    if len([m for m in messages if m.get("role") == "user"]) < 2 or not needs_rewrite(question):
        return question
    if llm is not None and llm.name == "openai":
        history = "\n".join(f"{m['role']}: {m['content']}" for m in messages[-6:])
        prompt = Prompt(
            question=question,
            passages=(),
            messages=(
                {"role": "system", "content": prompts.REWRITE_SYSTEM},
                {"role": "user", "content": history},
            ),
            max_tokens=80,
        )
        text = llm.generate(prompt).text.strip().strip('"')
        if text and len(text) < 4 * len(question) + 200:
            return text
    return heuristic_rewrite(messages)
