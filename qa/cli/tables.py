"""Tables for `qa status` and `qa articles list`: a rich table on a terminal, and one record a
line with tab-separated fields when the output is a pipe or a file, so ``grep``, ``cut -f`` and
``sort`` see whole titles and ids (``--json`` remains the form for programs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table
from rich.text import Text

from qa.cli.common import out
from qa.text.words import printable


@dataclass(frozen=True)
class Column:
    header: str
    style: str = ""
    no_wrap: bool = False  # ids and dates: never split (the table wraps the other columns)


def print_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    headers: bool = True,
    cells: Callable[[Sequence[str]], Sequence[Text]] | None = None,
) -> None:
    """``rows`` of text from articles, the index or the user: control sequences are removed
    here, and the text is never read as Rich markup. On a terminal ``cells`` may lay a row
    out in fewer, richer cells (one per column) than the fields written to a pipe."""
    if not out.is_terminal:
        for row in rows:
            sys.stdout.write("\t".join(_field(cell) for cell in row) + "\n")
        sys.stdout.flush()
        return
    table = Table(
        box=box.SIMPLE_HEAD if headers else None,
        show_header=headers,
        show_edge=False,
        pad_edge=False,
        expand=False,
    )
    for column in columns:
        table.add_column(column.header, style=column.style, no_wrap=column.no_wrap)
    for row in rows:
        safe = [printable(cell) for cell in row]
        table.add_row(*(cells(safe) if cells else [Text(cell) for cell in safe]))
    out.print(table)


def _field(cell: str) -> str:
    # One record a line: a tab or line break inside a title would split it.
    return " ".join(printable(cell).split())
