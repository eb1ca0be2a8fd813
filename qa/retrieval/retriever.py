"""Question -> ranked Hits: dense and BM25 candidates, fused, de-duplicated, diversified, floored.

The index backend gives the candidates fused by weighted reciprocal-rank fusion
(:mod:`qa.index.fusion`), each with its exact cosine with the question, used for the relevance
floor: passages below ``min_dense_score`` are dropped, so an unrelated question retrieves
nothing. Time priors, the floor, de-duplication and diversity are applied here, the same for
every backend.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import date

from qa.core.config import RetrievalSettings
from qa.core.types import Chunk, DocInfo, Filters, Hit
from qa.embedding.base import Embedder
from qa.index import Index, day_number
from qa.retrieval.filters import question_window
from qa.text.evidence import share
from qa.text.sentences import passage_sentences
from qa.text.words import content_terms

# Two passages whose word sets overlap this much say the same thing (the corpus repeats itself).
NEAR_DUPLICATE = 0.8
# Overlapping windows of one article: keep one when they share this much of the shorter span.
SPAN_OVERLAP = 0.5


@dataclass(frozen=True)
class Retrieval:
    hits: tuple[Hit, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The publication window a time phrase in the question named, when there was one.
    window: tuple[date, date] | None = None


@dataclass
class _Candidate:
    row: int
    fused: float = 0.0
    dense: float | None = None
    bm25: float | None = None


class Retriever:
    """Hybrid retrieval over one index; safe to share between threads."""

    def __init__(self, index: Index, embedder: Embedder, settings: RetrievalSettings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def search(
        self, query: str, k: int | None = None, *, filters: Filters | None = None
    ) -> Retrieval:
        """The best ``k`` passages for ``query``, best first, each from a distinct span, drawn
        only from the articles ``filters`` allow."""
        s = self.settings
        k = k or s.k
        timings: dict[str, float] = {}
        window = None
        if filters is not None and filters.as_of is not None and s.time_phrase != "off":
            window = question_window(query, filters.as_of)
            if window is not None and s.time_phrase == "filter":
                since = max(window[0], filters.since) if filters.since else window[0]
                until = min(window[1], filters.until) if filters.until else window[1]
                filters = replace(filters, since=since, until=until)
        if not self.index.may_match(filters):
            return Retrieval((), timings, window)  # the filters leave nothing to search
        t0 = time.perf_counter()
        qv = self.embedder.embed([query])[0]
        timings["embed_question"] = (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        # Fused by the backend (here for the local one, inside the engine for Milvus).
        candidates = {
            c.row: _Candidate(c.row, c.fused, c.dense, c.bm25)
            for c in self.index.candidates(query, qv, filters, s)
        }
        as_of = filters.as_of if filters is not None else None
        if as_of is not None and candidates and (s.recency_weight or window):
            self._time_priors(list(candidates.values()), as_of, window)
        timings["search"] = (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        ranked = sorted(
            (c for c in candidates.values() if (c.dense or 0.0) >= s.min_dense_score),
            key=lambda c: (-c.fused, c.row),
        )
        stored: dict[int, tuple[Chunk, DocInfo]] = {}
        if s.sentence_weight and ranked:
            ranked = self._rerank(query, ranked, stored)
        # Fetch bounded slices until k survive de-duplication and diversity (one slice is
        # usually enough; a long article filling the first slice needs more).
        step = max(4 * k, 20)
        hits: list[Hit] = []
        for begin in range(0, len(ranked), step):
            wanted = [c.row for c in ranked[begin : begin + step] if c.row not in stored]
            stored.update(self.index.chunks(wanted))
            hits = self._select(ranked[: begin + step], stored, k)
            if len(hits) == k:
                break
        timings["select"] = (time.perf_counter() - t0) * 1000
        return Retrieval(tuple(hits), timings, window)

    def _time_priors(
        self, candidates: list[_Candidate], as_of: date, window: tuple[date, date] | None
    ) -> None:
        """Scale fused scores by the recency prior and the question's time window (see
        ``RetrievalSettings``). An undated article is neutral: it gets the median prior of the
        dated candidates, neither favoured nor pushed down by having no date."""
        s = self.settings
        days = self.index.published_days([c.row for c in candidates])
        low, high = (day_number(window[0]), day_number(window[1])) if window else (0, 0)
        today = as_of.toordinal()
        priors: dict[int, float] = {}
        if s.recency_weight:
            for i, day in enumerate(days):
                if day:
                    age = today - date(day // 10000, day // 100 % 100, day % 100).toordinal()
                    prior = 0.5 ** (max(0, age) / max(s.recency_half_life_days, 1e-6))
                    priors[i] = 1.0 + s.recency_weight * (2.0 * prior - 1.0)
        neutral = statistics.median(priors.values()) if priors else 1.0
        for i, (c, day) in enumerate(zip(candidates, days, strict=True)):
            factor = priors.get(i, neutral)
            if window and s.time_phrase == "boost" and day and low <= day <= high:
                factor *= 1.0 + s.time_weight
            c.fused *= factor

    def _rerank(
        self, query: str, ranked: list[_Candidate], stored: dict[int, tuple[Chunk, DocInfo]]
    ) -> list[_Candidate]:
        """Scale the fused score of the best ``rerank_depth`` candidates by how much of the
        question one of their sentences holds (see ``RetrievalSettings.sentence_weight``);
        fills ``stored`` with the chunks it read."""
        s = self.settings
        terms = content_terms(query)
        if not terms:
            return ranked
        weights = self.index.term_weights(terms)
        head = ranked[: s.rerank_depth]
        stored.update(self.index.chunks([c.row for c in head]))
        for c in head:
            if c.row not in stored:
                continue
            text = stored[c.row][0].text
            sentences = (content_terms(text[a:b]) for a, b in passage_sentences(text))
            best = max((share(terms, held, weights) for held in sentences), default=0.0)
            c.fused *= 1.0 + s.sentence_weight * best
        return sorted(head, key=lambda c: (-c.fused, c.row)) + ranked[s.rerank_depth :]

    def _select(
        self, ranked: list[_Candidate], stored: dict[int, tuple[Chunk, DocInfo]], k: int
    ) -> list[Hit]:
        chosen: list[Hit] = []
        per_doc: dict[str, int] = {}
        words: list[set[str]] = []
        for c in ranked:
            if c.row not in stored:
                continue
            chunk, doc = stored[c.row]
            if per_doc.get(doc.id, 0) >= self.settings.max_per_doc:
                continue
            bag = set(re.findall(r"\w+", chunk.text.lower()))
            if any(_same_span(chunk, h.chunk) for h in chosen) or any(
                _jaccard(bag, other) >= NEAR_DUPLICATE for other in words
            ):
                continue
            chosen.append(
                Hit(chunk, doc, c.fused, len(chosen) + 1, dense_score=c.dense, bm25_score=c.bm25)
            )
            per_doc[doc.id] = per_doc.get(doc.id, 0) + 1
            words.append(bag)
            if len(chosen) == k:
                break
        return chosen


def _same_span(a: Chunk, b: Chunk) -> bool:
    if a.doc_id != b.doc_id:
        return False
    shared = min(a.end, b.end) - max(a.start, b.start)
    return shared > SPAN_OVERLAP * min(a.end - a.start, b.end - b.start)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
