"""Tables for `qa status` and `qa articles list`: a rich table on a terminal, and one record a
line with tab-separated fields when the output is a pipe or a file, so ``grep``, ``cut -f`` and
``sort`` see whole titles and ids (``--json`` remains the form for programs)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table
from rich.text import Text

from qa.cli import out
from qa.text import printable


@dataclass(frozen=True)
class Column:
    header: str
    style: str = ""
    no_wrap: bool = False  # ids and dates: never split (the table wraps the other columns)
    max_width: int | None = None  # a short column (the outlet) leaves the width to the title


def print_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], *, headers: bool = True
) -> None:
    """``rows`` of text from articles, the index or the user: control sequences are removed
    here, and the text is never read as Rich markup."""
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
        table.add_column(
            column.header, style=column.style, no_wrap=column.no_wrap, max_width=column.max_width
        )
    for row in rows:
        table.add_row(*(Text(printable(cell)) for cell in row))
    out.print(table)


def _field(cell: str) -> str:
    # One record a line: a tab or line break inside a title would split it.
    return " ".join(printable(cell).split())
