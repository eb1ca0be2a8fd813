"""What a question asks for: the answer type that short answers look for (step 1 of
:mod:`qa.reading.short_answer`).

who -> a person or organisation, where -> a place, when -> a date, how many / how much -> a
number or amount, which / what X -> an entity of the kind X names (a "country" is a place) or,
for an X of no known kind, a noun phrase built on X ("which rifle" -> "AK-203" from "the AK-203
rifle"). The kinds of nouns are general English, not words picked from any question set.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from qa.reading import spacy_pipeline
from qa.text.words import WORD, content_terms

PERSON = frozenset({"PERSON"})
ORG = frozenset({"ORG"})
PLACE = frozenset({"GPE", "LOC", "FAC", "NORP"})  # "Nepali" names a country too
TIME = frozenset({"DATE", "TIME"})
COUNT = frozenset({"CARDINAL", "QUANTITY"})
AMOUNT = frozenset({"MONEY", "QUANTITY", "PERCENT", "CARDINAL"})
PERCENT = frozenset({"PERCENT"})
# "Who is X?" about a named person: the answer is X's role or description ("Russian Defence
# Minister"), never another name (qa.reading.short_answer.role_spans finds it).
ROLE = frozenset({"ROLE"})
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
        chair chairman chairwoman executive entrepreneur investor businessman businesswoman tycoon
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
PERSON_HEADS = frozenset(w for w, kind in KIND_OF.items() if kind == PERSON)
# English agent suffixes: a "pianist", "comedian" or "historian" is a person ("playlist" not).
_PERSON_SUFFIX = re.compile(r"[a-z]{3,}(?:ists?|ians?)$")


def kind_of(noun: str) -> frozenset[str] | None:
    """The entity labels a noun names ("country" -> a place), or None for a noun of no known
    kind."""
    kind = KIND_OF.get(noun)
    if kind is None and _PERSON_SUFFIX.match(noun) and not noun.endswith(("list", "lists")):
        return PERSON
    return kind


DETERMINERS = frozenset(
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
    # "Who is X?": the name X, whose role or description is the answer.
    describes: str = ""
    # "the X of Y" ("the capital of Belarus"): the answer's sentence must name X itself; a
    # place in a sentence about Belarus is not its capital.
    relational: bool = False


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


_WHO_IS = re.compile(r"^\W*who\s+(?:is|was|'s)\s+(.+?)[\s?.!]*$", re.IGNORECASE)
# Lower-case words a name may hold ("Osama bin Laden", "Ursula von der Leyen").
_NAME_PARTICLES = frozenset({"bin", "al", "de", "der", "van", "von", "la", "le", "da", "di"})


def _describes(question: str) -> str:
    """X of "Who is X?" when X is written as a person's name, else ""."""
    m = _WHO_IS.match(question)
    if not m:
        return ""
    name = m.group(1).strip()
    tokens = name.split()
    if not tokens or len(tokens) > 5 or tokens[0].lower() in DETERMINERS:
        return ""
    named = all(t[:1].isupper() or t.lower() in _NAME_PARTICLES for t in tokens)
    return name if named and tokens[0][:1].isupper() else ""


def answer_type(question: str) -> AnswerType | None:
    """The answer type of a question, or None when it asks for no short answer ("What did
    Khrenin say about India?", "Did Singh ...?")."""
    described = _describes(question)
    if described:
        return AnswerType(ROLE, "", True, describes=described)
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
    relational = bool(re.search(rf"\bthe {re.escape(focus)} of\b", question, re.IGNORECASE))
    if kind is not None:
        return AnswerType(kind, focus, True, relational=relational)
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
    return spacy_pipeline.run(parse_focus, question)


def parse_focus(question: str) -> str:
    """:func:`question_focus`, parsed now (runs where spaCy is: see ``spacy_pipeline.run``)."""
    with spacy_pipeline.parsing() as nlp:
        doc = nlp(question)
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
