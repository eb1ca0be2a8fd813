"""Multiple choice decided by evidence, for the extractive client.

An option is supported by a passage sentence that names it (its distinctive words: those the
options do not all share) and is about the question; each passage votes once per option (its
best sentence), and the votes are summed over passages, so an option many relevant passages
name beats one a single passage mentions. The short answer found for the question without the
options (see ``qa.reading.short_answer``) adds its votes to the option it matches. The answer cites
the
sentence that gave the winning option its largest vote. With no sentence naming any option
:func:`decide` returns None; the extractive client then falls back to the option closest in
meaning to a relevant sentence (weaker evidence, still shown), or refuses without an embedder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qa.reading.short_answer import Candidate
from qa.text.words import content_terms, same_word, words

# A sentence names an option when it holds at least this share of the option's distinctive
# (idf-weighted) words.
MIN_MATCH = 0.34
# A sentence weakly related to the question still counts this much (0..1) of its vote.
RELEVANCE_FLOOR = 0.3
# The short answer's votes, relative to the passages' own votes for the options.
SHORT_ANSWER_WEIGHT = 0.5


@dataclass(frozen=True)
class Decision:
    option: int  # 0-based
    sentence: int  # index of the sentence that decides it
    support: tuple[float, ...]  # every option's summed support, for explaining and testing


def term_named(term: str, have: frozenset[str]) -> bool:
    """The option's term, or a word that is it with a demonym ending ("Belarus" in
    "Belarusian"), is among a sentence's terms."""
    return term in have or any(same_word(term, t) for t in have if t.startswith(term[:4]))


def option_terms(choices: Sequence[str]) -> list[set[str]]:
    """Each option's content words without those all options share ("King", "Queen" ... in
    every option say nothing about which one is right)."""
    terms = [content_terms(c) or set(words(c)) for c in choices]
    shared = set.intersection(*terms) if len(terms) > 1 else set()
    return [t - shared or t for t in terms]


@dataclass(frozen=True)
class OptionSupport:
    """What the passages say for each option (index j): summed votes over passages, how many
    passages name it, its best sentence (-1: none names it) and that sentence's vote."""

    support: np.ndarray
    passages: np.ndarray
    best_sentence: list[int]
    best_vote: np.ndarray


def option_support(
    choices: Sequence[str],
    sentence_terms: Sequence[frozenset[str]],
    sentence_passage: Sequence[int],
    relevance: np.ndarray,
    idf: Callable[[str], float],
) -> OptionSupport:
    """Each option's support: every passage votes once per option, with its best sentence
    naming the option (``match`` share of its distinctive words, scaled by the sentence's
    ``relevance`` to the question)."""
    terms = option_terms(choices)
    n_options = len(choices)
    support = np.zeros(n_options)
    named = np.zeros(n_options)
    best_sentence = [-1] * n_options
    best_vote = np.zeros(n_options)
    for j, wanted in enumerate(terms):
        total = sum(idf(t) for t in wanted)
        if total <= 0:
            continue
        by_passage: dict[int, tuple[float, int]] = {}
        for i, have in enumerate(sentence_terms):
            match = sum(idf(t) for t in wanted if term_named(t, have)) / total
            if match < MIN_MATCH:
                continue
            vote = match * (RELEVANCE_FLOOR + (1 - RELEVANCE_FLOOR) * float(relevance[i]))
            n = sentence_passage[i]
            if n not in by_passage or vote > by_passage[n][0]:
                by_passage[n] = (vote, i)
        named[j] = len(by_passage)
        for vote, i in by_passage.values():
            support[j] += vote
            if vote > best_vote[j]:
                best_vote[j], best_sentence[j] = vote, i
    return OptionSupport(support, named, best_sentence, best_vote)


def decide(
    choices: Sequence[str],
    sentence_terms: Sequence[frozenset[str]],
    sentence_passage: Sequence[int],
    relevance: np.ndarray,
    idf: Callable[[str], float],
    candidates: Sequence[Candidate] = (),
) -> Decision | None:
    """The option the passages support best, or None when no sentence names any option.

    ``relevance`` (0..1 per sentence) is how well each sentence matches the question; ``idf``
    weighs words (rare ones identify an option better)."""
    found = option_support(choices, sentence_terms, sentence_passage, relevance, idf)
    n_options = len(choices)
    support = found.support.copy()
    best_sentence = list(found.best_sentence)
    # The short answer's votes go to the option it names (or that names it).
    total_votes = sum(c.score for c in candidates) or 1.0
    for c in candidates:
        key = f" {' '.join(words(c.text))} "
        for j, choice in enumerate(choices):
            option = f" {' '.join(words(choice))} "
            if option.strip() and (option in key or key in option):
                support[j] += SHORT_ANSWER_WEIGHT * c.score / total_votes
                if best_sentence[j] < 0:
                    best_sentence[j] = c.sentence
    if not support.any() or max(best_sentence) < 0:
        return None
    order = sorted(range(n_options), key=lambda j: (-support[j], j))
    chosen = next((j for j in order if best_sentence[j] >= 0), order[0])
    return Decision(chosen, best_sentence[chosen], tuple(float(x) for x in support))
