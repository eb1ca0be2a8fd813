"""Short answers for the extractive client: the name, number, date or phrase that answers.

Two steps, after the AskMSR idea (Brill et al., 2002: redundancy beats clever parsing):

1. :func:`answer_type` reads the question: who -> a person or organisation, where -> a place,
   when -> a date, how many / how much -> a number or amount, which / what X -> an entity of
   the kind X names (a "country" is a place) or, for an X of no known kind, a noun phrase
   built on X ("which rifle" -> "AK-203" from "the AK-203 rifle").
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

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qa import spacy_pipeline
from qa.text import WORD, content_terms, words

PERSON = frozenset({"PERSON"})
ORG = frozenset({"ORG"})
PLACE = frozenset({"GPE", "LOC", "FAC", "NORP"})  # "Nepali" names a country too
TIME = frozenset({"DATE", "TIME"})
COUNT = frozenset({"CARDINAL", "QUANTITY"})
AMOUNT = frozenset({"MONEY", "QUANTITY", "PERCENT", "CARDINAL"})
PERCENT = frozenset({"PERCENT"})
NAMED = frozenset(
    {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW"}
)

# What kind of thing a noun names, in general English (not words picked from any question
# set): "which country" wants a place, "which company" an organisation.
_KIND_NOUNS: dict[frozenset[str], str] = {
    PERSON | ORG: """who""",
    PERSON: """person people man men woman women politician leader player star actor actress
        singer artist candidate minister president premier chancellor ceo founder official
        athlete rapper director author writer celebrity royal king queen prince princess
        judge senator lawmaker footballer coach champion winner boss chief spokesperson
        spokesman spokeswoman manager host presenter driver musician billionaire mp
        counterpart envoy diplomat comedian comic journalist reporter anchor activist
        scientist astronaut pilot lawyer attorney prosecutor defendant suspect victim doctor
        nurse teacher professor student chef governor mayor general officer soldier
        chairman chairwoman executive entrepreneur investor businessman businesswoman tycoon
        mogul heir nominee challenger rival incumbent successor predecessor monarch emperor
        pope bishop poet novelist composer dancer influencer quarterback pitcher
        goalkeeper striker captain golfer boxer swimmer skater gymnast""",
    ORG: """company firm organisation organization group team club party agency airline
        automaker carmaker bank network chain retailer university manufacturer maker
        publisher band broadcaster newspaper court startup insurer supermarket giant
        corporation conglomerate brand studio label outlet channel""",
    PLACE: """country city state nation place region capital town island province location
        county continent village port""",
    TIME: """year date day month time decade century""",
    AMOUNT: """price cost amount sum value fee salary fine""",
    COUNT: """number total tally score population""",
    COUNT | TIME: """age""",
    PERCENT: """percentage percent proportion""",
}


def _forms(noun: str) -> tuple[str, ...]:
    """A noun and its plurals ("city", "citys", "cities"): a spare form costs nothing."""
    return (noun, noun + "s", noun + "es", noun[:-1] + "ies")


KIND_OF = {
    form: kind
    for kind, nouns in _KIND_NOUNS.items()
    for noun in nouns.split()
    for form in _forms(noun)
}
# Person nouns also head answers that are not names ("the two Defence Ministers").
_PERSON_HEADS = frozenset(w for w, kind in KIND_OF.items() if kind == PERSON)
# English agent suffixes: a "pianist", "comedian" or "historian" is a person ("playlist" not).
_PERSON_SUFFIX = re.compile(r"[a-z]{3,}(?:ists?|ians?)$")


def kind_of(noun: str) -> frozenset[str] | None:
    """The entity labels a noun names ("country" -> a place), or None for a noun of no known
    kind."""
    kind = KIND_OF.get(noun)
    if kind is None and _PERSON_SUFFIX.match(noun) and not noun.endswith(("list", "lists")):
        return PERSON
    return kind


_DETERMINERS = frozenset(
    ["the", "a", "an", "its", "their", "his", "her", "our", "this", "that", "these", "those"]
)
_WH = re.compile(
    r"\b(?:(how) (many|much|long|old|far)|(which|what|who|whom|whose|when|where))\b", re.IGNORECASE
)


@dataclass(frozen=True)
class AnswerType:
    """What a question asks for: entity labels (spaCy's), and the noun X of "which X"."""

    labels: frozenset[str]
    focus: str = ""  # the X of "which X" / "what X" / "how many X", lower-case
    typed: bool = False  # True when the question names the kind of answer (who, when, ...)
    # Labels accepted with less weight: "who" is mostly a person, now and then a company.
    weaker: frozenset[str] = frozenset()
    # The question's content words (stemmed) right before and right after its wh-phrase: the
    # answer fills that slot in a sentence ("banning the sale of what?" -> "the sale of dog
    # meat"; "Which insect is expected to emerge" -> "cicadas are expected to emerge").
    before: str = ""
    after: str = ""


# After these the question is inverted ("Which team did McClung represent?"): the answer is
# the verb's object, not the word next to the wh-phrase.
_INVERTING = frozenset(
    [
        "do",
        "does",
        "did",
        "will",
        "would",
        "can",
        "could",
        "should",
        "shall",
        "may",
        "might",
        "must",
    ]
)


def _slot(question: str, start: int, end: int) -> tuple[str, str]:
    """The stemmed content words next to question[start:end] (the wh-phrase), "" for none;
    none after it when the question is inverted."""
    clause = re.split(r"[.!?;:]\s", question[:start])[-1]  # not a word of an earlier sentence
    left = [t for w in WORD.findall(clause) for t in content_terms(w)]
    following = WORD.findall(question[end:])
    if following and following[0].lower() in _INVERTING:
        following = []
    # "the festival that Phish is hosting": a relative clause with its own subject.
    if len(following) > 1 and following[0].lower() in ("that", "which") and following[1].istitle():
        following = []
    right = [t for w in following for t in content_terms(w)]
    return (left[-1] if left else "", right[0] if right else "")


def answer_type(question: str) -> AnswerType | None:
    """The answer type of a question, or None when it asks for no short answer ("What did
    Khrenin say about India?", "Did Singh ...?")."""
    m = _WH.search(question)
    if m is None:
        return None
    if m.group(1):  # how many / much / long / old / far
        how = m.group(2).lower()
        focus = question_focus(question)
        if how == "many":
            # "How many years": spaCy tags "33-year" and "three decades" as dates.
            extra = TIME if kind_of(focus) == TIME else frozenset()
            return AnswerType(COUNT | extra, focus, True)
        if how == "much":
            return AnswerType(AMOUNT, focus, True)
        if how in ("long", "old"):
            return AnswerType(TIME | frozenset({"QUANTITY", "CARDINAL"}), "", True)
        return AnswerType(frozenset({"QUANTITY"}), "", True)
    wh = m.group(3).lower()
    if wh in ("who", "whom", "whose"):
        return AnswerType(PERSON | ORG, "", True, weaker=ORG)
    if wh == "when":
        return AnswerType(TIME, "", True)
    if wh == "where":
        return AnswerType(PLACE, "", True)
    focus = question_focus(question)
    if not focus:
        if wh == "what" and question[: m.start()].strip():
            # "what" in place of the answer ("... banning the sale of what?"): a noun phrase.
            return AnswerType(NAMED, "", False, before=_slot(question, m.start(), m.end())[0])
        return None  # "What did ... say", "what is happening"
    kind = kind_of(focus)
    if kind is not None:
        return AnswerType(kind, focus, True)
    if focus in ("name", "names", "title", "titles"):
        focus = _named_noun(question)
        if not focus:
            return AnswerType(NAMED, "", False)
        kind = kind_of(focus)
        if kind is not None:
            return AnswerType(kind, focus, True)
    # The wh-phrase ends at its noun: "which social media platform".
    found = re.compile(rf"\b{re.escape(focus)}\b", re.IGNORECASE).search(question, m.end())
    before, after = _slot(question, m.start(), found.end() if found else m.end())
    return AnswerType(NAMED, focus, False, before=before, after=after)


# "the name of the NFL team that ...": the thing named ends before a relative pronoun, a
# preposition or a verb.
_NAME_OF = re.compile(
    r"\b(?:name|title)s? of (?:the |a |an |this |that |its |their |his |her )?"
    r"((?:[\w’'-]+ ){0,4}?[\w’'-]+?)"
    r"(?= (?:who|that|which|whose|where|when|in|on|at|for|from|to|by|with|is|was|are|were|"
    r"has|have|had|do|does|did|will)\b|[?,.;:]|$)",
    re.IGNORECASE,
)


def _named_noun(question: str) -> str:
    """The noun of "the name of the X" ("What is the name of the Intuitive Machines spacecraft
    that landed" -> "spacecraft"), lower-case, or ""."""
    m = _NAME_OF.search(question)
    return m.group(1).split()[-1].lower() if m else ""


@functools.lru_cache(maxsize=4096)
def question_focus(question: str) -> str:
    """The noun a "which X" / "what X" / "how many X" question asks about, lower-case, from
    the question's parse: "Which US state became ..." -> "state"; "which of the following
    politicians" -> "politicians"; "what kind of stance" -> "stance"; "" when there is none
    ("What did Khrenin say ...")."""
    with _nlp_lock:
        doc = _nlp()(question)
    for token in doc:
        low = token.lower_
        after_how = token.i > 0 and doc[token.i - 1].lower_ == "how"
        if low in ("which", "what") or (low in ("many", "much") and after_how):
            noun = None
            # The words right after "which" that can make a noun phrase ("which Indian MP"):
            # read from the tags, since the parse often attaches "which" to the verb.
            run = []
            for nxt in doc[token.i + 1 :]:
                if nxt.pos_ not in ("ADJ", "NOUN", "PROPN", "NUM") and nxt.dep_ != "compound":
                    break
                run.append(nxt)
            if run and run[-1].pos_ in ("NOUN", "PROPN"):
                noun = run[-1]
            elif token.dep_ in ("det", "amod") and token.head.pos_ in ("NOUN", "PROPN"):
                noun = token.head
            else:
                of = [c for c in token.children if c.dep_ == "prep" and c.lower_ == "of"]
                objects = [c for o in of for c in o.children if c.dep_ == "pobj"]
                if objects:
                    noun = objects[0]
                elif token.dep_ == "attr" and token.head.lower_ in ("is", "was", "are", "were"):
                    subjects = [c for c in token.head.children if c.dep_ == "nsubj"]
                    noun = subjects[0] if subjects and subjects[0].pos_ == "NOUN" else None
            if noun is not None and noun.lower_ in ("kind", "type", "sort"):
                inner = [c for o in noun.children if o.lower_ == "of" for c in o.children]
                noun = inner[0] if inner else noun
            return noun.lower_ if noun is not None else ""
    return ""


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
_nlp_lock = threading.Lock()


def _nlp() -> Any:
    """en_core_web_sm without the parts short answers never read, loaded once per process
    (see qa.spacy_pipeline)."""
    return spacy_pipeline.pipeline()


def mentions(texts: Sequence[str]) -> list[tuple[Mention, ...]]:
    """The entity and noun-chunk mentions of each sentence (cached by text)."""
    with _cache_lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _cache))
    fresh: dict[str, tuple[Mention, ...]] = {}
    if missing:
        with _nlp_lock:  # spaCy pipelines are not documented as thread-safe
            docs = list(_nlp().pipe(missing))
        fresh = {t: _doc_mentions(d) for t, d in zip(missing, docs, strict=True)}
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
    while tokens and (tokens[0].lower() in _DETERMINERS or _bare(tokens[0]) in question_words):
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
            if (atype.focus and atype.focus in m.text.lower().split()) or in_slot:
                span, factor = _trim(m.text, question_words), 1.0
            elif "PERSON" in atype.labels and m.head in _PERSON_HEADS:
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
        for span, factor in candidate_spans(atype, sentences[i], sentence_mentions, question):
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
