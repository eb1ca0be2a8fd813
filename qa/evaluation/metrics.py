"""Evaluation metrics: pure functions over strings and numbers, no I/O and no models.

Four families, each defined in its function's docstring:

* Answers (SQuAD-style): :func:`exact_match`, :func:`token_f1`, :func:`contains_answer`, all
  after :func:`normalize_answer` and the best over the accepted gold strings.
* Retrieval against gold evidence spans: :func:`evidence_recall`, :func:`evidence_complete`,
  :func:`mrr`; a span is found in a passage by :func:`span_in_passage`.
* Citations (ALCE-like, against the same spans): :func:`citation_precision`,
  :func:`citation_recall`.
* Refusals, :func:`percentile` and the aggregator :func:`summarize`.

Right, wrong or silent (coverage, precision, CRAG truthfulness, the precision-coverage curve and
the confidence bar) are in :mod:`qa.evaluation.truthfulness`, which defines "right" for each
decision.

RealTime QA keeps its own, slightly different normalisation (no article removal, ASCII
punctuation only): :func:`rtqa_normalize`, :func:`rtqa_exact_match`, :func:`rtqa_f1` and the
answer-recall check :func:`answer_in_text`.

A metric that does not apply to a question (for example evidence recall on an unanswerable
question, which has no evidence) returns ``None``; :func:`summarize` skips ``None`` in means.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qa.llm.prompts import REFUSAL

__all__ = [
    "MIN_SPAN_COVERAGE",
    "answer_in_text",
    "citation_precision",
    "citation_recall",
    "contains_answer",
    "evidence_complete",
    "evidence_recall",
    "exact_match",
    "is_refusal",
    "mrr",
    "normalize_answer",
    "normalize_ws",
    "percentile",
    "rtqa_exact_match",
    "rtqa_f1",
    "rtqa_normalize",
    "span_in_passage",
    "summarize",
    "token_f1",
]

# ---------------------------------------------------------------------------------------------
# Answers


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower-case, delete punctuation, drop the articles a/an/the, and
    collapse white space.

    Punctuation is every Unicode punctuation character (categories ``P*``), so curly quotes and
    dashes go too; characters are deleted, not replaced, so "buyer-seller" becomes
    "buyerseller" and "Belarus’s" equals "Belarus's".
    """
    text = text.lower()
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _golds(golds: str | Iterable[str], normalize: Any = normalize_answer) -> list[str]:
    """The gold strings, normalised, without those that normalise to nothing."""
    items = [golds] if isinstance(golds, str) else list(golds)
    return [g for g in (normalize(x) for x in items) if g]


def _no_gold_score(pred_norm: str) -> float:
    # No usable gold answer: the question is unanswerable, and the only right answer is none.
    return 1.0 if not pred_norm else 0.0


