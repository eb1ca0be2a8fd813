"""Figures the docs quote, as files the benchmark and eval scripts write.

A script given ``--save-figures FILE`` writes its table as JSON with the command that made it,
the date and the machine; the docs site renders each file into its page at build time
(``docs/hooks.py``: a page says ``<!-- figure: NAME -->``), so no figure is typed by hand and
each table says where it came from.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from qa.core.types import QAError

FIGURES_DIR = Path(__file__).resolve().parent.parent / "docs" / "figures"


@dataclass(frozen=True)
class Figure:
    """One table: its columns and rows (cells already formatted as they should read), and
    where it came from."""

    title: str
    command: str
    date: str
    machine: str
    columns: list[str]
    rows: list[list[str]]
    # Anything a reader needs to read the table right (load on the machine, what "before" is).
    note: str = ""
    # Set when the numbers were copied from the docs' text once, their run no longer existing.
    recorded_from: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise QAError(f"figure {self.title!r}: row {row} has {len(row)} cells, "
                              f"not {len(self.columns)}")


def machine() -> str:
    """This machine in a few words: system, cores, memory, and the load when measured."""
    memory = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            kib = int(info.readline().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores{memory}{load}"


def this_command() -> str:
    """The command line that is running, as it would be typed again."""
    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):  # a script outside the working folder keeps its path
        script = script.resolve().relative_to(Path.cwd())
    return shlex.join(["python", str(script), *sys.argv[1:]])


def figure(title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> Figure:
    """A figure of the running command, measured today on this machine."""
    cells = [[str(cell) for cell in row] for row in rows]
    return Figure(title, this_command(), date.today().isoformat(), machine(), columns, cells, note)


def save(fig: Figure, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(asdict(fig), indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"figures written to {target}")
    return target


def load(path: str | Path) -> Figure:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        return Figure(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise QAError(f"figure file {path}: {exc}") from None


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(fig: Figure) -> str:
    """The table, then one line saying the command, the date and the machine."""
    lines = ["| " + " | ".join(_cell(c) for c in fig.columns) + " |",
             "|" + "---|" * len(fig.columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in fig.rows]
    source = f"Command: `{fig.command}`; {fig.date}; {fig.machine}."
    if fig.note:
        source += f" {fig.note}"
    if fig.recorded_from:
        source += f" (Recorded once from {fig.recorded_from}.)"
    return "\n".join(lines) + f"\n\n{source}\n"
