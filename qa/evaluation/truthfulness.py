"""Right, wrong or silent: the truthfulness measures of issue #21, pure functions.

Three decisions are judged on every question they apply to:

* the **short answer** (the name, number, date or phrase shown first, in bold);
* the **multiple-choice answer** (the option picked, or "the articles do not decide");
* the **whole answer** (what a reader sees: the short answer and the cited sentences).

Each is scored as the CRAG benchmark does: a right answer +1, silence ("the articles do not
say") 0, a wrong answer -1. A set of questions then has

* *coverage*: the share answered;
* *precision*: the share right among those answered (``None`` when none was answered);
* *truthfulness*: the mean of +1/0/-1, between -1 and +1.

"Right" is defined once, here: :func:`short_answer_right`, :func:`choice_right` and
:func:`answer_right`. A question with no gold answer (unanswerable) has no right answer: any
answer shown is wrong (-1) and silence scores 0, as everywhere.

The product shows a candidate only when its learned confidence reaches a bar
(``settings.answer.min_short_confidence`` and ``min_choice_confidence``). The eval harness asks
with both bars at 0, so every candidate and its confidence is recorded, and applies the
configured bars afterwards with :func:`decide`; :func:`precision_coverage` gives the whole
curve of bars at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qa.evaluation.metrics import contains_answer, exact_match, normalize_answer, token_f1

__all__ = [
    "COVERAGE_LEVELS",
    "SHORT_F1_RIGHT",
    "Candidate",
    "answer_right",
    "choice_right",
    "crag",
    "decide",
    "decision_report",
    "judged",
    "precision_at",
    "precision_coverage",
    "short_answer_right",
]

# A short answer whose token F1 with a gold answer reaches this is right (issue #21 measured the
# old pipeline with the same line): "Russian Defence Minister" for "Russia's defence minister".
SHORT_F1_RIGHT = 0.5
# The coverages report.md gives the curve's precision at.
COVERAGE_LEVELS = tuple(round(0.1 * i, 1) for i in range(1, 11))


def _has_gold(golds: Iterable[str]) -> bool:
    return any(normalize_answer(g) for g in golds)


def short_answer_right(pred: str, golds: str | Iterable[str]) -> bool:
    """Whether a shown short answer is right: after SQuAD normalisation
    (:func:`qa.evaluation.metrics.normalize_answer`) it equals a gold answer (exact match), or a
    gold answer
    occurs in it on word boundaries (:func:`qa.evaluation.metrics.contains_answer`: "26" in "26
    civilians"), or its token F1 with a gold answer is at least :data:`SHORT_F1_RIGHT` (0.5).

    Never right when it is empty (nothing shown) or when the question has no gold answer: on an
    unanswerable question any short answer is wrong.
    """
    gs = [golds] if isinstance(golds, str) else list(golds)
    if not normalize_answer(pred) or not _has_gold(gs):
        return False
    return (
        exact_match(pred, gs) == 1.0
        or contains_answer(pred, gs) == 1.0
        or token_f1(pred, gs) >= SHORT_F1_RIGHT
    )


def choice_right(chosen: int | None, gold: int | None) -> bool:
    """Whether a multiple-choice pick is right: the chosen option is the gold one (both
    counted the same way, e.g. both from 0). No pick, or no gold option, is never right."""
    return chosen is not None and gold is not None and chosen == gold


def answer_right(seen: str, golds: str | Iterable[str]) -> bool:
    """Whether the whole answer is right: an accepted answer occurs, on word boundaries, in what
    the reader sees (``contains``, :func:`qa.evaluation.metrics.contains_answer`). Never right
    without a
    gold answer (unanswerable) or when nothing is shown."""
    gs = [golds] if isinstance(golds, str) else list(golds)
    if not normalize_answer(seen) or not _has_gold(gs):
        return False
    return contains_answer(seen, gs) == 1.0


def crag(answered: bool, right: bool) -> int:
    """CRAG's score of one answer: +1 right, -1 wrong, 0 silent (``right`` is then ignored)."""
    if not answered:
        return 0
    return 1 if right else -1


def judged(prefix: str, answered: bool | None, right: bool = False) -> dict[str, float | None]:
    """One decision on one question as score-row keys: ``<prefix>_answered`` (1/0: its mean is
    the coverage), ``<prefix>_right`` (1/0 when answered, else ``None``: its mean is the
    precision) and ``<prefix>_truth`` (+1/0/-1: its mean is the truthfulness). All ``None``
    when ``answered`` is None (the decision does not apply to the question)."""
    if answered is None:
        return {f"{prefix}_answered": None, f"{prefix}_right": None, f"{prefix}_truth": None}
    return {
        f"{prefix}_answered": float(answered),
        f"{prefix}_right": float(right) if answered else None,
        f"{prefix}_truth": float(crag(answered, right)),
    }


# ---------------------------------------------------------------------------------------------
# The bar, and the precision-coverage curve


@dataclass(frozen=True)
class Candidate:
    """What the assistant would show for one decision on one question, before any bar:
    ``present`` when it had a candidate at all, its ``confidence`` (``None`` when not given),
    and whether it is ``right`` (see the ``*_right`` functions)."""

    present: bool
    confidence: float | None
    right: bool


def _assumed(cands: Sequence[Candidate]) -> bool:
    present = [c for c in cands if c.present]
    return bool(present) and all(c.confidence is None for c in present)


def _confidence(c: Candidate, assumed: bool) -> float | None:
    if not c.present:
        return None
    return 1.0 if assumed and c.confidence is None else c.confidence


def decide(cands: Sequence[Candidate], bar: float) -> tuple[list[bool], bool]:
    """Which candidates the product shows at ``bar``: a present candidate whose confidence is
    not None and at least ``bar``. Returns (shown flags, assumed), where ``assumed`` says that
    no present candidate had a confidence (an old client, a fake): each then counts as 1.0, so
    every candidate is shown, and the report says so. When only some lack a confidence, those
    are withheld (silent)."""
    assumed = _assumed(cands)
    shown = []
    for c in cands:
        conf = _confidence(c, assumed)
        shown.append(conf is not None and conf >= bar)
    return shown, assumed


def precision_coverage(cands: Sequence[Candidate]) -> list[dict[str, float]]:
    """The precision-coverage curve of one decision: candidates sorted by confidence, highest
    first; one point per distinct confidence, the bar just at it (ties go in together: no bar
    can split them). Each point: ``threshold`` (the bar), ``coverage`` (share of all questions
    of ``cands`` answered at that bar, absent candidates included in the count), ``precision``
    (share right among them) and ``truthfulness`` (right minus wrong over all questions).
    Without a confidence on any candidate each counts as 1.0 (one point); a candidate without
    one when others have it is never shown, so it is left off the curve."""
    assumed = _assumed(cands)
    total = len(cands)
    scored = sorted(
        ((conf, c.right) for c in cands if (conf := _confidence(c, assumed)) is not None),
        key=lambda pair: -pair[0],
    )
    points: list[dict[str, float]] = []
    right = 0
    for i, (conf, ok) in enumerate(scored):
        right += ok
        n = i + 1
        if n < len(scored) and scored[n][0] == conf:
            continue  # a tie: the bar takes the whole group
        points.append(
            {
                "threshold": conf,
                "coverage": n / total,
                "precision": right / n,
                "truthfulness": (2 * right - n) / total,
            }
        )
    return points


def precision_at(points: Sequence[dict[str, float]], coverage: float) -> float | None:
    """Precision at a coverage: that of the highest bar whose coverage reaches ``coverage``
    (the first curve point at or past it); ``None`` when the curve never reaches it."""
    for p in points:
        if p["coverage"] >= coverage - 1e-9:
            return p["precision"]
    return None


def _figures(cands: Sequence[Candidate], shown: Sequence[bool]) -> dict[str, Any]:
    n = len(cands)
    answered = sum(shown)
    right = sum(1 for c, s in zip(cands, shown, strict=True) if s and c.right)
    return {
        "n": n,
        "coverage": answered / n if n else None,
        "precision": right / answered if answered else None,
        "truthfulness": (2 * right - answered) / n if n else None,
    }


def decision_report(cands: Sequence[Candidate], bar: float) -> dict[str, Any]:
    """One decision's block of report.json: the configured ``bar``, the figures ``at_bar`` (what
    the product shows) and for ``all_candidates`` (every present candidate shown, as with no
    bar), the ``curve``
    (:func:`precision_coverage`), ``precision_at`` the coverages 0.1 to 1.0 (for report.md), and
    ``confidence``: "given", or "assumed 1.0" when no candidate had one (see :func:`decide`)."""
    shown, assumed = decide(cands, bar)
    curve = precision_coverage(cands)
    return {
        "bar": bar,
        "confidence": "assumed 1.0" if assumed else "given",
        "at_bar": _figures(cands, shown),
        "all_candidates": _figures(cands, [c.present for c in cands]),
        "curve": curve,
        "precision_at": {f"{lv:.1f}": precision_at(curve, lv) for lv in COVERAGE_LEVELS},
    }
