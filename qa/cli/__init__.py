"""`qa`: a thin command line over the Assistant and the index. Every command has ``--json``.

Heavy libraries (torch, faiss, llama.cpp, openai) are imported inside the commands that need
them, so `qa status` and `qa --help` start fast.

This module holds the app, the consoles, the shared options and helpers, and the one list of
commands (in help order); the commands live by concern in ingest, ask, articles, evals, serve.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from qa.core.config import Settings, load_settings
from qa.core.types import Filters, QAError
from qa.text.words import printable, printable_json

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
    sequences removed (see :func:`qa.text.words.printable`) and Rich markup escaped."""
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
    from qa.retrieval.filters import build_filters

    try:
        return build_filters(as_of, since, until, sources or ())
    except QAError as exc:
        fail(str(exc))


def print_json(data: Any) -> None:
    """One JSON object; characters a terminal would act on (from articles or a model) are
    \\u escapes, as the plain output removes them (:func:`qa.text.words.printable`)."""
    sys.stdout.write(printable_json(json.dumps(data, ensure_ascii=False, indent=2)) + "\n")


def progress_bar(as_json: bool) -> Any:
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


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except QAError as exc:  # errors raised outside a command's own handling
        err.print(f"[red]error:[/red] {shown(str(exc))}")
        sys.exit(1)


# The commands, in the order `qa --help` lists them. Imported here, after the shared names above
# exist, because each command module imports them from this package.
from qa.cli import articles, ask, evals, ingest, serve  # noqa: E402

app.command()(ingest.ingest)
app.command()(ask.search)
app.command()(ingest.status)
app.command()(ask.ask)
app.command()(serve.serve)
app.command()(serve.mcp)
app.command()(ingest.watch)
app.add_typer(articles.articles_app, name="articles")
app.add_typer(evals.eval_app, name="eval")
app.add_typer(serve.model_app, name="model")
