"""What the pipeline knows about a short answer or an option, as numbers a learned model reads.

The features are computed from the checked answer and its passages only, whichever client
wrote it (extractive, a local model, an OpenAI endpoint): the answer type and whether the span
is of that type, how many passages and outlets hold it, where it sits among the retrieved
passages and how well they scored, how much of the question its sentence covers, how near the
span is to the question's words, how old the article is on the day asked. For an option of a
multiple-choice question: the passages' votes for it and against the others (``qa.reading.choice``),
how often its words occur in the passages (the word-count baseline), whether the client chose
it and whether the cited sentence names it.

The names and their order are the contract with the model files (``qa.answering.confidence``): a
change
to what a feature means bumps ``FEATURE_VERSION``, and the models must be retrained.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from qa.core.types import Hit
from qa.reading.answer_type import AMOUNT, COUNT, ORG, PERSON, PLACE, TIME, AnswerType, answer_type
from qa.reading.choice import MIN_MATCH, option_support, option_terms, term_named
from qa.text.evidence import Sentence, sentence_idf, split_sentences, window_terms
from qa.text.words import WORD, content_terms, words

FEATURE_VERSION = 1

SHORT_FEATURES = (
    "typed",
    "type_person",
    "type_place",
    "type_time",
    "type_number",
    "type_named",
    "type_match",
    "type_chunk",
    "passages_with",
    "outlets_with",
    "first_rank",
    "cited_rank",
    "cited_score",
    "cited_dense",
    "top_score",
    "coverage",
    "passage_coverage",
    "proximity",
    "repeats",
    "length",
    "is_name",
    "has_digit",
    "age",
    "age_known",
    "in_title",
    "candidate_rank",
)

OPTION_FEATURES = (
    "support_share",
    "support_log",
    "margin",
    "named",
    "best_vote",
    "tf_share",
    "tf_top",
    "client_pick",
    "cited_names",
    "in_question",
    "options_inv",
    "title_named",
    "no_evidence",
)

PROXIMITY_CHARS = 40.0


def _group(atype: AnswerType | None) -> str:
    """The kind of answer a question wants, in five groups the model can weigh apart."""
    if atype is None:
        return ""
    labels = atype.labels
    if labels & PERSON or labels == ORG:
        return "person"
    if labels & TIME and not labels & COUNT:
        return "time"
    if labels & PLACE and not labels - PLACE:
        return "place"
    if labels & (AMOUNT | COUNT):
        return "number"
    return "named"


@functools.lru_cache(maxsize=4096)
def _joined(text: str) -> str:
    """The text's words joined by single spaces, with a space at each end (for matching a
    span on word boundaries); memoised: every candidate of a question reads the same passages."""
    return f" {' '.join(words(text))} "


@functools.lru_cache(maxsize=4096)
def _terms(text: str) -> frozenset[str]:
    return frozenset(content_terms(text))


def _days(as_of: str, published: str) -> float | None:
    try:
        return float((date.fromisoformat(as_of[:10]) - date.fromisoformat(published[:10])).days)
    except ValueError:
        return None


def _outlet(hit: Hit) -> str:
    """The outlet: its name, else the URL's host, else the article itself."""
    if hit.doc.source:
        return hit.doc.source
    host = hit.doc.url.split("/")[2:3]
    return host[0] if host else hit.doc.id


