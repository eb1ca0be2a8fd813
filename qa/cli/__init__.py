"""`qa`: a thin command line over the Assistant and the index. Every command has ``--json``.

Heavy libraries (torch, faiss, llama.cpp, openai) are imported inside the commands that need
them, so `qa status` and `qa --help` start fast.

This module holds the app, the consoles, the shared options and helpers, and the one list of
commands (in help order); the commands live by concern in ingest, ask, articles, evals, serve.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import NoReturn

INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def _interrupted_while_loading(signum: int, frame: object) -> NoReturn:
    # Ctrl-C while this package and its libraries import (the first few hundred ms): one line
    # and the shell's code, not a KeyboardInterrupt traceback from deep inside an import.
    sys.stderr.write("qa: interrupted\n")
    raise SystemExit(INTERRUPTED)


# Installed first, restored once the commands are imported (the end of this module), so a
# program that imports qa.cli keeps its own handler afterwards.
_previous_sigint = (
    signal.signal(signal.SIGINT, _interrupted_while_loading)
    if threading.current_thread() is threading.main_thread()
    and signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not when ignored (&)
    else None
)

import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402

from qa.core.config import Settings, find_config, load_settings, no_config_note  # noqa: E402
from qa.core.types import Filters, QAError  # noqa: E402
from qa.text.words import printable, printable_json  # noqa: E402

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


def main() -> None:
    """Console-script entry point."""
    try:
        try:
            app()
        except KeyboardInterrupt:  # outside typer's own handling (which exits 130 silently)
            sys.exit(INTERRUPTED)
    except QAError as exc:  # errors raised outside a command's own handling
        err.print(f"[red]error:[/red] {shown(str(exc))}")
        sys.exit(1)
    except SystemExit as exc:
        if exc.code == INTERRUPTED:
            err.print("qa: interrupted")
        raise


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

if _previous_sigint is not None:
    signal.signal(signal.SIGINT, _previous_sigint)
