"""`qa ingest` (folders, files, URLs and feeds), `qa watch` and `qa status`: building the index and
looking at it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qa.cli.common import (
    ConfigOpt,
    IndexOpt,
    JsonOpt,
    err,
    fail,
    out,
    print_json,
    progress_bar,
    settings_for,
    shown,
)
from qa.cli.tables import Column, print_table
from qa.core.config import Settings
from qa.core.types import QAError
from qa.text.words import printable_json

if TYPE_CHECKING:
    from qa.index import Index
    from qa.web.watch import Cycle


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
    from qa.embedding import create_embedder
    from qa.ingest import read_paths

    settings = settings_for(config, **{"paths.index": index})
    urls = [p for p in paths or [] if is_url(p)]
    if urls or feeds:
        return ingest_web(settings, urls, feeds, [p for p in paths or [] if p not in urls], as_json)
    roots = [Path(p).resolve() for p in paths] if paths else [settings.corpus_dir.resolve()]
    recovered(settings)  # before reading: a removal undone puts its file back
    progress = progress_bar(as_json)
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
        err.print(f"[dim]{note.describe()}:[/dim] {shown(note.path)}")

    progress = progress_bar(as_json)
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
                "replaced": {d.path: d.replaced for d in result.decoded if d.replaced},
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


def is_url(arg: str) -> bool:
    """Whether an argument of `qa ingest` is a URL: schemes are case-insensitive (RFC 3986), so
    HTTP://... is one, not a file path."""
    return arg.strip().lower().startswith(("http://", "https://"))


def recovered(settings: Settings) -> None:
    """Settle what a killed `qa articles remove` left (see :mod:`qa.index.removals`), one line
    each."""
    from qa.index.removals import recover

    try:
        notes = recover(settings)
    except OSError as exc:
        fail(f"cannot settle an interrupted article removal: {exc}")
    for note in notes:
        err.print(f"[yellow]warning:[/yellow] {shown(note)}")


def ingest_web(
    settings: Settings, urls: list[str], feeds: Path | None, others: list[str], as_json: bool
) -> None:
    """`qa ingest URL... [--feeds FILE]`: fetch, store in corpus/web/, index the corpus."""
    from qa.embedding import create_embedder
    from qa.web.feeds import FAILED, STORED, ingest_urls, read_feed_list

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
    from qa.embedding import create_embedder
    from qa.web.feeds import DUPLICATE, NOT_MODIFIED, read_feed_list
    from qa.web.watch import watch as run_watch

    settings = settings_for(config, **{"paths.index": index})

    def report(cycle: Cycle) -> None:
        if as_json:
            sys.stdout.write(
                printable_json(
                    json.dumps(
                        {
                            "cycle": cycle.number,
                            "outcomes": [o.to_dict() for o in cycle.outcomes],
                            "sync": cycle.sync.summary() if cycle.sync else None,
                            "error": cycle.error or None,
                        }
                    )
                )
                + "\n"
            )
            sys.stdout.flush()
            return
        quiet = (DUPLICATE, NOT_MODIFIED)  # every poll meets these; counted, not listed
        for o in cycle.outcomes:
            if o.status not in quiet:
                out.print(f"{o.status} {shown(o.url)}: {shown(o.detail)}")
        out.print(f"[dim]cycle {cycle.number}: {shown(cycle_line(cycle))}[/dim]")
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


def cycle_line(cycle: Cycle) -> str:
    """One cycle of `qa watch` in words: articles stored, articles met before, feeds with
    nothing new (304), failures, and what happened to the index."""
    from qa.web.feeds import DUPLICATE, FAILED, NOT_MODIFIED, STORED

    def count(status: str, one: str, many: str) -> str:
        n = sum(o.status == status for o in cycle.outcomes)
        return f"{n} {one if n == 1 else many}"

    sync = cycle.sync.summary() if cycle.sync else "index unchanged"
    return (
        f"{count(STORED, 'article stored', 'articles stored')}, "
        f"{count(DUPLICATE, 'article already stored', 'articles already stored')}, "
        f"{count(NOT_MODIFIED, 'feed unchanged', 'feeds unchanged')}, "
        f"{count(FAILED, 'failure', 'failures')}; {sync}"
    )


def status(
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="verify every file of the index: checksums, parts, chunk store"
        ),
    ] = False,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Articles, chunks, model, settings and size on disk of the index."""
    from qa.index import open_index

    settings = settings_for(config, **{"paths.index": index})
    try:
        opened = open_index(settings)
        try:
            info = opened.status()
            if check:
                info["checked"] = check_index(opened)
        finally:
            opened.close()
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(info)
        return
    build = info["build"]
    rows = [
        ("index", f"{info['index']} ({info['generation']})"),
        ("articles", f"{info['articles']:,}"),
        ("chunks", f"{info['chunks']:,}"),
        (
            "model",
            f"{build['embedding_model']} ({build['dim']} dims, "
            f"{build.get('precision', 'fp32')})",
        ),
        (
            "chunking",
            f"{build['max_tokens']} tokens, {build['overlap_tokens']} overlap, "
            f"title embedded: {'yes' if build['embed_title'] else 'no'}",
        ),
        ("vectors", vectors_line(info["vector_index"])),
        ("on disk", f"{info['bytes_on_disk'] / 1e6:.1f} MB"),
        ("built", str(info["created"])),
        *(("checked", line) for line in info.get("checked", [])),
    ]
    print_table([Column("", style="bold", no_wrap=True), Column("")], rows, headers=False)


def vectors_line(vector_index: dict[str, Any]) -> str:
    """The vector index of `qa status` in words: "flat, 41 vectors, inner product", with the
    parameters of an approximate one (``{"M": 32}`` reads "M 32")."""
    described = dict(vector_index)
    parts = [str(described.pop("kind", described.pop("type", "unknown")))]
    if "n" in described:
        parts.append(f"{described.pop('n'):,} vectors")
    described.pop("dim", None)  # the model line says it
    if "metric" in described:
        parts.append(str(described.pop("metric")).replace("_", " ").lower())
    params = described.pop("params", None) or {}
    parts += [f"{key} {value}" for key, value in {**params, **described}.items()]
    return ", ".join(parts)


def check_index(index: Index) -> list[str]:
    """`qa status --check`: what was verified, one line each (a fault raises QAError)."""
    from qa.index import LocalIndex
    from qa.index.verify import check_all

    if not isinstance(index, LocalIndex):
        raise QAError("`qa status --check` verifies the files of a local index (index.backend)")
    return check_all(index)
