"""The question's key entity must be in the passages: "What did the Pakistani defence minister
say?" is not answered with the Russian minister's words.

A key entity here is a person's role tied to a named country or people: a noun phrase whose
head is a person noun and whose modifier is a nationality or a place ("the Pakistani defence
minister", "Kazakhstan's defence minister"). When no retrieved sentence names both the
modifier (or its country: "India" for "Indian") and the head, the passages are about someone
else, and the question is refused before any model is called. Other phrases ("Russia's
position", "the SCO joint communiqué") are left alone: their words are often spread over
several sentences that do answer (measured on the gold set, where the wider rule refused ten
answerable questions). Plain names ("Khrenin") are left to retrieval and the
answer checks: a passage that never names them scores low anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

from qa.core.types import Hit
from qa.reading import spacy_pipeline
from qa.reading.answer_type import PERSON, kind_of
from qa.text.words import content_terms, same_word, words

# Entity labels that tie a role to a country or people ("Pakistani", "Kazakhstan's").
_NAMED = frozenset({"NORP", "GPE"})


def key_entities(question: str) -> list[tuple[str, str, str]]:
    """(phrase, modifier, head) of each key entity of the question (parsed with spaCy)."""
    return spacy_pipeline.run(parse_key_entities, question)


def parse_key_entities(question: str) -> list[tuple[str, str, str]]:
    """:func:`key_entities`, parsed now (runs where spaCy is: see ``spacy_pipeline.run``)."""
    with spacy_pipeline.parsing() as nlp:
        doc = nlp(question)
    found = []
    for chunk in doc.noun_chunks:
        head = chunk.root
        if head.pos_ != "NOUN" or kind_of(head.lower_) != PERSON:
            continue
        for token in chunk:
            if token.i != head.i and token.ent_type_ in _NAMED and token.pos_ != "DET":
                text = doc[chunk.start : chunk.end].text
                if text.lower().startswith(("the ", "a ", "an ")):
                    text = text.split(" ", 1)[1]
                found.append((text, token.text, head.text))
                break
    return found


def _named(word: str, sentence_words: Sequence[str]) -> bool:
    """The word, or its country or people ("India" for "Indian", "Indian" for "India")."""
    return any(same_word(word, w) or same_word(w, word) for w in sentence_words)


def missing_entity(question: str, passages: Sequence[Hit]) -> str:
    """The first key entity of the question that no passage sentence names (its modifier as
    a word and its head's term together), or ""."""
    entities = key_entities(question)
    if not entities:
        return ""
    from qa.text.sentences import passage_sentences

    sentences = [
        hit.chunk.text[s:e] for hit in passages for s, e in passage_sentences(hit.chunk.text)
    ]
    for phrase, modifier, head in entities:
        wanted = [w for w in words(modifier) if w not in ("s",)]
        head_terms = content_terms(head)
        if not wanted or not head_terms:
            continue
        if not any(
            all(w in words(s) for w in wanted) and head_terms <= content_terms(s) for s in sentences
        ):
            return phrase
    return ""
