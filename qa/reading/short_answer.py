"""Short answers for the extractive client: the name, number, date or phrase that answers.

Two steps, after the AskMSR idea (Brill et al., 2002: redundancy beats clever parsing):

1. :func:`qa.reading.answer_type.answer_type` reads the question: who -> a person or organisation,
   where -> a place, when -> a date, how many / much -> a number or amount, which / what X ->
   an entity of the kind X names (a "country" is a place) or, for an X of no known kind, a
   noun phrase built on X ("which rifle" -> "AK-203" from "the AK-203 rifle").
2. :func:`vote` finds the mentions of that type in the retrieved sentences (spaCy's
   ``en_core_web_sm``: named entities and noun chunks) and lets the passages vote: each
   mention is worth its sentence's relevance to the question, each passage votes once per
   candidate (its best sentence), and the candidate with the largest sum wins. A candidate
   made only of question words is not an answer; one that repeats some of them counts less.

spaCy loads once per process, on first use, with only the tagger, parser and entity
recogniser; mentions are cached by sentence text, since the same passages come back question
after question.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qa.reading import spacy_pipeline
from qa.reading.answer_type import (
    AMOUNT,
    DETERMINERS,
    KIND_OF,
    PERSON,
    PERSON_HEADS,
    PLACE,
    TIME,
    AnswerType,
    _forms,
)
from qa.text.words import STOPWORDS, WORD, content_terms, words

# ------------------------------------------------------------------------------ mentions


@dataclass(frozen=True)
class Mention:
    """An entity or noun chunk of a sentence; ``head`` is the chunk's last word, lower-case."""

    text: str
    label: str  # spaCy entity label, or "CHUNK" for a noun chunk
    head: str
    start: int  # character offsets in the sentence
    end: int


_CACHE_SIZE = 50_000
PROXIMITY_CHARS = 40  # a mention this far from the question's words keeps 80% of its weight
_cache: OrderedDict[str, tuple[Mention, ...]] = OrderedDict()
_cache_lock = threading.Lock()


def mentions(texts: Sequence[str]) -> list[tuple[Mention, ...]]:
    """The entity and noun-chunk mentions of each sentence (cached by text)."""
    with _cache_lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _cache))
    fresh: dict[str, tuple[Mention, ...]] = {}
    if missing:
        parsed = spacy_pipeline.run(parse_mentions, missing)
        fresh = dict(zip(missing, parsed, strict=True))
    with _cache_lock:
        _cache.update(fresh)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        out = []
        for t in texts:
            found = _cache.get(t)
            if found is None:  # evicted by a concurrent caller
                found = fresh.get(t, ())
            else:
                _cache.move_to_end(t)
            out.append(found)
        return out


def parse_mentions(texts: list[str]) -> list[tuple[Mention, ...]]:
    """The mentions of each text, parsed now (runs where spaCy is: see
    ``spacy_pipeline.run``)."""
    with spacy_pipeline.parsing() as nlp:
        return [_doc_mentions(doc) for doc in nlp.pipe(texts)]


def _doc_mentions(doc: Any) -> tuple[Mention, ...]:
    found = [
        Mention(e.text, e.label_, e[-1].text.lower(), e.start_char, e.end_char) for e in doc.ents
    ]
    found += [
        Mention(c.text, "CHUNK", c.root.text.lower(), c.start_char, c.end_char)
        for c in doc.noun_chunks
    ]
    return tuple(found)


# ------------------------------------------------------------------------------ voting


@dataclass(frozen=True)
class Candidate:
    text: str  # as written in the sentence
    score: float  # summed over passages
    sentence: int  # index of the best sentence supporting it
    passages: int  # how many passages support it


def _trim(text: str, question_words: set[str]) -> str:
    """A noun chunk without leading determiners and without question words at either end:
    "the INS Vikramaditya aircraft carrier" for "which aircraft carrier" -> "INS Vikramaditya"."""
    tokens = text.split()
    while tokens and (tokens[0].lower() in DETERMINERS or _bare(tokens[0]) in question_words):
        tokens = tokens[1:]
    while tokens and _bare(tokens[-1]) in question_words:
        tokens = tokens[:-1]
    return " ".join(tokens).strip(" ,;:.")


