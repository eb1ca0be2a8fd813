"""`qa`: a thin command line over the Assistant and the index. Every command has ``--json``.

Heavy libraries (torch, faiss, llama.cpp, openai) are imported inside the commands that need
them, so `qa status` and `qa --help` start fast.

This module is the entry point and the one list of commands (in help order); what the commands
share is in common.py, and they live by concern in ingest, ask, articles, evals and serve.
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

from qa.cli.common import app, err, out, shown  # noqa: E402
from qa.core.types import QAError  # noqa: E402

__all__ = ["INTERRUPTED", "app", "err", "main", "out"]


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


# The commands, in the order `qa --help` lists them.
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
