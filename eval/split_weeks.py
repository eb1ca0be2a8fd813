"""RealTime QA figures of one or more `qa eval realtimeqa` runs, split into the tuning weeks
(1-9 of the quarter), the check weeks (10-13) and the whole run, and, for a run over several
years (`--data` given more than once, e.g. train 2023, test 2024), each year apart:

    .venv/bin/python eval/split_weeks.py runs/RUN_A [runs/RUN_B ...]

Weeks are counted over the whole run, in date order. Multiple choice and the short answer are
given as coverage (share answered at the bar), precision (share right when answered) and
truthfulness (right +1, silent 0, wrong -1), from the per-question scores; "–" for runs made
before they were kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

METRICS = (
    "search_oracle",
    "answer_recall",
    "mc_accuracy",
    "mc_answered",
    "mc_right",
    "mc_truth",
    "em",
    "f1",
    "short_answered",
    "short_right",
    "short_truth",
)
HEADER = (
    "search oracle",
    "answer recall@5",
    "multiple choice",
    "MC coverage",
    "MC precision",
    "MC truthfulness",
    "free-text EM",
    "free-text F1",
    "short coverage",
    "short precision",
    "short truthfulness",
)


def split(run: Path) -> dict[str, dict[str, float]]:
    rows = [json.loads(line) for line in (run / "predictions.jsonl").open(encoding="utf-8")]
    weeks = sorted({r["id"].split("_")[0] for r in rows})
    years = sorted({w[:4] for w in weeks})
    parts: dict[str, list[dict[str, float]]] = {"weeks 1-9": [], "weeks 10-13": [], "all": []}
    if len(years) > 1:
        parts |= {f"year {y}": [] for y in years}
    for r in rows:
        week = r["id"].split("_")[0]
        parts["weeks 1-9" if weeks.index(week) < 9 else "weeks 10-13"].append(r["scores"])
        parts["all"].append(r["scores"])
        if len(years) > 1:
            parts[f"year {week[:4]}"].append(r["scores"])
    out: dict[str, dict[str, float]] = {}
    for name, scores in parts.items():
        out[name] = {}
        for m in METRICS:
            values = [s[m] for s in scores if s.get(m) is not None]
            out[name][m] = sum(values) / len(values) if values else float("nan")
    return out


def main() -> None:
    for arg in sys.argv[1:]:
        if not (Path(arg) / "predictions.jsonl").is_file():
            sys.exit(f"error: {arg} is not a run folder (no predictions.jsonl in it)")
    # The search oracle (the gold text is in an article the benchmark's search gave that
    # question) is the ceiling recall is compared with.
    print("| run | split | " + " | ".join(HEADER) + " |")
    print("|---|---|" + "---|" * len(HEADER))
    for arg in sys.argv[1:]:
        for name, figures in split(Path(arg)).items():
            cells = " | ".join(
                "–" if figures[m] != figures[m] else f"{figures[m]:.3f}" for m in METRICS
            )
            print(f"| {Path(arg).name} | {name} | {cells} |")


if __name__ == "__main__":
    main()
