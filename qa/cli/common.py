"""What every `qa` command shares: the app, the consoles, the common options and helpers.
The commands live by concern in ingest, ask, articles, evals and serve; qa/cli/__init__.py
lists them (in help order) and is the entry point."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from qa.core.config import Settings, find_config, load_settings, no_config_note
from qa.core.types import Filters, QAError
from qa.text.words import printable, printable_json

app = typer.Typer(
    help="Question answering over news articles, with checked citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Docstrings are paragraphs: markdown mode joins their lines, where rich mode kept each
    # source line break and cut command descriptions mid-sentence in `qa --help`.
    rich_markup_mode="markdown",
)


def console(*, stderr: bool = False) -> Console:
    """A console that wraps at the terminal's width, and not at all when the output is a pipe
    or a file (rich would hard-wrap at 80 columns and split ids mid-word for ``grep``)."""
    made = Console(stderr=stderr, highlight=False)
    made.soft_wrap = not made.is_terminal
    return made


out = console()
err = console(stderr=True)


def _flags_show_no_type() -> None:
    """typer 0.29 labels every on/off flag ``<bool>`` in --help, as if it took a value; a flag
    takes none, so its type column is left empty."""
    from typer.core import TyperOption

    typed = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else typed(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="config file (default: config.toml here or in a parent, or $QA_CONFIG)"
    ),
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


class _TopLevel:
    """``qa --config FILE COMMAND``: the file given before the command (a command's own
    ``--config`` wins)."""

    config: Path | None = None


@app.callback()
def top_level(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="config file for every command (default: config.toml here or in a parent "
            "folder, or $QA_CONFIG)",
        ),
    ] = None,
) -> None:
    """Question answering over news articles, with checked citations."""
    _TopLevel.config = config


def settings_for(config: Path | None, **overrides: Any) -> Settings:
    try:
        found = find_config(config or _TopLevel.config)
        if found is None:
            err.print(f"[yellow]note:[/yellow] {shown(no_config_note())}")
        return load_settings(found, overrides)
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
