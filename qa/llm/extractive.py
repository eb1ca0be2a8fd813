"""An answerer with no generative model: it quotes the passage sentences that answer best.

Each passage is split into sentences (Punkt); each sentence is scored against the question by
cosine similarity from the embedder the pipeline already loaded (when there is one), overlap
of content words (stop words removed, stemmed, weighted by rarity among the candidate
sentences) and a small bonus for the passage's rank. The best one to three sentences above a
threshold are quoted verbatim, near-duplicates dropped, each followed by its passage marker.
Nothing above the threshold gives the fixed refusal. Deterministic and fast.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.llm.base import register
from qa.prompts import CANNOT_ANSWER
from qa.text import content_terms, is_instruction, words
from qa.types import Completion, Hit, Prompt, Usage

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embed import Embedder


BLANK_LINE = re.compile(r"[ \t\r\f\v]*\n\s*\n\s*")
TERMINAL = re.compile(r"^(.*?)([.!?]+)$", re.DOTALL)

# Weights and thresholds (cosine from all-MiniLM-L6-v2: unrelated ~0.0-0.25, on topic ~0.4-0.8).
DENSE_WEIGHT = 0.5
LEXICAL_WEIGHT = 0.5
RANK_BONUS = 0.04  # the first passage gets this much, the last one close to nothing
THRESHOLD_DENSE = 0.36  # combined score needed with an embedder
THRESHOLD_LEXICAL = 0.34  # lexical score needed without one
DENSE_ALONE = 0.6  # a cosine this high counts even with no shared content word
RELATIVE = 0.72  # further sentences must score at least this share of the best one
MAX_SENTENCES = 3
MAX_WORDS = 90  # stop adding sentences past this many words
MIN_WORDS = 3  # shorter "sentences" (datelines, "Yes.") are not candidates
DUPLICATE_JACCARD = 0.6
CHOICE_THRESHOLD = 0.18
CACHE_SIZE = 50_000  # sentence vectors kept (~80 MB at 384 dims)


@functools.cache
def _sentence_tokenizer() -> Any:
    import punkt

    return punkt.tokenizer_for("english")


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
    tokenizer = _sentence_tokenizer()
    out: list[Sentence] = []
    for n, hit in enumerate(passages, 1):
        text = hit.chunk.text
        for span_start, span_end in tokenizer.span_tokenize(text):
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


def _near_duplicate(a: Sentence, b: Sentence) -> bool:
    if a.text == b.text or a.text in b.text or b.text in a.text:
        return True
    union = len(a.tokens | b.tokens)
    return union > 0 and len(a.tokens & b.tokens) / union >= DUPLICATE_JACCARD


def _idf(term: str, sentences: Sequence[Sentence]) -> float:
    df = sum(1 for s in sentences if term in s.terms)
    return 1.0 + math.log((len(sentences) + 1) / (df + 1))


def _coverage(terms: set[str], sentence: Sentence, weights: dict[str, float]) -> float:
    total = sum(weights[t] for t in terms)
    if total <= 0:
        return 0.0
    return sum(weights[t] for t in terms if t in sentence.terms) / total


class ExtractiveLLM:
    """Quotes the best-supported passage sentences; refuses when none is close enough."""

    name = "extractive"

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder
        # Sentence vectors by text: the same passages come back question after question, and
        # embedding their sentences is most of this client's cost.
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def model(self) -> str:
        return "extractive"

    @property
    def context_window(self) -> int:
        return 1_000_000  # reads passages directly; no model context to fill

    # -- scoring ------------------------------------------------------------------------------

    def _embed(self, texts: list[str]) -> np.ndarray | None:
        if self.embedder is None or not texts:
            return None
        with self._cache_lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            fresh = np.asarray(self.embedder.embed(missing), dtype=np.float32)
            with self._cache_lock:
                self._cache.update(zip(missing, fresh, strict=True))
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        with self._cache_lock:
            rows = []
            for t in texts:
                vector = self._cache.get(t)
                if vector is None:  # evicted by a concurrent caller: embed it again
                    vector = np.asarray(self.embedder.embed([t]), dtype=np.float32)[0]
                else:
                    self._cache.move_to_end(t)
                rows.append(vector)
        return np.vstack(rows)

    def answer(self, prompt: Prompt) -> str:
        sentences = split_sentences(prompt.passages)
        if not sentences:
            return CANNOT_ANSWER
        if not prompt.choices and _focus_missing(prompt.question, prompt.passages):
            return CANNOT_ANSWER
        question = prompt.question
        choices = tuple(c for c in prompt.choices)
        vectors = self._embed([question, *(s.text for s in sentences), *choices])
        dense: np.ndarray | None = None
        choice_dense: np.ndarray | None = None
        if vectors is not None:
            sent_vecs = vectors[1 : 1 + len(sentences)]
            dense = sent_vecs @ vectors[0]
            if choices:
                choice_dense = vectors[1 + len(sentences) :] @ sent_vecs.T

        q_terms = content_terms(question)
        all_terms = set(q_terms)
        choice_terms = [content_terms(c) for c in choices]
        for terms in choice_terms:
            all_terms |= terms
        weights = {t: _idf(t, sentences) for t in all_terms}

        n_passages = max(1, len(prompt.passages))
        lexical = np.array([_coverage(q_terms, s, weights) for s in sentences])
        bonus = np.array([RANK_BONUS * (n_passages - s.n + 1) / n_passages for s in sentences])
        if dense is not None:
            scores = DENSE_WEIGHT * dense + LEXICAL_WEIGHT * lexical + bonus
            passes = (scores >= THRESHOLD_DENSE) & ((lexical > 0) | (dense >= DENSE_ALONE))
        else:
            scores = lexical + bonus
            passes = lexical >= THRESHOLD_LEXICAL

        if choices:
            return self._choose(
                choices, choice_terms, sentences, scores, passes, weights, choice_dense
            )
        order = sorted(range(len(sentences)), key=lambda i: (-scores[i], sentences[i].n, i))
        chosen: list[int] = []
        total_words = 0
        for i in order:
            if not passes[i] or (chosen and scores[i] < RELATIVE * scores[chosen[0]]):
                break
            if any(_near_duplicate(sentences[i], sentences[j]) for j in chosen):
                continue
            n_words = len(sentences[i].text.split())
            if chosen and total_words + n_words > MAX_WORDS:
                break
            chosen.append(i)
            total_words += n_words
            if len(chosen) == MAX_SENTENCES:
                break
        if not chosen:
            return CANNOT_ANSWER
        # The best sentence first (it answers), the others in reading order.
        rest = sorted(chosen[1:], key=lambda i: (sentences[i].n, sentences[i].start, i))
        return " ".join(cite(sentences[i].text, sentences[i].n) for i in [chosen[0], *rest])

    def _choose(
        self,
        choices: tuple[str, ...],
        choice_terms: list[set[str]],
        sentences: list[Sentence],
        scores: np.ndarray,
        passes: np.ndarray,
        weights: dict[str, float],
        choice_dense: np.ndarray | None,
    ) -> str:
        """The option the passages support best, with the sentence that supports it."""
        # Words every option shares say nothing about which one is right.
        shared = set.intersection(*choice_terms) if len(choice_terms) > 1 else set()
        top = float(scores.max()) if len(scores) else 0.0
        relevance = np.clip(scores / top, 0.0, 1.0) if top > 0 else np.zeros_like(scores)
        best: tuple[float, int, int] | None = None  # (support, option, sentence)
        for j, terms in enumerate(choice_terms):
            distinct = terms - shared
            for i, sentence in enumerate(sentences):
                lexical = _coverage(distinct, sentence, weights)
                if choice_dense is not None:
                    match = 0.6 * lexical + 0.4 * float(choice_dense[j, i])
                else:
                    match = lexical
                support = match * (0.4 + 0.6 * float(relevance[i]))
                if not passes[i]:
                    support *= 0.7
                if best is None or support > best[0] + 1e-9:
                    best = (support, j, i)
        # A weak best option is still the answer when the passages are about the question:
        # in a multiple-choice setting abstaining is always wrong, a guess sometimes right.
        if best is None or (best[0] < CHOICE_THRESHOLD and not passes.any()):
            return CANNOT_ANSWER
        _, j, i = best
        choice = choices[j].strip().rstrip(".")
        return f"Option {j + 1}: {choice}. {cite(sentences[i].text, sentences[i].n)}"

    # -- the LLM protocol ---------------------------------------------------------------------

    def generate(self, prompt: Prompt) -> Completion:
        text = self.answer(prompt)
        read = len(prompt.question.split()) + sum(
            len(h.chunk.text.split()) for h in prompt.passages
        )
        return Completion(text=text, model=self.model, usage=Usage(read, len(text.split())))

    def stream(self, prompt: Prompt) -> Iterator[str | Completion]:
        completion = self.generate(prompt)
        # Sentence by sentence (each with its marker); the pieces join to the text.
        yield from re.findall(r".*?\][.!?]*\s*|.+$", completion.text, re.DOTALL)
        yield completion


# Words that end the noun phrase after "which"/"what"/"how many".
_FOCUS_STOP_WORDS = """did does do is are was were will would can could should has have had of in
    on for to by at with from that and or the a an"""
_FOCUS_STOP = frozenset(_FOCUS_STOP_WORDS.split())
# Nouns that name the kind of answer rather than what it is about ("what year", "which word",
# "what rank"): the passages need not contain them.
_ANSWER_TYPE_NOUNS = """year years date dates day days month months time times period duration
    age word words
    term terms name names title titles kind kinds type types sort sorts number numbers amount
    amounts size level rank ranks make model models brand version designation status position
    price cost percentage share distance way ways thing things one ones person persons people
    country countries place places city cities region regions area areas field fields sector
    sectors subject subjects issue issues document documents event events part parts role roles
    reason reasons"""
ANSWER_TYPE_NOUNS = frozenset(_ANSWER_TYPE_NOUNS.split())


def question_focus(question: str) -> str | None:
    """The noun a "which X ..." / "what X ..." / "how many X ..." question asks about, unless
    it only names the kind of answer. "Which Russian company will ..." -> "company"."""
    words = re.findall(r"[\w'’-]+|[,;:?]", question.lower())
    start = None
    for i, word in enumerate(words[:3]):
        if word in ("which", "what"):
            start = i + 1
            break
        if word == "how" and i + 1 < len(words) and words[i + 1] in ("many", "much"):
            start = i + 2
            break
    if start is None:
        return None
    if words[start : start + 1] in (["is"], ["was"], ["are"], ["were"]) and words[
        start + 1 : start + 2
    ] in (["the"], ["a"], ["an"]):
        start += 2  # "what is the annual value of ..."
    taken: list[str] = []
    for word in words[start : start + 4]:
        if word in _FOCUS_STOP or not word[0].isalnum() or (taken and word.endswith("ed")):
            break
        taken.append(word)
    if not taken or taken[-1] in ANSWER_TYPE_NOUNS:
        return None
    return taken[-1]


def _focus_missing(question: str, passages: Sequence[Hit]) -> bool:
    """Whether the thing the question asks for ("which company") appears in no passage: then
    the closest sentence would answer another question, so the client refuses instead."""
    focus = question_focus(question)
    if focus is None:
        return False
    wanted = content_terms(focus)
    if not wanted:
        return False
    present = set().union(*(content_terms(f"{h.doc.title} {h.chunk.text}") for h in passages))
    return not (wanted & present)


@register("extractive")
def create_extractive(settings: Settings, embedder: Embedder | None = None) -> ExtractiveLLM:
    return ExtractiveLLM(embedder)
