"""The passages cut down to what answers, for models that read slowly.

On two cores a 1.5B model reads 40 to 200 prompt tokens a second, so five whole passages cost
many seconds before the first answer word. Instead the model gets the best sentence windows:
each passage sentence (split as the extractive client splits them, so words addressed to a
model are already gone) is scored by how much of the question's content words it holds,
weighted by their rarity among the candidates, plus a small bonus for the passage's rank; the
best sentences are taken best first, then their neighbours, until the token budget is spent.
Each passage keeps its number, so "[n]" still means passage n of the prompt, and its chosen
sentences stay in reading order, with "…" where sentences were left out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

from qa.core.types import Hit
from qa.text.evidence import Sentence, sentence_idf, share, split_sentences
from qa.text.words import content_terms

RANK_BONUS = 0.05  # the first passage's sentences get this much, the last ones close to nothing
GAP = " … "

TokenCount = Callable[[str], int]


def _scores(
    question: str,
    sentences: Sequence[Sentence],
    n_passages: int,
    term_weights: Mapping[str, float],
) -> list[float]:
    wanted = content_terms(question)
    weights = {t: term_weights.get(t) or sentence_idf(t, sentences) for t in wanted}
    return [
        share(wanted, s.terms, weights) + RANK_BONUS * (n_passages - s.n + 1) / n_passages
        for s in sentences
    ]


def best_windows(
    question: str,
    hits: Sequence[Hit],
    budget: int,
    count_tokens: TokenCount,
    term_weights: Mapping[str, float] | None = None,
    header_costs: Mapping[int, int] | None = None,
) -> dict[int, str]:
    """Passage number -> its chosen sentences (reading order, gaps marked), within ``budget``
    tokens in all; passages with nothing chosen are left out. Question words are weighed by
    ``term_weights`` (the index's idf) when given, else by their idf over these sentences.
    ``header_costs`` (passage number -> tokens of its title line) are spent from the budget
    only for the passages shown: charging all of them up front left a small budget no room
    for the second sentence that holds the answer."""
    sentences = split_sentences(hits)
    if not sentences:
        return {}
    scores = _scores(question, sentences, max(1, len(hits)), term_weights or {})
    floor = RANK_BONUS + 1e-9  # at or below this a sentence shares no word with the question
    costs = [count_tokens(s.text) + 1 for s in sentences]
    ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    # Only sentences that share a word with the question, and always the best one.
    relevant = [i for k, i in enumerate(ranked) if k == 0 or scores[i] >= floor]
    chosen: set[int] = set()
    shown: set[int] = set()  # passages whose header is paid for
    room = budget

    def take(i: int) -> None:
        nonlocal room
        n = sentences[i].n
        cost = costs[i] + (0 if n in shown else headers.get(n, 0))
        if cost <= room:
            chosen.add(i)
            shown.add(n)
            room -= cost

    headers = header_costs or {}
    # First the best sentences themselves (more of the candidates the answer may be in), then
    # their neighbours while room is left (the "he" of a sentence is named in the one before).
    for i in relevant:
        take(i)
    for i in relevant:
        if i not in chosen:
            continue
        for j in (i - 1, i + 1):
            if 0 <= j < len(sentences) and sentences[j].n == sentences[i].n and j not in chosen:
                take(j)
    out: dict[int, list[int]] = {}
    for j in sorted(chosen):
        out.setdefault(sentences[j].n, []).append(j)
    return {n: _join(sentences, picked) for n, picked in out.items()}


def _join(sentences: Sequence[Sentence], picked: list[int]) -> str:
    text = sentences[picked[0]].text
    for before, j in itertools.pairwise(picked):
        text += (" " if j == before + 1 else GAP) + sentences[j].text
    return text