def _bare(token: str) -> str:
    found = words(token)
    return found[0] if found else token.lower()


WEAKER = 0.5  # the weight of a mention of a label the question accepts but does not expect
PERSON_NOUN = 0.3  # "Who ...?" answered by a common noun ("three chefs") rather than a name
# Words that hedge a number without being part of it: "nearly $200 million" is "$200 million".
_HEDGE = re.compile(
    r"^(?:(?:nearly|almost|about|around|roughly|approximately|some|over|under|just|only|"
    r"an estimated|more than|less than|fewer than|at least|at most|up to|as many as|"
    r"as much as|upwards of)\s+)+",
    re.IGNORECASE,
)
_MONTH = (
    r"(?:Jan(?:uary|\.)?|Feb(?:ruary|\.)?|March|Mar\.|April|Apr\.|May|June|July|"
    r"Aug(?:ust|\.)?|Sep(?:tember|t\.|\.)?|Oct(?:ober|\.)?|Nov(?:ember|\.)?|Dec(?:ember|\.)?)"
)
# The part of a date that a "which month" / "which year" / "which day" question asks for.
_TIME_UNITS = {
    "month": re.compile(rf"\b{_MONTH}(?!\w)"),
    "year": re.compile(r"\b(?:1[6-9]|20)\d\d\b"),
    "day": re.compile(
        rf"\b(?:(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day|{_MONTH} \d{{1,2}}(?:, \d{{4}})?)\b"
    ),
}


def _time_unit(span: str, focus: str) -> str:
    """A date mention cut to the unit the question asks for: "which month" wants "April" of
    "April 15, 2024"; "" when the mention holds no such unit ("Tuesday" is not a month)."""
    unit = focus[:-1] if focus.endswith("s") else focus
    pattern = _TIME_UNITS.get(unit)
    if pattern is None:
        return span
    found = pattern.search(span)
    return found.group() if found else ""


SLOT_GAP = 2  # stop words allowed between a mention and the slot's word ("are", "of the")


def _in_slot(atype: AnswerType, sentence: str, m: Mention) -> bool:
    """The mention sits where the question's wh-phrase sits: right after the question's word
    before it, or right before the question's word after it (a stop word or two between)."""
    if atype.before and _next_term(reversed(WORD.findall(sentence[: m.start]))) == atype.before:
        return True
    return bool(atype.after) and _next_term(WORD.findall(sentence[m.end :])) == atype.after


def _next_term(tokens: Iterable[str]) -> str:
    """The stem of the first content word among the first SLOT_GAP + 1 tokens, or ""."""
    for n, token in enumerate(tokens):
        if n > SLOT_GAP:
            break
        terms = content_terms(token)
        if terms:
            return next(iter(terms))
    return ""


