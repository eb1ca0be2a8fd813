"""Sweep constants of the extractive client on the gold set, split in two halves: the
odd-numbered questions to choose a value on, the even-numbered ones to check it.

    .venv/bin/python eval/sweep_extractive.py '{"RELATIVE": [0.72, 0.9, 0.95]}'

The argument maps names of module constants in ``qa.llm.extractive`` to the values to try;
every combination is run (about 15 s each on the bundled corpus).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qa.llm.extractive as extractive
from qa.answering.assistant import Assistant
from qa.evaluation import metrics
from qa.evaluation.runner import load_gold, score_gold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", help='JSON object: {"CONSTANT": [value, ...], ...}')
    parser.add_argument("--gold", type=Path, default=ROOT / "eval" / "gold.jsonl")
    args = parser.parse_args()
    try:
        grid: dict[str, list[Any]] = json.loads(args.grid)
    except json.JSONDecodeError as exc:
        parser.error(f"the grid is not JSON: {exc}")
    if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
        parser.error('the grid must map constant names to lists: {"RELATIVE": [0.72, 0.95]}')
    for name in grid:
        if not hasattr(extractive, name):
            parser.error(f"qa.llm.extractive has no constant {name}")

    assistant = Assistant.from_config()
    items = load_gold(args.gold)
    for values in itertools.product(*grid.values()):
        for name, value in zip(grid, values, strict=True):
            setattr(extractive, name, value)
        halves: dict[str, list[dict[str, Any]]] = {"odd": [], "even": []}
        for item in items:
            half = "odd" if int(item.id.lstrip("g")) % 2 else "even"
            scores = score_gold(item, assistant.ask(item.question))
            halves[half].append({"id": item.id, "type": item.type, **scores})
        cells = []
        for half, rows in halves.items():
            summary = metrics.summarize(rows)
            o, r = summary["overall"], summary["refusal"]
            cells.append(
                f"{half}: contains {o['contains']:.3f}, citation precision "
                f"{o['citation_precision']:.3f}, citation recall {o['citation_recall']:.3f}, "
                f"EM {o['exact_match']:.3f}, unanswerable refused "
                f"{r['unanswerable_refused']:.3f}, wrongly refused {r['answerable_refused']:.3f}"
            )
        print(dict(zip(grid, values, strict=True)), " || ".join(cells), flush=True)


if __name__ == "__main__":
    main()
