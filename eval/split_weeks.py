"""RealTime QA figures of one or more `qa eval realtimeqa` runs, split into the tuning weeks
(1-9 of the quarter), the check weeks (10-13) and the whole quarter:

    .venv/bin/python eval/split_weeks.py runs/RUN_A [runs/RUN_B ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

METRICS = ("search_oracle", "answer_recall", "mc_accuracy", "em", "f1")


def split(run: Path) -> dict[str, dict[str, float]]:
    rows = [json.loads(line) for line in (run / "predictions.jsonl").open(encoding="utf-8")]
    weeks = sorted({r["id"].split("_")[0] for r in rows})
    parts: dict[str, list[dict[str, float]]] = {"1-9": [], "10-13": [], "all": []}
    for r in rows:
        name = "1-9" if weeks.index(r["id"].split("_")[0]) < 9 else "10-13"
        parts[name].append(r["scores"])
        parts["all"].append(r["scores"])
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
    # question) is the ceiling recall is compared with; "–" for runs made before it was kept.
    print(
        "| run | split | search oracle | answer recall@5 | multiple choice | free-text EM "
        "| free-text F1 |"
    )
    print("|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        for name, figures in split(Path(arg)).items():
            cells = " | ".join(
                "–" if figures[m] != figures[m] else f"{figures[m]:.3f}" for m in METRICS
            )
            print(f"| {Path(arg).name} | weeks {name} | {cells} |")


if __name__ == "__main__":
    main()