def short_features(
    question: str,
    short: str,
    cited: int,
    quote: str,
    passages: Sequence[Hit],
    as_of: str = "",
    rank: int = 0,
) -> dict[str, float]:
    """The features of a short answer ``short`` held by passage ``cited`` (1-based) in its
    sentence ``quote``; ``rank`` is its place among the client's candidates (0: its first)."""
    from qa.reading.short_answer import mentions  # spaCy: loaded only when a short answer is judged

    atype = answer_type(question)
    group = _group(atype)
    span = _joined(short)
    holding = [i for i, h in enumerate(passages) if span in _joined(h.chunk.text)]
    outlets = {_outlet(passages[i]) for i in holding}
    hit = passages[cited - 1]
    top = max((h.score for h in passages), default=0.0) or 1.0

    q_terms = content_terms(question)
    focus = content_terms(atype.focus) if atype else set()
    key = (q_terms - focus) or q_terms
    df = {t: sum(1 for h in passages if t in _terms(h.chunk.text)) for t in key}
    weight = {t: 1.0 + math.log((len(passages) + 1) / (df[t] + 1)) for t in key}
    total = sum(weight.values()) or 1.0
    quote_terms = content_terms(quote)
    passage_terms = _terms(hit.chunk.text)

    where = quote.lower().find(short.lower())
    type_match = type_chunk = 0.0
    proximity = 0.0
    if where >= 0:
        end = where + len(short)
        for m in mentions([quote])[0]:
            if m.start < end and where < m.end:
                if atype is not None and m.label in atype.labels:
                    type_match = 1.0
                elif m.label == "CHUNK":
                    type_chunk = 1.0
        anchors = [w.start() for w in WORD.finditer(quote) if content_terms(w.group()) & q_terms]
        anchors = [a for a in anchors if not where <= a < end]
        if anchors:
            distance = min(min(abs(a - where), abs(a - end)) for a in anchors)
            proximity = 1.0 / (1.0 + distance / PROXIMITY_CHARS)
    short_terms = content_terms(short)
    days = _days(as_of, hit.doc.published) if as_of else None
    return {
        "typed": float(bool(atype and atype.typed)),
        "type_person": float(group == "person"),
        "type_place": float(group == "place"),
        "type_time": float(group == "time"),
        "type_number": float(group == "number"),
        "type_named": float(group == "named"),
        "type_match": type_match,
        "type_chunk": type_chunk,
        "passages_with": len(holding) / max(1, len(passages)),
        "outlets_with": float(len(outlets)),
        "first_rank": 1.0 / (1 + holding[0]) if holding else 0.0,
        "cited_rank": 1.0 / cited,
        "cited_score": hit.score / top,
        "cited_dense": hit.dense_score or 0.0,
        "top_score": top,
        "coverage": sum(weight[t] for t in key if t in quote_terms) / total,
        "passage_coverage": sum(weight[t] for t in key if t in passage_terms) / total,
        "proximity": proximity,
        "repeats": len(short_terms & q_terms) / len(short_terms) if short_terms else 1.0,
        "length": math.log1p(len(short.split())),
        "is_name": float(all(w[:1].isupper() for w in short.split())),
        "has_digit": float(any(c.isdigit() for c in short)),
        "age": math.log1p(max(0.0, days)) / 5.0 if days is not None else 0.0,
        "age_known": float(days is not None),
        "in_title": float(span in _joined(hit.doc.title)),
        "candidate_rank": 1.0 / (1 + rank),
    }


@dataclass(frozen=True)
class OptionEvidence:
    """Per option: its features, and the sentence that names it best (an index into
    ``sentences``, -1 when none does), to cite when the option is chosen."""

    features: list[dict[str, float]]
    sentences: list[Sentence]
    best_sentence: list[int]


def option_evidence(
    question: str,
    choices: Sequence[str],
    passages: Sequence[Hit],
    client_pick: int | None,
    cited_quotes: Sequence[str] = (),
) -> OptionEvidence:
    """The features of every option of a multiple-choice question (see the module doc)."""
    sentences = split_sentences(passages)
    idf_cache: dict[str, float] = {}

    def idf(term: str) -> float:
        if term not in idf_cache:
            idf_cache[term] = sentence_idf(term, sentences)
        return idf_cache[term]

    q_terms = content_terms(question)
    q_total = sum(idf(t) for t in q_terms) or 1.0
    windows = [window_terms(sentences, i) for i in range(len(sentences))]
    relevance = np.array([sum(idf(t) for t in q_terms if t in w) / q_total for w in windows])
    if len(relevance) and relevance.max() > 0:
        relevance = relevance / relevance.max()
    found = option_support(choices, windows, [s.n for s in sentences], relevance, idf)
    wanted = option_terms(choices)
    # The word-count baseline: how often each option's words occur in the passages.
    tf = np.array(
        [
            np.mean([math.log1p(sum(1 for s in sentences if t in s.terms)) for t in terms])
            if terms
            else 0.0
            for terms in wanted
        ]
    )
    cited_terms = [frozenset(content_terms(q)) for q in cited_quotes]
    title_terms = [frozenset(content_terms(h.doc.title)) for h in passages]
    total_support = float(found.support.sum())
    features = []
    for j, terms in enumerate(wanted):
        others = [found.support[k] for k in range(len(choices)) if k != j]
        weight = sum(idf(t) for t in terms) or 1.0

        def names(have: frozenset[str], terms: set[str] = terms, weight: float = weight) -> bool:
            return sum(idf(t) for t in terms if term_named(t, have)) / weight >= MIN_MATCH

        features.append(
            {
                "support_share": found.support[j] / total_support if total_support else 0.0,
                "support_log": math.log1p(found.support[j]),
                "margin": found.support[j] - max(others, default=0.0),
                "named": found.passages[j] / max(1, len(passages)),
                "best_vote": float(found.best_vote[j]),
                "tf_share": tf[j] / tf.sum() if tf.sum() else 0.0,
                "tf_top": float(tf.sum() > 0 and tf[j] == tf.max()),
                "client_pick": float(client_pick == j),
                "cited_names": float(any(names(c) for c in cited_terms)),
                "in_question": len(terms & q_terms) / len(terms) if terms else 0.0,
                "options_inv": 1.0 / len(choices),
                "title_named": sum(names(t) for t in title_terms) / max(1, len(passages)),
                "no_evidence": float(total_support == 0),
            }
        )
    return OptionEvidence(features, sentences, list(found.best_sentence))
