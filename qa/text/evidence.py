"""Evidence: the one rule for how much of a question (or a claim) a sentence holds.

"What rarity-weighted share of some content words does a passage sentence, or its window,
hold" is asked by the retrieval rerank (qa/retrieval/retriever.py), the prompt compaction
(qa/answering/compact.py), the answer check (qa/answering/check.py, for a claim) and the
extractive reader (qa/llm/extractive.py). They all split passages here, weigh words here
(by the index's idf, by rarity among the sentences at hand, or alike) and score with
:func:`share`. Dense similarity stays with the caller that has an embedder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qa.core.types import Hit
from qa.text.sentences import passage_sentences
from qa.text.words import content_terms, is_instruction, words

BLANK_LINE = re.compile(r"[ \t\r\f\v]*\n\s*\n\s*")
TERMINAL = re.compile(r"^(.*?)([.!?]+)$", re.DOTALL)
MIN_WORDS = 3  # shorter "sentences" (datelines, "Yes.") are not candidates


def share(
    terms: Collection[str], held: Collection[str], weights: Mapping[str, float] | None = None
) -> float:
    """The share of ``terms`` found in ``held``, each term counted by its weight (all alike
    when ``weights`` is None); 0 when the terms weigh nothing."""
    if weights is None:
        total = float(len(terms))
        found = float(sum(1 for t in terms if t in held))
    else:
        total = sum(weights[t] for t in terms)
        found = sum(weights[t] for t in terms if t in held)
    return found / total if total > 0 else 0.0


@dataclass(frozen=True)
class Sentence:
    text: str  # verbatim from the passage, whitespace collapsed
    n: int  # passage number (1-based)
    start: int  # offset in the article
    terms: frozenset[str]
    tokens: frozenset[str]  # all lower-cased words, for near-duplicate detection


def _pieces(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """[start, end) cut at blank lines (Punkt keeps a headline and the next sentence together)."""
    pos = start
    for brk in BLANK_LINE.finditer(text, start, end):
        yield pos, brk.start()
        pos = brk.end()
    yield pos, end


def split_sentences(passages: Sequence[Hit]) -> list[Sentence]:
    """The candidate sentences of all passages, in passage and reading order."""
    out: list[Sentence] = []
    for n, hit in enumerate(passages, 1):
        text = hit.chunk.text
        for span_start, span_end in passage_sentences(text):
            for start, end in _pieces(text, span_start, span_end):
                raw = text[start:end]
                sentence = " ".join(raw.split())
                tokens = words(sentence)
                if len(tokens) < MIN_WORDS or is_instruction(sentence):
                    continue  # a dateline, or words addressed to a model: not evidence
                out.append(
                    Sentence(
                        text=sentence,
                        n=n,
                        start=hit.chunk.start + start + len(raw) - len(raw.lstrip()),
                        terms=frozenset(content_terms(sentence)),
                        tokens=frozenset(tokens),
                    )
                )
    return out


def cite(sentence: str, n: int) -> str:
    """``sentence`` with its passage marker before the final full stop: ``... priority [1].``"""
    m = TERMINAL.match(sentence)
    if m and not m.group(1).endswith(("[", " ")):
        return f"{m.group(1)} [{n}]{m.group(2)}"
    return f"{sentence} [{n}]"


def sentence_idf(term: str, sentences: Sequence[Sentence]) -> float:
    """idf over the sentences at hand: the fallback when the index's own is not known."""
    df = sum(1 for s in sentences if term in s.terms)
    return 1.0 + math.log((len(sentences) + 1) / (df + 1))


def window_coverage(
    terms: set[str], sentences: Sequence[Sentence], weights: Mapping[str, float]
) -> np.ndarray:
    """Per sentence, the weighted share of ``terms`` found in it or its neighbours of the same
    passage (a name in one sentence, the event in the next); all ones when the terms weigh
    nothing (no question words: nothing to cover)."""
    if sum(weights[t] for t in terms) <= 0:
        return np.ones(len(sentences))
    return np.array(
        [share(terms, window_terms(sentences, i), weights) for i in range(len(sentences))]
    )


def window_terms(sentences: Sequence[Sentence], i: int) -> frozenset[str]:
    """The terms of sentence i and its neighbours in the same passage."""
    window = set(sentences[i].terms)
    for j in (i - 1, i + 1):
        if 0 <= j < len(sentences) and sentences[j].n == sentences[i].n:
            window |= sentences[j].terms
    return frozenset(window)