def exact_match(pred: str, golds: str | Iterable[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer, else 0.0.

    With no gold answers (an unanswerable question; gold strings that normalise to "" are
    ignored) the score is 1.0 for an empty prediction and 0.0 otherwise; pass "" for a refusal.
    A non-empty gold list never matches an empty prediction.
    """
    p = normalize_answer(pred)
    gs = _golds(golds)
    if not gs:
        return _no_gold_score(p)
    return 1.0 if p in gs else 0.0


def _f1(pred_tokens: Sequence[str], gold_tokens: Sequence[str]) -> float:
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(pred: str, golds: str | Iterable[str]) -> float:
    """Token-overlap F1 between the normalised prediction and each normalised gold answer, the
    best over the golds. Tokens are the white-space separated words after normalisation,
    counted with multiplicity (bag of words).

    With no gold answers: 1.0 for an empty prediction, else 0.0 (as :func:`exact_match`). An
    empty prediction against real golds scores 0.0.
    """
    p = normalize_answer(pred)
    gs = _golds(golds)
    if not gs:
        return _no_gold_score(p)
    pt = p.split()
    return max(_f1(pt, g.split()) for g in gs)


def contains_answer(pred: str, golds: str | Iterable[str]) -> float:
    """1.0 if some normalised gold answer occurs in the normalised prediction on word
    boundaries ("26" is found in "26 civilians", not in "126"), else 0.0. Lenient: suits long,
    sentence-style answers that EM punishes.

    With no gold answers: 1.0 for an empty prediction, else 0.0 (as :func:`exact_match`).
    """
    p = normalize_answer(pred)
    gs = _golds(golds)
    if not gs:
        return _no_gold_score(p)
    padded = f" {p} "
    return 1.0 if any(f" {g} " in padded for g in gs) else 0.0


# ---------------------------------------------------------------------------------------------
# Retrieval and citations against gold evidence spans

# A span counts as inside a passage when at least this share of its characters lies in the
# passage as one piece cut only at an end of the span: a chunk boundary may clip a little.
MIN_SPAN_COVERAGE = 0.9


def normalize_ws(text: str) -> str:
    """Collapse every run of white space to one space and trim the ends."""
    return " ".join(text.split())


def span_in_passage(span: str, passage: str, min_coverage: float = MIN_SPAN_COVERAGE) -> bool:
    """Whether an evidence span is inside a passage, comparing after white-space normalisation
    (case, quotes and punctuation must match: spans are verbatim from the article).

    The span counts when the passage contains all of it, or when a chunk boundary clipped it:
    the passage ends with the span's first characters or starts with its last characters, and
    that piece covers at least ``min_coverage`` (90%) of the span. A span split between two
    passages therefore counts only if one of them holds at least 90% of it; pieces in different
    passages are never added up.
    """
    s = normalize_ws(span)
    p = normalize_ws(passage)
    if not s:
        return False
    if s in p:
        return True
    need = max(1, math.ceil(min_coverage * len(s)))
    # Longest clipped piece first; a piece at the span's start must end the passage, and a
    # piece at its end must start the passage.
    return any(p.endswith(s[:k]) or p.startswith(s[-k:]) for k in range(len(s) - 1, need - 1, -1))


def _spans(evidence: str | Iterable[str]) -> list[str]:
    items = [evidence] if isinstance(evidence, str) else list(evidence)
    # Duplicate spans count once.
    return list(dict.fromkeys(s for s in items if normalize_ws(s)))


def evidence_recall(passage_texts: Sequence[str], evidence: str | Iterable[str]) -> float | None:
    """Share of the gold evidence spans found (see :func:`span_in_passage`) in at least one of
    the retrieved passages: 1.0 exactly when all of them are. ``None`` when the question has no
    evidence (unanswerable). Truncate ``passage_texts`` to the top k for recall@k.
    """
    spans = _spans(evidence)
    if not spans:
        return None
    found = sum(1 for s in spans if any(span_in_passage(s, p) for p in passage_texts))
    return found / len(spans)


def evidence_complete(passage_texts: Sequence[str], evidence: str | Iterable[str]) -> float | None:
    """1.0 if every evidence span is found in the retrieved passages, else 0.0 (the strict,
    all-or-nothing form of :func:`evidence_recall`); ``None`` without evidence."""
    r = evidence_recall(passage_texts, evidence)
    return None if r is None else (1.0 if r == 1.0 else 0.0)


def mrr(passage_texts: Sequence[str], evidence: str | Iterable[str]) -> float | None:
    """Reciprocal rank: 1/rank (1-based) of the first passage containing any evidence span,
    0.0 if none does, ``None`` when the question has no evidence."""
    spans = _spans(evidence)
    if not spans:
        return None
    for rank, passage in enumerate(passage_texts, 1):
        if any(span_in_passage(s, passage) for s in spans):
            return 1.0 / rank
    return 0.0


def _unique(texts: Iterable[str]) -> list[str]:
    # Duplicate citations (the same passage cited twice) count once.
    return list(dict.fromkeys(normalize_ws(t) for t in texts))


def citation_precision(cited_texts: Sequence[str], evidence: str | Iterable[str]) -> float | None:
    """Share of the distinct cited passages that contain an evidence span.

    Duplicates (the same passage text cited twice) count once. No citations on a question
    with evidence scores 0.0 (as in ALCE: an uncited answer supports nothing, and a refusal
    on an answerable question is also a miss). ``None`` when the question has no evidence.
    """
    spans = _spans(evidence)
    if not spans:
        return None
    cited = _unique(cited_texts)
    if not cited:
        return 0.0
    good = sum(1 for c in cited if any(span_in_passage(s, c) for s in spans))
    return good / len(cited)


def citation_recall(cited_texts: Sequence[str], evidence: str | Iterable[str]) -> float | None:
    """Share of the evidence spans found in at least one cited passage; 0.0 with no
    citations, ``None`` when the question has no evidence."""
    spans = _spans(evidence)
    if not spans:
        return None
    cited = _unique(cited_texts)
    if not cited:
        return 0.0
    return sum(1 for s in spans if any(span_in_passage(s, c) for c in cited)) / len(spans)


# ---------------------------------------------------------------------------------------------
# Refusals and aggregation


def is_refusal(answer: str | Mapping[str, Any]) -> bool:
    """Whether an answer declines to answer.

    For an answer dict (``Answer.to_dict()``) this is ``not answer["answered"]``, the
    pipeline's own verdict. For bare text (e.g. another system's output): an empty answer, or
    one with a stock refusal phrase such as "I cannot answer this from the given articles" or
    "not mentioned in the articles".
    """
    if isinstance(answer, Mapping):
        if "answered" in answer:
            return not bool(answer["answered"])
        answer = str(answer.get("answer", ""))
    return not answer.strip() or REFUSAL.search(answer) is not None


def percentile(values: Iterable[float | None], p: float) -> float | None:
    """The p-th percentile (0 <= p <= 100) with linear interpolation between the closest ranks
    (numpy's default), skipping ``None``; ``None`` when there are no values."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {p}")
    xs = sorted(float(v) for v in values if v is not None)
    if not xs:
        return None
    pos = (len(xs) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _mean(values: Iterable[float | None]) -> float | None:
    xs = [float(v) for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


# Row keys summarize treats specially instead of averaging.
_COST_KEYS = ("latency_ms", "tokens", "prompt_tokens", "completion_tokens")
UNANSWERABLE = "unanswerable"


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _metric_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys whose values are numbers or None in every row that has them (strings such as
    ``id`` and ``type`` are not metrics), minus the cost keys and ``refused``."""
    keys: dict[str, bool] = {}
    for row in rows:
        for k, v in row.items():
            if k in _COST_KEYS or k == "refused":
                continue
            keys[k] = keys.get(k, True) and (v is None or _is_number(v))
    return [k for k, ok in keys.items() if ok]


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Aggregate per-question score rows into a report.

    Each row is a dict with ``type`` ("single", "multi", "unanswerable", or any other label),
    numeric metric values (``None`` where a metric does not apply), and optionally
    ``refused`` (bool), ``latency_ms`` and token counts (``tokens``, or ``prompt_tokens`` and
    ``completion_tokens``). Every numeric key other than those is a metric.

    Returns::

        {"n": int,
         "overall": {metric: mean over rows with a value, or None},
         "by_type": {type: {"n": int, metric: mean, ...}},
         "by_kind": {kind: {"n": int, "refused": share, metric: mean, ...}}  (only when some
                         rows carry a ``kind``, e.g. gold "who_is"; rows without one are left
                         out of it),
         "refusal": {"unanswerable_refused": share of unanswerable rows refused (higher is
                         better), "answerable_refused": share of the other rows refused
                         (wrong refusals, lower is better); None without such rows},
         "latency_ms": {"p50": ..., "p95": ..., "mean": ...},
         "tokens": {"prompt": int, "completion": int, "total": int}}

    ``tokens.total`` sums each row's ``tokens``, or its prompt plus completion tokens when it has
    no ``tokens`` key.
    """
    keys = _metric_keys(rows)
    types = list(dict.fromkeys(str(r.get("type", "")) for r in rows))

    def means(subset: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(subset)}
        for k in keys:
            out[k] = _mean(r.get(k) if _is_number(r.get(k)) else None for r in subset)
        return out

    def refused_share(subset: Sequence[Mapping[str, Any]]) -> float | None:
        flags = [bool(r["refused"]) for r in subset if r.get("refused") is not None]
        return sum(flags) / len(flags) if flags else None

    unanswerable = [r for r in rows if r.get("type") == UNANSWERABLE]
    answerable = [r for r in rows if r.get("type") != UNANSWERABLE]
    overall = means(rows)
    overall.pop("n")

    prompt = sum(int(r.get("prompt_tokens") or 0) for r in rows)
    completion = sum(int(r.get("completion_tokens") or 0) for r in rows)
    total = sum(
        int(r["tokens"])
        if _is_number(r.get("tokens"))
        else int(r.get("prompt_tokens") or 0) + int(r.get("completion_tokens") or 0)
        for r in rows
    )
    latencies = [float(r["latency_ms"]) for r in rows if _is_number(r.get("latency_ms"))]
    kinds = list(dict.fromkeys(str(r["kind"]) for r in rows if r.get("kind")))
    by_kind = {
        kind: means(subset) | {"refused": refused_share(subset)}
        for kind in kinds
        if (subset := [r for r in rows if str(r.get("kind") or "") == kind])
    }
    return {
        "n": len(rows),
        "overall": overall,
        "by_type": {t: means([r for r in rows if str(r.get("type", "")) == t]) for t in types},
        **({"by_kind": by_kind} if by_kind else {}),
        "refusal": {
            "unanswerable_refused": refused_share(unanswerable),
            "answerable_refused": refused_share(answerable),
        },
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "mean": _mean(latencies),
        },
        "tokens": {"prompt": prompt, "completion": completion, "total": total},
    }


# ---------------------------------------------------------------------------------------------
# RealTime QA's own scoring

_ASCII_PUNCT = frozenset(string.punctuation)
# The benchmark's scorer also drops these counter words (years, ages, people in CJK answers).
_COUNTERS = ("年", "歳", "人", "년")


def rtqa_normalize(text: str) -> str:
    """RealTime QA's normalisation: lower-case, delete ASCII punctuation, delete the CJK
    counters 年 歳 人 년, collapse white space. Unlike :func:`normalize_answer` it keeps
    articles and non-ASCII punctuation (curly quotes stay)."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    for c in _COUNTERS:
        text = text.replace(c, "")
    return " ".join(text.split())


def rtqa_exact_match(pred: str, golds: str | Iterable[str]) -> float:
    """The benchmark's exact match: 1.0 if :func:`rtqa_normalize` makes the prediction equal
    to a gold string, best over the golds; 0.0 with no golds."""
    items = [golds] if isinstance(golds, str) else list(golds)
    p = rtqa_normalize(pred)
    return 1.0 if any(p == rtqa_normalize(g) for g in items) else 0.0


def rtqa_f1(pred: str, golds: str | Iterable[str]) -> float:
    """The benchmark's token F1 after :func:`rtqa_normalize`, best over the golds; 0.0 with no
    golds or an empty prediction."""
    items = [golds] if isinstance(golds, str) else list(golds)
    pt = rtqa_normalize(pred).split()
    scores = [_f1(pt, rtqa_normalize(g).split()) for g in items]
    return max(scores, default=0.0) if pt else 0.0


def answer_in_text(gold: str, text: str) -> bool:
    """Answer recall check: the :func:`rtqa_normalize`-d gold answer occurs in the normalised
    text on word boundaries. An empty gold is never found."""
    g = rtqa_normalize(gold)
    return bool(g) and f" {g} " in f" {rtqa_normalize(text)} "