def candidate_spans(
    atype: AnswerType, sentence: str, found: Sequence[Mention], question: str
) -> list[tuple[str, float]]:
    """The mentions of one sentence that could answer a question of type ``atype``, each with
    a factor: 1 for the wanted kind, less for a name that merely could be one ("which
    product": a noun phrase on "product" is surer than any name), less again far from the
    question's words in the sentence (the answer to "who beat X" sits next to "beat")."""
    question_words = set(words(question))
    question_terms = content_terms(question)
    anchors = [
        w.start() for w in WORD.finditer(sentence) if content_terms(w.group()) & question_terms
    ]
    spans: list[tuple[str, float]] = []
    for m in found:
        if m.start == 0 and _DATELINE.match(sentence):
            continue  # "WASHINGTON (AP) —" says where the story was filed, not what happened
        in_slot = not atype.typed and _in_slot(atype, sentence, m)
        if m.label == "CHUNK":
            if atype.typed and atype.focus and m.head in _forms(atype.focus):
                continue  # "human capital" is a kind of capital, not the capital of a place
            if (atype.focus and atype.focus in m.text.lower().split()) or in_slot:
                span, factor = _trim(m.text, question_words), 1.0
            elif "PERSON" in atype.labels and m.head in PERSON_HEADS:
                # "Who ...?" wants a name first; "the two Defence Ministers" is a fallback.
                span, factor = _trim(m.text, question_words), PERSON_NOUN
            else:
                continue
        elif m.label in atype.labels:
            untyped = atype.focus and not atype.typed and not in_slot
            span, factor = m.text, (0.5 if untyped else 1.0)
            if m.label in atype.weaker:
                factor *= WEAKER
            if m.label in TIME | AMOUNT:
                span = _HEDGE.sub("", span)
            if m.label in TIME:
                span = _time_unit(span, atype.focus)
        else:
            continue
        if anchors:
            distance = min(min(abs(a - m.start), abs(a - m.end)) for a in anchors)
            factor *= 0.6 + 0.4 / (1.0 + distance / PROXIMITY_CHARS)
        span = _DASH_TAIL.sub("", span)
        if m.label in PERSON | PLACE:
            span = _POSSESSIVE.sub("", span)  # "Washington's" -> "Washington"; not "Wendy's"
        if span:
            spans.append((span, factor))
    return spans


# A dateline: a place in capitals opening a news story, then "(Agency)" or a dash.
_DATELINE = re.compile(r"[A-Z][A-Z .,'’-]{3,}\s*(?:\([^)]*\)\s*)?[—–―-]")
# spaCy sometimes runs a mention on over a dash ("8 a.m. ― an hour earlier").
_DASH_TAIL = re.compile(r"\s+[—–―-]\s.*$")
_POSSESSIVE = re.compile(r"(?<=\w)['’]s?$")


_TITLE_GLUE = frozenset({"of", "and", "for"})  # inside a title: "Minister of Defence"
_ROLE_TOKEN = re.compile(r"[^\W_][\w’'.&-]*|[^\w\s]")
_APPOSITIVE = re.compile(r"^\s*,\s*(?:(?:the|a|an)\s+)?([^,.;:()“”\"]{3,80}?)\s*(?:[,.;:]|$)")
_EXAMPLE_OF = re.compile(r"((?:[\w’'-]+\s+){0,3}[\w’'-]+)\s*,?\s+(?:including|such as|like)\s+$")


def _is_role(words_: Sequence[str]) -> bool:
    """Whether a run of words names a role: it holds a person noun ("minister", "chair")."""
    return any(w.lower().strip(".,") in PERSON_HEADS for w in words_)


def _title_before(before: str) -> str:
    """The title written right before a name: "... with Russian Defence Minister Mr." ->
    "Russian Defence Minister"; "" when the words before are not a title."""
    tokens = _ROLE_TOKEN.findall(before)
    run: list[str] = []
    for i, token in enumerate(reversed(tokens)):
        if token == "," and i == 0:
            continue  # "his Belarusian counterpart, Viktor Khrenin"
        low = token.lower().rstrip(".")
        if token[:1].isupper() or low in PERSON_HEADS or (run and low in _TITLE_GLUE):
            run.insert(0, token)
            continue
        break
    # The run ends at its last person noun: after it come honorifics and the first names
    # ("Lieutenant General Viktor" before "Khrenin").
    while run and run[-1].lower().rstrip(".") not in PERSON_HEADS:
        run.pop()
    while run and (run[0].lower() in _TITLE_GLUE or run[0].lower() in DETERMINERS):
        run.pop(0)
    return " ".join(run) if _is_role(run) else ""


