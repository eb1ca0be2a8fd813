"""`qa articles list|show|remove`: the articles the index holds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.text import Text

from qa.cli.common import (
    ConfigOpt,
    IndexOpt,
    JsonOpt,
    SinceOpt,
    SourceOpt,
    fail,
    filters_for,
    out,
    print_json,
    settings_for,
    shown,
)
from qa.cli.tables import Column, print_table
from qa.core.types import QAError

articles_app: typer.Typer = typer.Typer(help="List, show and remove the articles the index holds.")


@articles_app.command("list")
def articles_list(
    since: SinceOpt = None,
    sources: SourceOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Indexed articles, newest first."""
    from qa.index.articles import list_articles

    settings = settings_for(config, **{"paths.index": index})
    first = filters_for(None, since, None, None).since
    try:
        found = list_articles(settings, since=first, sources=tuple(sources or ()))
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json({"articles": [a.to_dict() for a in found], "count": len(found)})
        return
    print_table(
        [Column("published", no_wrap=True), Column("article")],
        [(a.published or "undated", a.source or "-", a.title, a.id) for a in found],
        cells=article_cells,
    )
    if out.is_terminal:  # piped, every line is an article (wc -l counts them)
        out.print(f"[dim]{len(found)} articles[/dim]")


def article_cells(row: Sequence[str]) -> list[Text]:
    """On a terminal: the date, then the title over its outlet and id (dim), so the title
    has the width a long id or outlet would take from it in columns of their own."""
    published, source, title, doc_id = row
    under = f"{source}  {doc_id}" if source != "-" else doc_id
    return [Text(published), Text.assemble((title, "bold"), "\n", (under, "dim"))]


@articles_app.command("show")
def articles_show(
    doc_id: Annotated[str, typer.Argument(help="article id (see `qa articles list`)")],
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One article: its metadata, the file it came from and its text as indexed."""
    from qa.index.articles import get_article

    settings = settings_for(config, **{"paths.index": index})
    try:
        info, doc = get_article(settings, doc_id)
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
    from qa.cli.ingest import recovered
    from qa.index.articles import get_article, remove_article

    settings = settings_for(config, **{"paths.index": index})
    recovered(settings)  # a removal killed earlier is finished or undone first
    try:
        if not yes:
            info, _ = get_article(settings, doc_id)
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
