"""MkDocs hook: figures come from the files the scripts write, rendered into the pages.

A page says ``<!-- figure: NAME -->`` where the table of ``docs/figures/NAME.json`` goes
(written by a benchmark or eval script's ``--save-figures``), and ``<!-- confidence-report -->``
where the training report of the confidence models goes
(``qa/answering/confidence_models/report.json``,
written by ``eval/train_confidence.py``). A missing or malformed file fails the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

from qa.evaluation import figures

ROOT = Path(__file__).resolve().parent.parent
# On a line of its own: a page may name the marker in running text (development/docs.md).
FIGURE = re.compile(r"^<!-- figure: ([\w.-]+) -->$", re.MULTILINE)
CONFIDENCE = re.compile(r"^<!-- confidence-report -->$", re.MULTILINE)
CONFIDENCE_REPORT = ROOT / "qa" / "answering" / "confidence_models" / "report.json"
FIGURES = ROOT / "docs" / "figures"


def confidence_figure(report: dict[str, Any]) -> figures.Figure:
    """The two models' held-out figures, one row each."""
    trained, short, option = report["trained"], report["short"], report["option"]
    columns = ["decision", "questions", "learned", "bar", "shown at the bar", "right",
               "precision"]
    rows = [
        ["short answer", str(short["questions"]), f"AUC {short['auc']:.3f}",
         f"{short['bar']:.3f}", str(short["at_bar"]["shown"]), str(short["at_bar"]["right"]),
         f"{short['at_bar']['precision']:.3f}"],
        ["multiple choice", str(option["questions"]),
         f"accuracy {option['learned_accuracy']:.3f} (client {option['client_accuracy']:.3f})",
         f"{option['bar']:.3f}", str(option["at_bar"]["shown"]),
         str(option["at_bar"]["right"]), f"{option['at_bar']['precision']:.3f}"],
    ]
    note = (f"Weeks {trained['first_week']} to {trained['last_week']} ({trained['weeks']}), "
            f"out of fold over {trained['folds']} blocks of weeks.")
    machine = trained.get("machine", "machine not recorded by that run")
    return figures.Figure("confidence models", trained["command"], trained["date"], machine,
                          columns, rows, note)


def render(name: str) -> str:
    path = FIGURES / f"{name}.json"
    if not path.is_file():
        raise PluginError(f"figure {name!r}: {path} does not exist (run the script that writes it)")
    return figures.to_markdown(figures.load(path))


def on_page_markdown(markdown: str, **_: Any) -> str:
    markdown = FIGURE.sub(lambda m: render(m.group(1)), markdown)
    if CONFIDENCE.search(markdown):
        report = json.loads(CONFIDENCE_REPORT.read_text(encoding="utf-8"))
        table = figures.to_markdown(confidence_figure(report))
        markdown = CONFIDENCE.sub(lambda _: table, markdown)
    return markdown
