"""What the eval runs share: their run folders and settings, the confidence bars they apply,
and their reports (``report.json``, ``report.md``, ``report.html``), loaded back and compared.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from qa.answering.assistant import Assistant
from qa.core.types import QAError
from qa.evaluation.report_html import render_report
from qa.evaluation.truthfulness import COVERAGE_LEVELS
from qa.index import index_location

# The decisions a report has a block for, with their names in report.md.
DECISIONS = {"short": "short answer", "choice": "multiple choice"}


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


def configured_bars(assistant: Assistant) -> dict[str, float]:
    """The bars the product shows a short answer and a choice at (``[answer]`` settings)."""
    a = assistant.settings.answer
    return {
        "min_short_confidence": float(a.min_short_confidence),
        "min_choice_confidence": float(a.min_choice_confidence),
    }


def unbarred(assistant: Assistant) -> Assistant:
    """The same assistant (embedder and model client shared) with both bars at 0, so every
    candidate is kept with its confidence; the harness applies the configured bars itself."""
    s = assistant.settings
    if s.answer.min_short_confidence == 0 and s.answer.min_choice_confidence == 0:
        return assistant
    answer = replace(s.answer, min_short_confidence=0.0, min_choice_confidence=0.0)
    return Assistant(replace(s, answer=answer), embedder=assistant.embedder, llm=assistant.llm)


def run_settings(assistant: Assistant, k: int, bars: dict[str, float]) -> dict[str, Any]:
    s = assistant.settings
    return {
        "client": s.llm.client,
        "model": assistant.llm.model,
        "k": k,
        "retrieval": asdict(s.retrieval) | {"k": k},
        "index": asdict(assistant.index.build) | {"path": index_location(s)},
        "bars": bars,
        "commit": _commit(),
    }


# ---------------------------------------------------------------- reports


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def _groups_table(summary: dict[str, Any], key: str, names: list[str]) -> list[str]:
    groups: dict[str, dict[str, Any]] = summary[key]
    header = ["metric", "overall", *[f"{g} (n={groups[g]['n']})" for g in groups]]
    rows = [
        [m, _fmt(summary["overall"].get(m)), *[_fmt(groups[g].get(m)) for g in groups]]
        for m in names
    ]
    if key == "by_kind":
        rows.append(["refused", "", *[_fmt(groups[g].get("refused")) for g in groups]])
    return _table(header, rows)


def _decisions_lines(report: dict[str, Any]) -> list[str]:
    decisions: dict[str, dict[str, Any]] = report.get("decisions") or {}
    if not decisions:
        return []
    lines = [
        "",
        "## Right, wrong or silent",
        "",
        "Right +1, silent 0, wrong −1 (CRAG). *At the bar*: what the product shows at the "
        "configured confidence bar; *all candidates*: every candidate shown.",
        "",
    ]
    rows = []
    for name, block in decisions.items():
        label = DECISIONS.get(name, name)
        for which in ("at_bar", "all_candidates"):
            f = block[which]
            where = f"bar {block['bar']:g}" if which == "at_bar" else "all candidates"
            figures = [_fmt(f[m]) for m in ("coverage", "precision", "truthfulness")]
            rows.append([label, where, str(f["n"]), *figures])
    lines += _table(["decision", "shown", "n", "coverage", "precision", "truthfulness"], rows)
    assumed = [DECISIONS.get(n, n) for n, b in decisions.items() if b["confidence"] != "given"]
    if assumed:
        lines += [
            "",
            f"No confidence was given ({', '.join(assumed)}): every candidate counted as "
            "confidence 1.0, so the bar changes nothing there.",
        ]
    levels = [f"{lv:.1f}" for lv in COVERAGE_LEVELS]
    lines += ["", "Precision at coverage (the highest bar that answers at least that share):", ""]
    lines += _table(
        ["decision", *levels],
        [
            [DECISIONS.get(n, n), *[_fmt(b["precision_at"].get(lv)) for lv in levels]]
            for n, b in decisions.items()
        ],
    )
    return lines


def report_markdown(report: dict[str, Any]) -> str:
    """A readable report: settings, one row per metric (overall and per type, then per gold
    kind), the three decisions' coverage, precision and truthfulness, and the curve's table."""
    summary = report["summary"]
    names = [m for m in summary["overall"] if m != "refused"]
    lines = [f"# qa eval: {report['kind']}", ""]
    for key, value in report["settings"].items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        lines.append(f"- **{key}**: `{shown}`")
    lines += ["", f"Questions: {summary['n']}", ""]
    lines += _groups_table(summary, "by_type", names)
    if summary.get("by_kind"):
        lines += ["", "Per question kind:", ""]
        lines += _groups_table(summary, "by_kind", names)
    refusal = summary["refusal"]
    latency = summary["latency_ms"]
    tokens = summary["tokens"]
    lines += [
        "",
        f"- Refused on unanswerable (higher is better): {_fmt(refusal['unanswerable_refused'])}",
        f"- Wrongly refused on answerable (lower is better): {_fmt(refusal['answerable_refused'])}",
        f"- Latency per question: p50 {_fmt(latency['p50'])} ms, p95 {_fmt(latency['p95'])} ms",
        f"- Tokens: prompt {tokens['prompt']}, completion {tokens['completion']}",
    ]
    lines += _decisions_lines(report)
    return "\n".join(lines) + "\n"


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