def role_spans(name: str, sentence: str) -> list[tuple[str, float]]:
    """The roles a sentence gives the person ``name`` (or their surname): a title before the
    name, an appositive after it ("Khrenin, the Belarusian defence minister,") or the group
    they are an example of ("top Russian lawmakers including Leonid Slutsky")."""
    surname = name.split()[-1]
    spans: list[tuple[str, float]] = []
    for m in re.finditer(rf"\b{re.escape(surname)}\b", sentence):
        start = m.end() - len(name) if sentence[: m.end()].endswith(name) else m.start()
        before = sentence[:start]
        title = _title_before(before)
        if title:
            spans.append((title, 1.0))
        after = _APPOSITIVE.match(sentence[m.end() :])
        if after and _is_role(after.group(1).split()) and len(after.group(1).split()) <= 8:
            spans.append((after.group(1).strip(), 1.0))
        example = _EXAMPLE_OF.search(before)
        if example and _is_role(example.group(1).split()[-1:]):
            group = example.group(1).split()
            while group and (group[0].lower() in STOPWORDS):
                group = group[1:]
            if group:
                spans.append((" ".join(group), 0.8))
    return spans


def vote(
    question: str,
    atype: AnswerType,
    sentences: Sequence[str],
    passages: Sequence[int],
    weights: Sequence[float],
) -> list[Candidate]:
    """Candidates of type ``atype`` from ``sentences`` (with their passage numbers and
    relevance weights; weight <= 0 means "not relevant, do not look"), best first."""
    question_terms = content_terms(question)
    looked = [i for i, w in enumerate(weights) if w > 0]
    found = mentions([sentences[i] for i in looked])
    # best[(candidate key, passage)] = (weight, sentence index, surface text): each passage
    # votes once for a candidate, with its best sentence.
    best: dict[tuple[str, int], tuple[float, int, str]] = {}
    for i, sentence_mentions in zip(looked, found, strict=True):
        spans = (
            role_spans(atype.describes, sentences[i])
            if atype.describes
            else candidate_spans(atype, sentences[i], sentence_mentions, question)
        )
        for span, factor in spans:
            terms = content_terms(span)
            if not terms or terms <= question_terms:
                continue  # the question's own words do not answer it
            repeated = len(terms & question_terms) / len(terms)
            weight = weights[i] * factor * (1.0 - 0.5 * repeated)
            key = (" ".join(words(span)), passages[i])
            if key not in best or weight > best[key][0]:
                best[key] = (weight, i, span)
    # Sum each candidate over passages, keeping its best sentence and surface form.
    score: dict[str, float] = {}
    top: dict[str, tuple[float, int, str]] = {}
    count: dict[str, int] = {}
    for (name, _), (weight, i, span) in best.items():
        score[name] = score.get(name, 0.0) + weight
        count[name] = count.get(name, 0) + 1
        if name not in top or weight > top[name][0]:
            top[name] = (weight, i, span)
    _tile_names(score, top, count)
    ranked = sorted(score, key=lambda name: (-score[name], top[name][1]))
    return [Candidate(top[k][2], score[k], top[k][1], count[k]) for k in ranked]


def _is_name(span: str) -> bool:
    """Written as a proper name: every word capitalised ("Joe Biden", "Detroit Lions")."""
    return all(w[:1].isupper() for w in span.split())


def _tile_names(
    score: dict[str, float], top: dict[str, tuple[float, int, str]], count: dict[str, int]
) -> None:
    """AskMSR's tiling, for names only: "Biden" found beside "Joe Biden" is the same person
    under a shorter name, so its votes go to the fullest name that holds it as whole words (the
    best-voted one, when several do), and it stops being a candidate of its own. Other spans
    keep their own votes: "March" is not "March 25"; and a longer span that
    adds a title ("Foreign Minister") is not a fuller name."""
    names = [n for n in score if _is_name(top[n][2])]
    for short in sorted(names, key=lambda n: len(n.split())):
        containers = [
            n
            for n in names
            if n != short
            and n in score
            and f" {short} " in f" {n} "
            # "Foreign Minister Sergei Khrenin" is a title before the name, not a fuller name.
            and not any(w in KIND_OF for w in set(n.split()) - set(short.split()))
        ]
        if not containers or short not in score:
            continue
        full = max(containers, key=lambda n: (score[n], len(n)))
        score[full] += score.pop(short)
        count[full] += count.pop(short)
        top.pop(short)
