"""Right, wrong or silent for any run's predictions, old or new: coverage, precision and
truthfulness of the short answer, the multiple-choice answer and the whole answer, by the one
definition of right (``qa.evaluation.truthfulness``). For comparing runs made before the harness
reported
them (a run of an earlier commit) with today's.

    python eval/truth_of_run.py RUN [--gold eval/gold.jsonl] [--weeks 1-9]

A RealTime QA run carries its gold text; a gold-set run needs ``--gold``. Runs written before
the JSON ``choice`` was numbered from 1 (they have no ``confidence`` key) number it from 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.core.types import QAError
from qa.evaluation import figures
from qa.evaluation.runner import answer_text, load_gold
from qa.evaluation.truthfulness import answer_right, short_answer_right


def _choice(answer: dict[str, Any]) -> int | None:
    """The chosen option's index from 0, whichever numbering the run wrote."""
    choice = answer.get("choice")
    if choice is None or not answer.get("answered", True):
        return None
    return int(choice) - 1 if "confidence" in answer else int(choice)


def _seen(answer: dict[str, Any]) -> str:
    """What a reader sees: the short answer and the answer text, markers removed."""
    from qa.core.types import Answer

    shell = Answer(answer.get("question", ""), answer["answer"], answer["answered"], (), (), "")
    return f"{answer.get('short_answer', '')} {answer_text(shell)}".strip()


class Tally:
    def __init__(self) -> None:
        self.n = self.answered = self.right = 0

    def add(self, answered: bool, right: bool) -> None:
        self.n += 1
        self.answered += answered
        self.right += answered and right

    def cells(self, name: str) -> list[str]:
        wrong = self.answered - self.right
        coverage = self.answered / self.n if self.n else 0.0
        precision = f"{self.right / self.answered:.3f}" if self.answered else "–"
        truth = (self.right - wrong) / self.n if self.n else 0.0
        return [name, str(self.n), str(self.answered), str(self.right), f"{coverage:.3f}",
                precision, f"{truth:+.3f}"]


COLUMNS = ["decision", "n", "answered", "right", "coverage", "precision", "truthfulness"]


def _weeks(spec: str | None, weeks: list[str]) -> set[str]:
    if not spec:
        return set(weeks)
    lo, _, hi = spec.partition("-")
    return set(weeks[int(lo) - 1 : int(hi or lo)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--gold", type=Path, help="the gold file of a gold-set run")
    parser.add_argument("--weeks", help="RealTime QA weeks by position, e.g. 1-9 or 10-13")
    parser.add_argument("--save-figures", type=Path, metavar="FILE",
                        help="also write the table as JSON for the docs (docs/figures/NAME.json)")
    args = parser.parse_args(argv)
    try:
        lines = (args.run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        gold = {g.id: g for g in load_gold(args.gold)} if args.gold else {}
    except (OSError, ValueError, QAError) as exc:
        print(f"truth_of_run: {exc}", file=sys.stderr)
        return 2
    short, choice, whole = Tally(), Tally(), Tally()
    if records and "gold" in records[0]:  # RealTime QA
        weeks = sorted({r["id"].split("_")[0] for r in records})
        keep = _weeks(args.weeks, weeks)
        for r in records:
            if r["id"].split("_")[0] not in keep:
                continue
            mc = r["multiple_choice"]
            picked = _choice(mc)
            choice.add(picked is not None, picked == r["gold_index"])
            free = r.get("free_text")
            if free:
                span = free.get("short_answer", "") if free["answered"] else ""
                short.add(bool(span), short_answer_right(span, [r["gold"]]))
                whole.add(free["answered"], answer_right(_seen(free), [r["gold"]]))
    else:
        if not gold:
            print("truth_of_run: a gold-set run needs --gold FILE", file=sys.stderr)
            return 2
        for r in records:
            item = gold.get(r["id"])
            if item is None:
                continue
            if item.choices:
                picked = _choice(r)
                gold_index = None if item.choice is None else item.choice - 1
                choice.add(picked is not None, picked == gold_index)
                continue
            span = r.get("short_answer", "") if r["answered"] else ""
            short.add(bool(span), short_answer_right(span, item.answers))
            whole.add(r["answered"], answer_right(_seen(r), item.answers))
    rows = [tally.cells(name) for name, tally in
            (("short answer", short), ("multiple choice", choice), ("whole", whole))]
    print(f"{args.run}")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|---" * len(COLUMNS) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.save_figures:
        figures.save(figures.figure(f"right, wrong or silent: {args.run.name}", COLUMNS, rows),
                     args.save_figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
