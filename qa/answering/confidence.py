"""Right or silent: the learned probability that a short answer, or a chosen option, is right,
and the bar it must clear to be shown.

Two small logistic models, trained by ``eval/train_confidence.py`` on RealTime QA news (the
features are :mod:`qa.answering.features`), are kept as JSON in ``qa/answering/confidence_models/``
beside their
training report:

- ``short``: P(the short answer is right | its features). Below
  ``answer.min_short_confidence`` the short answer is withheld; the cited sentences remain.
- ``option``: a score per option; the option with the best score wins (it may overrule the
  client's pick, citing the sentence that names it), and its share of the scores, calibrated
  by Platt scaling on held-out weeks, is the confidence. Below ``answer.min_choice_confidence``
  the answer says the articles do not decide.

Inference is numpy only (scikit-learn is needed to train, not to answer). A missing model file,
or one built for other features, is an error that says how to rebuild it: never a silent
fallback to showing everything.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from qa.answering.features import (
    FEATURE_VERSION,
    OPTION_FEATURES,
    SHORT_FEATURES,
    option_evidence,
    short_features,
)
from qa.core.types import Filters, Hit, QAError
from qa.llm import prompts
from qa.text.words import CITATION_MARKER

MODEL_DIR = Path(__file__).parent / "confidence_models"
RETRAIN = "python eval/train_confidence.py"


@dataclass(frozen=True)
class Calibrator:
    """A logistic model over named features (standardised), with an optional Platt step."""

    name: str
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    platt: tuple[float, float] = (1.0, 0.0)  # for options: a, b of sigmoid(a * logit + b)

    def logits(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        x = np.array([[row[f] for f in self.features] for row in rows], dtype=np.float64)
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def probability(self, row: Mapping[str, float]) -> float:
        return float(_sigmoid(self.logits([row]))[0])

    def option_probabilities(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Each option's calibrated probability of being the right one: its softmax share of
        the scores, through the Platt step fitted on held-out weeks."""
        logits = self.logits(rows)
        share = np.exp(logits - logits.max())
        share /= share.sum()
        a, b = self.platt
        return _sigmoid(a * _logit(share) + b)

    def to_json(self, **extra: Any) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature_version": FEATURE_VERSION,
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "platt": list(self.platt),
            **extra,
        }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


EXPECTED = {"short": SHORT_FEATURES, "option": OPTION_FEATURES}


@functools.lru_cache(maxsize=8)
def load(name: str, folder: Path = MODEL_DIR) -> Calibrator:
    """The model ``name`` ("short" or "option"); a clear error when it is missing or stale."""
    path = folder / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QAError(
            f"the confidence model {path} is missing: rebuild it with `{RETRAIN}`"
        ) from None
    except (OSError, ValueError) as exc:
        raise QAError(f"the confidence model {path} cannot be read ({exc}): `{RETRAIN}`") from None
    expected = EXPECTED[name]
    if (
        not isinstance(data, dict)
        or data.get("feature_version") != FEATURE_VERSION
        or tuple(data.get("features", ())) != expected
    ):
        raise QAError(
            f"the confidence model {path} is stale (built for other features than this "
            f"version of qa computes): rebuild it with `{RETRAIN}`"
        )
    try:
        return Calibrator(
            name=name,
            features=expected,
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            coef=np.asarray(data["coef"], dtype=np.float64),
            intercept=float(data["intercept"]),
            platt=(float(data["platt"][0]), float(data["platt"][1])),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise QAError(f"the confidence model {path} is malformed ({exc}): `{RETRAIN}`") from None


# ------------------------------------------------------------------------------ judging


def judge(
    question: str,
    choices: Sequence[str],
    # qa.answering.check.CheckedAnswer (not imported: qa.answering.check imports heavy helpers)
    checked: Any,
    passages: Sequence[Hit],
    lookup: Any,
    filters: Filters | None,
    min_short: float,
    min_choice: float,
) -> tuple[Any, float | None]:
    """The checked answer with what falls below the bar withheld, and the confidence of its
    short answer (or of its chosen option)."""
    if choices:
        return _judge_choice(question, choices, checked, passages, lookup, min_choice)
    candidates = list(checked.alternatives)
    if checked.short_citation is not None and checked.short_answer:
        first = next(c for c in checked.citations if c.n == checked.short_citation)
        candidates.insert(0, (checked.short_answer, first))
    if not candidates:
        return checked, None
    as_of = str(filters.as_of) if filters is not None and filters.as_of else ""
    rows = [
        short_features(question, span, c.n, c.quote, passages, as_of, rank)
        for rank, (span, c) in enumerate(candidates)
    ]
    model = load("short")
    probabilities = [model.probability(row) for row in rows]
    best = max(range(len(candidates)), key=lambda i: (probabilities[i], -i))
    confidence = probabilities[best]
    span, citation = candidates[best]
    if confidence >= min_short:
        if span == checked.short_answer:
            return checked, confidence
        # The judge prefers another of the client's candidates: it goes first, with the
        # sentence that holds it among the citations.
        citations = {c.n: c for c in checked.citations}
        citations.setdefault(citation.n, citation)
        chosen = replace(
            checked,
            short_answer=span,
            short_citation=citation.n,
            citations=tuple(sorted(citations.values(), key=lambda c: c.n)),
        )
        return chosen, confidence
    # Withheld: the short answer goes; its citation stays only if the text still cites it.
    cited = {int(n) for g in CITATION_MARKER.findall(checked.text) for n in g.split(",")}
    citations_left = tuple(c for c in checked.citations if c.n in cited)
    withheld = replace(checked, short_answer="", short_citation=None, citations=citations_left)
    return withheld, confidence


def _judge_choice(
    question: str,
    choices: Sequence[str],
    checked: Any,
    passages: Sequence[Hit],
    lookup: Any,
    min_choice: float,
) -> tuple[Any, float | None]:
    from qa.answering.check import check_answer
    from qa.text.evidence import cite

    quotes = [c.quote for c in checked.citations]
    evidence = option_evidence(question, choices, passages, checked.choice, quotes)
    candidates = [
        j for j in range(len(choices)) if evidence.best_sentence[j] >= 0 or j == checked.choice
    ]
    if not candidates:
        return checked, None  # nothing names any option and the client chose none
    probabilities = load("option").option_probabilities(evidence.features)
    chosen = max(candidates, key=lambda j: (probabilities[j], -j))
    confidence = float(probabilities[chosen])
    if confidence < min_choice:
        return (
            replace(
                checked,
                text=prompts.UNDECIDED,
                answered=False,
                citations=(),
                choice=None,
                short_answer="",
                short_citation=None,
            ),
            confidence,
        )
    if chosen != checked.choice:
        # The learned decision overrules the client: cite the sentence that names the option.
        sentence = evidence.sentences[evidence.best_sentence[chosen]]
        raw = f"Option {chosen + 1}: {choices[chosen]}. {cite(sentence.text, sentence.n)}"
        rebuilt = check_answer(raw, passages, lookup, choices, question)
        if rebuilt.choice == chosen and rebuilt.answered:
            return rebuilt, confidence
        return checked, None
    return checked, confidence
