"""The eval runs: the project's gold set, and the RealTime QA benchmark.

Both call the same ``Assistant`` that ``qa ask`` uses, write ``predictions.jsonl``,
``report.json``, ``report.md`` and ``report.html`` (bar charts, ``qa.report_html``) into a run
folder, and record the settings that produced them.
Metric definitions live in ``qa.metrics``.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qa import metrics
from qa.answer import MARKER, OPTION
from qa.assistant import Assistant
from qa.index import index_location
from qa.report_html import render_report
from qa.types import Answer, Filters, QAError

TYPES = ("single", "multi", "unanswerable")
Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    type: str


def load_gold(path: Path) -> list[GoldItem]:
    """Read a gold file; every malformed line is reported with its number, all at once."""
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
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            item = GoldItem(
                id=str(obj["id"]),
                question=str(obj["question"]),
                answers=tuple(str(a) for a in obj.get("answers", [])),
                evidence=tuple(str(e) for e in obj.get("evidence", [])),
                type=str(obj.get("type", "single")),
            )
            if item.type not in TYPES:
                raise ValueError(f"type must be one of {', '.join(TYPES)}")
            if item.id in seen:
                raise ValueError(f"duplicate id {item.id!r}")
            if not item.question.strip():
                raise ValueError("empty question")
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


# What a reader does not see: citation markers and an "Option 2:" prefix, as qa.answer reads them.
_MARKERS = re.compile(rf"{MARKER.pattern}|^\s*{OPTION.pattern}\s*:\s*", re.IGNORECASE)


def answer_text(answer: Answer) -> str:
    """The answer as a reader sees it, without citation markers; empty for a refusal."""
    return _MARKERS.sub("", answer.text).strip() if answer.answered else ""


def score_gold(item: GoldItem, answer: Answer) -> dict[str, Any]:
    """Per-question scores (``None`` where a metric does not apply)."""
    text = answer_text(answer)
    short = answer.short_answer if answer.answered else ""
    passages = [h.chunk.text for h in answer.passages]
    cited = [answer.passages[c.n - 1].chunk.text for c in answer.citations]
    answerable = item.type != "unanswerable"
    return {
        # Exact match and F1 judge the short answer; "contains" what a reader sees: the short
        # answer and the cited sentences.
        "exact_match": metrics.exact_match(short, item.answers) if answerable else None,
        "f1": metrics.token_f1(short, item.answers) if answerable else None,
        "contains": (
            metrics.contains_answer(f"{short} {text}", item.answers) if answerable else None
        ),
        "evidence_recall": metrics.evidence_complete(passages, item.evidence),
        "mrr": metrics.mrr(passages, item.evidence),
        # Citations are judged on answered questions only (ALCE).
        "citation_precision": (
            metrics.citation_precision(cited, item.evidence) if answer.answered else None
        ),
        "citation_recall": (
            metrics.citation_recall(cited, item.evidence) if answer.answered else None
        ),
        "refused": not answer.answered,
        "latency_ms": answer.timings_ms.get("total"),
        "prompt_tokens": answer.usage.prompt_tokens,
        "completion_tokens": answer.usage.completion_tokens,
    }


def new_run_dir(runs: Path, label: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = runs / f"{stamp}-{label}"
    n = 1
    while path.exists():
        n += 1
        path = runs / f"{stamp}-{label}-{n}"
    return path


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except OSError:
        return ""


def run_settings(assistant: Assistant, k: int) -> dict[str, Any]:
    s = assistant.settings
    return {
        "client": s.llm.client,
        "model": assistant.llm.model,
        "k": k,
        "retrieval": asdict(s.retrieval) | {"k": k},
        "index": asdict(assistant.index.build) | {"path": index_location(s)},
        "commit": _commit(),
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
    """Ask every gold question (with ``filters``: as-of date, date bounds, sources), score
    it, and write predictions and the report to ``out``."""
    k = k or assistant.settings.retrieval.k
    out.mkdir(parents=True, exist_ok=False)
    rows: list[dict[str, Any]] = []
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for done, item in enumerate(items, 1):
            answer = assistant.ask(item.question, k=k, filters=filters)
            scores = score_gold(item, answer)
            record = {"id": item.id, "type": item.type, **answer.to_dict(), "scores": scores}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            rows.append({"id": item.id, "type": item.type, **scores})
            if progress:
                progress(done, len(items))
    report = {
        "kind": "gold",
        "settings": run_settings(assistant, k)
        | {"filters": filters.to_dict() if filters else None},
        "summary": metrics.summarize(rows),
    }
    write_report(out, report)
    return report


# ---------------------------------------------------------------- RealTime QA


def realtimeqa_index_dir(base: Path, data: Path, weeks: tuple[str, ...], settings: Any) -> Path:
    """One index per (data folder, weeks, embedding and chunking settings), reused when the
    same run comes again; other settings get an index of their own instead of a rebuild. Where
    the vectors are computed is not part of the key: torch and ONNX, in this process or through
    an embeddings service, give the same vectors of the same model."""
    where = ("runtime", "backend", "openai")
    embedding = {k: v for k, v in asdict(settings.embedding).items() if k not in where}
    build = [embedding, asdict(settings.chunking)]
    raw = json.dumps([str(data.resolve()), list(weeks), build], sort_keys=True, default=str)
    return base / f"realtimeqa-{data.name}-{hashlib.sha1(raw.encode()).hexdigest()[:10]}"


def question_filters(question_date: str, as_of: str) -> Filters | None:
    """The filters a benchmark question is asked with (see ``eval_realtimeqa``)."""
    if as_of == "none":
        return None
    from qa.filters import build_filters

    day = question_date if as_of == "question" else as_of
    if not day:
        return None  # a question without a date: no limit rather than today's
    return build_filters(as_of=day)


def eval_realtimeqa(
    assistant: Assistant,
    data: Path,
    weeks: list[str] | None,
    out: Path,
    *,
    k: int | None = None,
    as_of: str = "question",
    index_progress: Progress | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Index the benchmark's articles into their own index, then ask every question three ways:
    retrieval only (answer recall@k), with its choices, and free text.

    ``as_of`` is "question" (the benchmark's setting: each question is asked on its
    ``question_date``, and later news does not exist yet), "none" (no date limit: every
    article counts, as before the news-aware retrieval) or a YYYY-MM-DD day for all."""
    from qa import realtime_qa
    from qa.index import separate_index, sync

    try:
        rt = realtime_qa.read(data, weeks)
    except (ValueError, OSError) as exc:
        raise QAError(str(exc)) from None
    k = k or assistant.settings.retrieval.k
    base = assistant.settings.index_dir.parent
    index_dir = realtimeqa_index_dir(base, data, rt.weeks, assistant.settings)
    settings = separate_index(assistant.settings, index_dir)
    sync_report = sync(
        index_dir, rt.documents, assistant.embedder, settings, progress=index_progress
    )
    bench = Assistant(settings, embedder=assistant.embedder, llm=assistant.llm)

    # Oracles: the gold text occurs somewhere in the indexed articles, or in one of the
    # articles the benchmark's search returned for this question. The first counts chance
    # matches ("40" or "Ecuador" in unrelated stories of the pooled quarter); the second is
    # the benchmark's own setting, so it is the ceiling recall is compared with.
    corpus = {d.id: f" {metrics.rtqa_normalize(d.title + ' ' + d.text)} " for d in rt.documents}
    out.mkdir(parents=True, exist_ok=False)
    rows: list[dict[str, Any]] = []
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for done, q in enumerate(rt.questions, 1):
            gold = metrics.rtqa_normalize(q.gold)
            filters = question_filters(q.date, as_of)
            retrieval = bench.retrieve(q.question, k, filters=filters)
            recall = any(metrics.answer_in_text(q.gold, h.chunk.text) for h in retrieval.hits)
            oracle = bool(gold) and any(f" {gold} " in text for text in corpus.values())
            own = rt.results.get(q.id, ())
            search_oracle = bool(gold) and any(f" {gold} " in corpus[d] for d in own)
            choice = bench.ask(q.question, k=k, choices=q.choices, filters=filters)
            free = None if q.skip_generation else bench.ask(q.question, k=k, filters=filters)
            free_text = free.short_answer if free and free.answered else ""
            row = {
                "id": q.id,
                "type": q.week,
                "answer_recall": float(recall),
                "oracle": float(oracle),
                "search_oracle": float(search_oracle),
                "mc_accuracy": float(choice.choice == q.answer),
                "mc_abstained": float(choice.choice is None),
                "em": metrics.rtqa_exact_match(free_text, [q.gold]) if free else None,
                "f1": metrics.rtqa_f1(free_text, [q.gold]) if free else None,
                "latency_ms": (
                    choice.timings_ms.get("total", 0.0)
                    + (free.timings_ms.get("total", 0.0) if free else 0.0)
                ),
                "prompt_tokens": choice.usage.prompt_tokens
                + (free.usage.prompt_tokens if free else 0),
                "completion_tokens": choice.usage.completion_tokens
                + (free.usage.completion_tokens if free else 0),
            }
            record = {
                "id": q.id,
                "question": q.question,
                "choices": list(q.choices),
                "gold": q.gold,
                "gold_index": q.answer,
                "retrieved": [h.chunk.id for h in retrieval.hits],
                "multiple_choice": choice.to_dict(),
                "free_text": free.to_dict() if free else None,
                "scores": {k2: v for k2, v in row.items() if k2 not in ("id", "type")},
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            rows.append(row)
            if progress:
                progress(done, len(rt.questions))
    report = {
        "kind": "realtimeqa",
        "settings": run_settings(bench, k)
        | {
            "data": str(data.resolve()),
            "weeks": list(rt.weeks),
            "articles": len(rt.documents),
            "chunks": sync_report.chunks_total,
            "index_seconds": round(sync_report.seconds, 1),
            "skipped_empty": rt.skipped_empty,
            "as_of": as_of,
        },
        "summary": metrics.summarize(rows),
    }
    write_report(out, report)
    return report


# ---------------------------------------------------------------- reports


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def report_markdown(report: dict[str, Any]) -> str:
    """A readable report: settings, then one row per metric, overall and per type."""
    summary = report["summary"]
    by_type: dict[str, dict[str, Any]] = summary["by_type"]
    metrics_names = [m for m in summary["overall"] if m not in ("refused",)]
    lines = [f"# qa eval: {report['kind']}", ""]
    for key, value in report["settings"].items():
        lines.append(f"- **{key}**: `{json.dumps(value) if isinstance(value, dict) else value}`")
    header = ["metric", "overall", *[f"{t} (n={by_type[t]['n']})" for t in by_type]]
    lines += [
        "",
        f"Questions: {summary['n']}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for m in metrics_names:
        cells = [m, _fmt(summary["overall"][m]), *[_fmt(by_type[t].get(m)) for t in by_type]]
        lines.append("| " + " | ".join(cells) + " |")
    refusal = summary["refusal"]
    latency = summary["latency_ms"]
    tokens = summary["tokens"]
    lines += [
        "",
        f"- Refused on unanswerable (higher is better): {_fmt(refusal['unanswerable_refused'])}",
        f"- Wrongly refused on answerable (lower is better): {_fmt(refusal['answerable_refused'])}",
        f"- Latency per question: p50 {_fmt(latency['p50'])} ms, p95 {_fmt(latency['p95'])} ms",
        f"- Tokens: prompt {tokens['prompt']}, completion {tokens['completion']}",
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / "report.md").write_text(report_markdown(report), encoding="utf-8")
    (out / "report.html").write_text(render_report(report, out.name), encoding="utf-8")


def load_report(run: Path) -> dict[str, Any]:
    path = run / "report.json" if run.is_dir() else run
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QAError(f"no report at {path}") from None
    except json.JSONDecodeError as exc:
        raise QAError(f"{path} is not valid JSON: {exc.msg}") from None
    if "summary" not in data:
        raise QAError(f"{path} is not a qa eval report")
    return data


def compare(a: dict[str, Any], b: dict[str, Any], names: Iterable[str] = ("A", "B")) -> str:
    """Two reports side by side as a Markdown table, with the difference B - A."""
    na, nb = list(names)
    lines = [f"| | {na} | {nb} | {nb} - {na} |", "|---|---|---|---|"]
    for key in ("client", "model", "k", "commit"):
        lines.append(f"| {key} | {a['settings'].get(key)} | {b['settings'].get(key)} | |")

    def row(label: str, x: Any, y: Any) -> None:
        diff = f"{y - x:+.3f}" if isinstance(x, float | int) and isinstance(y, float | int) else ""
        lines.append(f"| {label} | {_fmt(x)} | {_fmt(y)} | {diff} |")

    sa, sb = a["summary"], b["summary"]
    for m in dict.fromkeys([*sa["overall"], *sb["overall"]]):
        row(m, sa["overall"].get(m), sb["overall"].get(m))
    for m in ("unanswerable_refused", "answerable_refused"):
        row(m, sa["refusal"].get(m), sb["refusal"].get(m))
    row("latency p50 ms", sa["latency_ms"]["p50"], sb["latency_ms"]["p50"])
    row("latency p95 ms", sa["latency_ms"]["p95"], sb["latency_ms"]["p95"])
    return "\n".join(lines)
