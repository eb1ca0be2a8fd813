"""Ablation of the extractive client's answers: short answers, evidence multiple choice and the
refusal rule, on the gold set and on RealTime QA (tuning weeks 1-9, check weeks 10-13, all).

    .venv/bin/python bench/ablation_answers.py [--data ../shared/benchmarks/realtimeqa/2024q1]
        [--skip-gold] [--skip-rtqa] [--json]

Rows (each adds to the one before; "before" is the code before issue #8, measured with
`qa eval` at that commit). RealTime QA questions are asked as of their question date, as
`qa eval realtimeqa` does:

- *short answers, evidence MC, no refusal rule*: the client writes its "Answer:" line and picks
  options by evidence, but refuses only when no sentence passes the relevance threshold;
  multiple choice retrieves once for the question with all options joined (the old query).
- *+ per-option retrieval*: multiple choice retrieves for the question with each option.
- *+ refusal rule*: the shipped client (``qa ask``, ``qa eval``).

On RealTime QA the free-text variants share one retrieval per question, and multiple choice is
unaffected by the refusal rule (a question with options is never refused by it). The RealTime
QA index is the one `qa eval realtimeqa` builds; it is only read here.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answering.assistant import Assistant
from qa.answering.check import build_prompt, check_answer
from qa.core.config import load_settings
from qa.core.types import Filters
from qa.evaluation import (
    metrics,
    realtime_qa,
)
from qa.evaluation import runner as evaluate
from qa.index import live_generation
from qa.llm.extractive import ExtractiveLLM

TUNING_WEEKS = 9  # weeks 1-9 tune, 10-13 check


def gold_rows(settings: Any, embedder: Any) -> dict[str, dict[str, Any]]:
    """The gold set with the refusal rule off and on."""
    items = evaluate.load_gold(ROOT / "eval" / "gold.jsonl")
    out: dict[str, dict[str, Any]] = {}
    for name, rule in (("no refusal rule", False), ("+ refusal rule", True)):
        llm = ExtractiveLLM(embedder, refuse_unsupported=rule)
        assistant = Assistant(settings, embedder=embedder, llm=llm)
        with tempfile.TemporaryDirectory() as tmp:
            report = evaluate.eval_gold(assistant, items, Path(tmp) / "run")
            predictions = [
                json.loads(line)
                for line in (Path(tmp) / "run" / "predictions.jsonl").read_text().splitlines()
            ]
        summary = report["summary"]
        refused = {p["id"]: not p["answered"] for p in predictions if p["type"] == "unanswerable"}
        first = [v for k, v in refused.items() if k <= "g085"]
        added = [v for k, v in refused.items() if k > "g085"]
        out[name] = {
            "contains": summary["overall"]["contains"],
            "exact_match": summary["overall"]["exact_match"],
            "f1": summary["overall"]["f1"],
            "citation_precision": summary["overall"]["citation_precision"],
            "unanswerable_refused": summary["refusal"]["unanswerable_refused"],
            "refused_g071_g085": sum(first) / len(first) if first else None,
            "refused_g086_g103": sum(added) / len(added) if added else None,
            "answerable_refused": summary["refusal"]["answerable_refused"],
        }
    return out


def _choice(
    assistant: Assistant,
    question: str,
    choices: tuple[str, ...],
    joined: bool,
    filters: Filters | None,
) -> int | None:
    if not joined:
        return assistant.ask(question, choices=choices, filters=filters).choice
    retrieval = assistant.retrieve(" ".join([question, *choices]), filters=filters)
    llm = assistant.llm
    prompt = build_prompt(
        question,
        retrieval.hits,
        choices=choices,
        context_window=llm.context_window,
        max_answer_tokens=300,
        count_tokens=len,
    )
    checked = check_answer(llm.generate(prompt).text, prompt.passages, assistant.document, choices)
    return checked.choice


def rtqa_rows(
    settings: Any, embedder: Any, data: Path, weeks: str = "", joined: bool = True
) -> dict[str, dict[str, Any]]:
    rt = realtime_qa.read(data, None)  # the whole quarter's index, whatever weeks are asked
    first, _, last = weeks.partition("-")
    asked = rt.weeks[int(first) - 1 : int(last or first)] if first else rt.weeks
    index_dir = evaluate.realtimeqa_index_dir(settings.index_dir.parent, data, rt.weeks, settings)
    settings = replace(settings, paths=replace(settings.paths, index=index_dir))
    if live_generation(index_dir) is None:
        raise SystemExit(f"no RealTime QA index at {index_dir}: run `qa eval realtimeqa` first")
    with_rule = ExtractiveLLM(embedder)
    without = ExtractiveLLM(embedder, refuse_unsupported=False)
    bench = Assistant(settings, embedder=embedder, llm=with_rule)
    tuning = set(rt.weeks[:TUNING_WEEKS])
    rows: list[dict[str, Any]] = []
    questions = [q for q in rt.questions if q.week in asked]
    for q in questions:
        row: dict[str, Any] = {"week": q.week, "tuning": q.week in tuning}
        # The benchmark's setting: asked on the question's date, later news does not exist.
        filters = evaluate.question_filters(q.date, "question")
        for name, join in (("mc_joined", True), ("mc_per_option", False)):
            if join and not joined:
                continue
            chosen = _choice(bench, q.question, q.choices, join, filters)
            row[name] = float(chosen == q.answer)
        if not q.skip_generation:
            retrieval = bench.retrieve(q.question, filters=filters)
            prompt = build_prompt(
                q.question,
                retrieval.hits,
                context_window=with_rule.context_window,
                max_answer_tokens=300,
                count_tokens=len,
            )
            for name, llm in (("no_rule", without), ("rule", with_rule)):
                checked = check_answer(llm.generate(prompt).text, prompt.passages, bench.document)
                short = checked.short_answer if checked.answered else ""
                row[f"f1_{name}"] = metrics.rtqa_f1(short, [q.gold])
                row[f"em_{name}"] = metrics.rtqa_exact_match(short, [q.gold])
        rows.append(row)
        print(f"\r{len(rows)}/{len(questions)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    return _grouped(rows)


def search_result_rows(data: Path, weeks: str = "") -> dict[str, dict[str, Any]]:
    """A quick stand-in that needs no index: each question's passages are the first 180 words
    of the first 5 articles the benchmark's own search returned for it, read by the client
    without an embedder (lexical scores only). Not the benchmark's setting; for comparing
    variants of the client when the quarter's index is not at hand."""
    from qa.core.types import Chunk, DocInfo, Hit, Prompt

    rt = realtime_qa.read(data, None)
    first, _, last = weeks.partition("-")
    asked = rt.weeks[int(first) - 1 : int(last or first)] if first else rt.weeks
    documents = {d.url: d for d in rt.documents}
    urls: dict[str, list[str]] = {}
    for week in asked:
        for line in (data / f"{week}_gcs.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            urls[record["question_id"]] = [r.get("url", "") for r in record["search_result"]]
    tuning = set(rt.weeks[:TUNING_WEEKS])
    with_rule, without = ExtractiveLLM(), ExtractiveLLM(refuse_unsupported=False)
    rows: list[dict[str, Any]] = []
    for q in (q for q in rt.questions if q.week in asked):
        found = [documents[u] for u in urls.get(q.id, []) if u in documents][:5]
        if not found:
            continue
        hits = []
        for rank, d in enumerate(found, 1):
            text = " ".join(d.clean_text.split()[:180])
            chunk = Chunk(f"{d.id}:0", d.id, 0, text, 0, len(text))
            hits.append(Hit(chunk, DocInfo(d.id, d.title, d.published), 1.0 / rank, rank))

        def ask(
            llm: ExtractiveLLM, question: str, passages: tuple[Hit, ...], choices: tuple[str, ...]
        ) -> Any:
            prompt = Prompt(question, passages, (), choices)
            return check_answer(llm.generate(prompt).text, passages, lambda _: None, choices)

        row: dict[str, Any] = {"week": q.week, "tuning": q.week in tuning}
        passages = tuple(hits)
        chosen = ask(with_rule, q.question, passages, q.choices).choice
        row["mc_per_option"] = float(chosen == q.answer)
        if not q.skip_generation:
            for name, llm in (("no_rule", without), ("rule", with_rule)):
                checked = ask(llm, q.question, passages, ())
                short = checked.short_answer if checked.answered else ""
                row[f"f1_{name}"] = metrics.rtqa_f1(short, [q.gold])
                row[f"em_{name}"] = metrics.rtqa_exact_match(short, [q.gold])
        rows.append(row)
    return _grouped(rows)


def _grouped(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    def mean(subset: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in subset if key in r]
        return sum(values) / len(values) if values else None

    groups = {
        "weeks 1-9": [r for r in rows if r["tuning"]],
        "weeks 10-13": [r for r in rows if not r["tuning"]],
        "quarter": rows,
    }
    out: dict[str, dict[str, Any]] = {}
    for group, subset in groups.items():
        out[group] = {
            "n": len(subset),
            "mc (joined query)": mean(subset, "mc_joined"),
            "mc (per-option retrieval)": mean(subset, "mc_per_option"),
            "EM / F1 no refusal rule": (mean(subset, "em_no_rule"), mean(subset, "f1_no_rule")),
            "EM / F1 + refusal rule": (mean(subset, "em_rule"), mean(subset, "f1_rule")),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared/benchmarks/realtimeqa/2024q1"
    )
    parser.add_argument("--skip-gold", action="store_true")
    parser.add_argument("--skip-rtqa", action="store_true")
    parser.add_argument("--weeks", default="", help="RealTime QA weeks to ask, e.g. 10-13")
    parser.add_argument("--no-joined", action="store_true", help="skip the joined-query MC row")
    parser.add_argument(
        "--search-results",
        action="store_true",
        help="RealTime QA without the index: each question's own search results as passages",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = load_settings(ROOT / "config.toml")
    embedder = Assistant(settings).embedder
    result: dict[str, Any] = {}
    if not args.skip_gold:
        result["gold"] = gold_rows(settings, embedder)
    if not args.skip_rtqa and args.search_results:
        result["realtimeqa (search results, lexical)"] = search_result_rows(args.data, args.weeks)
    elif not args.skip_rtqa:
        result["realtimeqa"] = rtqa_rows(
            settings, embedder, args.data, args.weeks, joined=not args.no_joined
        )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for part, table in result.items():
        print(f"\n## {part}")
        for name, figures in table.items():
            cells = ", ".join(f"{k} {_fmt(v)}" for k, v in figures.items())
            print(f"- {name}: {cells}")


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        return " / ".join(_fmt(v) for v in value)
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
