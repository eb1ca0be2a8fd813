"""The eval runs: the project's gold set, and the RealTime QA benchmark
(``qa.evaluation.realtime_qa_eval``).

Both call the same ``Assistant`` that ``qa ask`` uses, with both confidence bars at 0 so every
candidate is recorded with its confidence, then apply the configured bars themselves
(``qa.evaluation.truthfulness.decide``): the figures are what the product would show. They write
``predictions.jsonl``, ``report.json``, ``report.md`` and ``report.html`` (``qa.evaluation.report``,
``qa.evaluation.report_html``) into a run folder, and record the settings that produced them.
Metric definitions live in ``qa.evaluation.metrics`` and ``qa.evaluation.truthfulness``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.answering.assistant import Assistant
from qa.answering.check import MARKER, OPTION
from qa.core.types import Answer, Filters, QAError
from qa.evaluation import metrics
from qa.evaluation import truthfulness as truth
from qa.evaluation.realtime_qa_eval import eval_realtimeqa, question_filters, realtimeqa_index_dir
from qa.evaluation.report import (
    compare,
    configured_bars,
    load_report,
    new_run_dir,
    report_markdown,
    run_settings,
    unbarred,
    write_report,
)

__all__ = [
    "GoldItem",
    "answer_text",
    "compare",
    "eval_gold",
    "eval_realtimeqa",
    "load_gold",
    "load_report",
    "new_run_dir",
    "question_filters",
    "realtimeqa_index_dir",
    "report_markdown",
    "score_gold",
    "write_report",
]

TYPES = ("single", "multi", "unanswerable")
Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    type: str
    kind: str = ""  # the question's kind (who_is, when_met, type_trap, ...), "" if none
    choices: tuple[str, ...] = ()  # a multiple-choice question's options
    choice: int | None = None  # the right option's number, from 1 as the text shows it


def _choices(obj: dict[str, Any]) -> tuple[tuple[str, ...], int | None]:
    """The ``choices`` and ``choice`` of a gold line, validated: both or neither, choices a
    list of 2 or more strings, choice an integer from 1 to their number."""
    if "choices" not in obj and "choice" not in obj:
        return (), None
    choices, choice = obj.get("choices"), obj.get("choice")
    if not isinstance(choices, list) or len(choices) < 2:
        raise ValueError("choices must be a list of 2 or more options")
    if not all(isinstance(c, str) and c.strip() for c in choices):
        raise ValueError("choices must be non-empty strings")
    if isinstance(choice, bool) or not isinstance(choice, int):
        raise ValueError("choice must be the right option's number (from 1)")
    if not 1 <= choice <= len(choices):
        raise ValueError(f"choice must be from 1 to {len(choices)}, got {choice}")
    return tuple(choices), choice


def _gold_item(obj: object) -> GoldItem:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    kind = obj.get("kind", "")
    if not isinstance(kind, str):
        raise ValueError("kind must be a string")
    choices, choice = _choices(obj)
    item = GoldItem(
        id=str(obj["id"]),
        question=str(obj["question"]),
        answers=tuple(str(a) for a in obj.get("answers", [])),
        evidence=tuple(str(e) for e in obj.get("evidence", [])),
        type=str(obj.get("type", "single")),
        kind=kind.strip(),
        choices=choices,
        choice=choice,
    )
    if item.type not in TYPES:
        raise ValueError(f"type must be one of {', '.join(TYPES)}")
    if not item.question.strip():
        raise ValueError("empty question")
    return item


def load_gold(path: Path) -> list[GoldItem]:
    """Read a gold file; every malformed line is reported with its number, all at once.

    Optional fields: ``kind`` (a label the summary reports apart), and for multiple choice
    ``choices`` (2 or more options) with ``choice``, the right option's number from 1."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise QAError(f"gold file not found: {path}") from None
    except UnicodeDecodeError:
        raise QAError(f"gold file {path} is not UTF-8") from None
    items: list[GoldItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = _gold_item(json.loads(line))
            if item.id in seen:
                raise ValueError(f"duplicate id {item.id!r}")
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON ({exc.msg})")
            continue
        except KeyError as exc:
            problems.append(f"line {number}: missing field {exc}")
            continue
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        seen.add(item.id)
        items.append(item)
    if problems:
        raise QAError(f"{path} has malformed lines:\n  " + "\n  ".join(problems))
    if not items:
        raise QAError(f"{path} holds no questions")
    return items


# What a reader does not see: citation markers and an "Option 2:" prefix, as qa.answering.check
# reads them.
_MARKERS = re.compile(rf"{MARKER.pattern}|^\s*{OPTION.pattern}\s*:\s*", re.IGNORECASE)


def answer_text(answer: Answer) -> str:
    """The answer as a reader sees it, without citation markers; empty for a refusal."""
    return _MARKERS.sub("", answer.text).strip() if answer.answered else ""


def candidate(item: GoldItem, answer: Answer) -> truth.Candidate:
    """The candidate a gold question is judged on before any bar: the chosen option for a
    multiple-choice item, the short answer otherwise."""
    if item.choices:
        assert item.choice is not None
        right = truth.choice_right(answer.choice, item.choice - 1)
        return truth.Candidate(answer.choice is not None, answer.confidence, right)
    short = answer.short_answer if answer.answered else ""
    right = truth.short_answer_right(short, item.answers)
    return truth.Candidate(bool(short.strip()), answer.confidence, right)


def score_gold(item: GoldItem, answer: Answer, *, shown: bool = True) -> dict[str, Any]:
    """Per-question scores (``None`` where a metric does not apply).

    ``shown`` is whether the candidate (the short answer, or for a multiple-choice item the
    chosen option) clears the bar; False judges the answer as the product shows it without it:
    no short answer, or "the articles do not decide" (the whole answer then silent)."""
    mc = bool(item.choices)
    chosen = answer.choice if shown else None
    answered = answer.answered and (chosen is not None if mc else True)
    text = answer_text(answer) if answered else ""
    short = answer.short_answer if answered and shown else ""
    seen = f"{short} {text}".strip()
    passages = [h.chunk.text for h in answer.passages]
    cited = [answer.passages[c.n - 1].chunk.text for c in answer.citations]
    answerable = item.type != "unanswerable"
    return {
        # Exact match and F1 judge the short answer; "contains" what a reader sees: the short
        # answer and the cited sentences.
        "exact_match": metrics.exact_match(short, item.answers) if answerable else None,
        "f1": metrics.token_f1(short, item.answers) if answerable else None,
        "contains": metrics.contains_answer(seen, item.answers) if answerable else None,
        "evidence_recall": metrics.evidence_complete(passages, item.evidence),
        "mrr": metrics.mrr(passages, item.evidence),
        # Citations are judged on answered questions only (ALCE).
        "citation_precision": (
            metrics.citation_precision(cited, item.evidence) if answered else None
        ),
        "citation_recall": metrics.citation_recall(cited, item.evidence) if answered else None,
        # Right, wrong or silent (qa.evaluation.truthfulness): the short answer on free-text
        # questions,
        # the chosen option on multiple choice, the whole answer on every question.
        **truth.judged(
            "short", None if mc else bool(short), truth.short_answer_right(short, item.answers)
        ),
        **truth.judged(
            "mc",
            chosen is not None if mc else None,
            truth.choice_right(chosen, None if item.choice is None else item.choice - 1),
        ),
        **truth.judged("answer", bool(seen), truth.answer_right(seen, item.answers)),
        "refused": not answered,
        "latency_ms": answer.timings_ms.get("total"),
        "prompt_tokens": answer.usage.prompt_tokens,
        "completion_tokens": answer.usage.completion_tokens,
    }


def eval_gold(
    assistant: Assistant,
    items: list[GoldItem],
    out: Path,
    *,
    k: int | None = None,
    filters: Filters | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Ask every gold question (with ``filters``: as-of date, date bounds, sources; a
    multiple-choice item with its choices) with the bars at 0, apply the configured bars,
    score, and write predictions and the report to ``out``."""
    k = k or assistant.settings.retrieval.k
    bars = configured_bars(assistant)
    asker = unbarred(assistant)
    out.mkdir(parents=True, exist_ok=False)
    answers: list[Answer] = []
    for done, item in enumerate(items, 1):
        answers.append(asker.ask(item.question, k=k, choices=item.choices, filters=filters))
        if progress:
            progress(done, len(items))
    cands = [candidate(i, a) for i, a in zip(items, answers, strict=True)]
    decisions: dict[str, Any] = {}
    shown = [True] * len(items)
    for name, is_mc, bar in (
        ("short", False, bars["min_short_confidence"]),
        ("choice", True, bars["min_choice_confidence"]),
    ):
        where = [n for n, i in enumerate(items) if bool(i.choices) == is_mc]
        if not where:
            continue
        flags, _ = truth.decide([cands[n] for n in where], bar)
        for n, flag in zip(where, flags, strict=True):
            shown[n] = flag
        decisions[name] = truth.decision_report([cands[n] for n in where], bar)
    rows: list[dict[str, Any]] = []
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for item, answer, cand, show in zip(items, answers, cands, shown, strict=True):
            scores = score_gold(item, answer, shown=show)
            label = {"id": item.id, "type": item.type} | ({"kind": item.kind} if item.kind else {})
            record = {
                **label,
                **answer.to_dict(),
                "candidate": {"right": cand.right, "shown": show},
                "scores": scores,
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            rows.append({**label, **scores})
    report = {
        "kind": "gold",
        "settings": run_settings(asker, k, bars)
        | {"filters": filters.to_dict() if filters else None},
        "summary": metrics.summarize(rows),
        "decisions": decisions,
    }
    write_report(out, report)
    return report
