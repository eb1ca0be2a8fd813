"""`qa eval` and `qa eval realtimeqa`: score the assistant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from qa.cli.common import (
    AsOfOpt,
    ConfigOpt,
    IndexOpt,
    JsonOpt,
    KOpt,
    LLMOpt,
    fail,
    filters_for,
    out,
    print_json,
    progress_bar,
    settings_for,
    shown,
)
from qa.core.types import QAError
from qa.text.words import printable

eval_app: typer.Typer = typer.Typer(help="Score the assistant on a gold set or on RealTime QA.")


def _finish_eval(report: dict[str, Any], out_dir: Path, as_json: bool) -> None:
    from qa.evaluation.runner import report_markdown

    if as_json:
        print_json(report | {"run": str(out_dir)})
    else:
        out.print(printable(report_markdown(report)), markup=False)
        out.print(f"written to {out_dir}")


@eval_app.callback(invoke_without_command=True)
def eval_gold(
    ctx: typer.Context,
    gold: Annotated[Path | None, typer.Option("--gold", help="gold file (eval/gold.jsonl)")] = None,
    llm: LLMOpt = None,
    k: KOpt = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="run folder to write (with --compare: the page or its folder)"),
    ] = None,
    compare: Annotated[
        tuple[Path, Path] | None, typer.Option("--compare", help="two run folders to compare")
    ] = None,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the gold set through the assistant and report answer, retrieval, citation and
    refusal metrics, and the coverage, precision and truthfulness of the short answer, the
    choice and the whole answer at the configured confidence bars (or compare two runs)."""
    if ctx.invoked_subcommand is not None:
        return
    from qa.answering.assistant import Assistant
    from qa.evaluation import runner as evaluate

    try:
        if compare:
            from qa.evaluation.report_html import run_name, write_compare_page

            a, b = (evaluate.load_report(p) for p in compare)
            names = (run_name(compare[0]), run_name(compare[1]))
            if out_dir is None:
                settings = settings_for(config)
                out_dir = evaluate.new_run_dir(settings.resolve(settings.paths.runs), "compare")
            page = write_compare_page(a, b, names, out_dir)
            if as_json:
                print_json({"a": a, "b": b, "page": str(page)})
            else:
                out.print(printable(evaluate.compare(a, b, names)), markup=False)
                out.print(f"written to {shown(str(page))}")
            return
        settings = settings_for(config, **{"paths.index": index, "llm.client": llm})
        filters = filters_for(as_of, None, None, None)
        items = evaluate.load_gold(gold or settings.root / "eval" / "gold.jsonl")
        assistant = Assistant(settings)
        target = out_dir or evaluate.new_run_dir(
            settings.resolve(settings.paths.runs), f"gold-{settings.llm.client}"
        )
        with progress_bar(as_json) as bar:
            task = bar.add_task("asking", total=len(items))
            report = evaluate.eval_gold(
                assistant,
                items,
                target,
                k=k,
                filters=filters,
                progress=lambda done, total: bar.update(task, completed=done),
            )
    except (QAError, FileExistsError) as exc:
        fail(str(exc))
    _finish_eval(report, target, as_json)


@eval_app.command("realtimeqa")
def eval_realtimeqa(
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="a RealTime QA folder (YYYYMMDD_qa.jsonl); repeat it to ask several together",
        ),
    ],
    weeks: Annotated[
        str | None,
        typer.Option(
            "--weeks",
            help="first N weeks (of each folder), or a comma list such as 20240105,20240112 "
            "(each week from the folder holding it)",
        ),
    ] = None,
    llm: LLMOpt = None,
    k: KOpt = None,
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of",
            help="question (each question on its own date, the benchmark's setting), "
            "none (no date limit) or YYYY-MM-DD",
        ),
    ] = "question",
    out_dir: Annotated[Path | None, typer.Option("--out", help="run folder to write")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index the benchmark's articles (one index per folder, reused on later runs) and report
    answer recall@k beside the oracle, multiple-choice accuracy and free-text EM/F1, and the
    coverage, precision and truthfulness of the short answer and the choice at the configured
    confidence bars."""
    if as_of not in ("question", "none"):
        filters_for(as_of, None, None, None)  # a clear error for a bad date
    from qa.answering.assistant import Assistant
    from qa.evaluation import runner as evaluate
    from qa.evaluation.realtime_qa_eval import choose_weeks

    settings = settings_for(config, **{"llm.client": llm})
    try:
        chosen = choose_weeks(data, weeks)
        assistant = Assistant(settings)
        target = out_dir or evaluate.new_run_dir(
            settings.resolve(settings.paths.runs), f"realtimeqa-{settings.llm.client}"
        )
        with progress_bar(as_json) as bar:
            indexing = bar.add_task("indexing articles", total=None)
            asking = bar.add_task("asking", total=None)
            report = evaluate.eval_realtimeqa(
                assistant,
                data,
                chosen,
                target,
                k=k,
                as_of=as_of,
                index_progress=lambda d, t: bar.update(indexing, completed=d, total=t),
                progress=lambda d, t: bar.update(asking, completed=d, total=t),
            )
    except (QAError, ValueError, FileExistsError) as exc:
        fail(str(exc))
    _finish_eval(report, target, as_json)
