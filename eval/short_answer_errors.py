"""Error analysis of the free-text short answers of a `qa eval realtimeqa` run, on the questions
whose gold answer text is in the passages the client read (so retrieval is not the cause):

    .venv/bin/python eval/short_answer_errors.py runs/RUN [--weeks 1-9|10-13|all] [--list]

Each such question falls in one outcome: right (exact match), boundary (the right span, too
long or too short: 0 < F1 < 1), refused, no short answer (answered, but the question asked
for no span), or wrong. A wrong answer is told apart by what the gold span is in the passage
(spaCy's entity label, CHUNK for a noun chunk, "-" for neither; "+" when the gold is only
inside a longer mention) against the answer type the question was given: wrong type (the
gold's label is not one the type accepts), right type but another candidate won, an untyped
question ("which X" of an X of no known kind, where any name is a candidate) where another
name won, or a gold that is no entity (a common noun or phrase). Prints the count per
outcome with the gold's commonest kinds; --list prints every question with its outcome.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from qa.evaluation import metrics
from qa.reading.answer_type import answer_type
from qa.reading.short_answer import mentions

SPLITS = {"1-9": range(0, 9), "10-13": range(9, 13), "all": range(0, 13)}


def gold_kind(gold: str, passages: list[str]) -> str:
    """spaCy's label for the gold span where a passage sentence names it: an entity label,
    CHUNK for a noun chunk, or "-" when no mention of the passages is the gold text."""
    want = metrics.rtqa_normalize(gold)
    texts = [t for t in passages if metrics.answer_in_text(gold, t)]
    found = [m for ms in mentions(texts) for m in ms]
    for exact in (True, False):  # a mention that is the gold, else one that holds it ("+")
        labels = [
            m.label
            for m in found
            if (
                metrics.rtqa_normalize(m.text) == want
                if exact
                else metrics.answer_in_text(gold, m.text)
            )
        ]
        if labels:
            label = next((label for label in labels if label != "CHUNK"), "CHUNK")
            return label if exact else label + "+"
    return "-"


def outcome(row: dict[str, Any]) -> tuple[str, str]:
    """(outcome, the gold's kind) of one free-text answer."""
    free = row["free_text"]
    short = free["short_answer"] if free["answered"] else ""
    passages = [p["text"] for p in free["passages"]]
    kind = gold_kind(row["gold"], passages)
    if not free["answered"]:
        return "refused", kind
    f1 = metrics.rtqa_f1(short, [row["gold"]])
    if metrics.rtqa_exact_match(short, [row["gold"]]):
        return "right", kind
    if f1 > 0:
        return "boundary", kind
    if not short:
        return "no short answer", kind
    atype = answer_type(row["question"])
    if kind.rstrip("+") in ("-", "CHUNK"):
        return "wrong: gold is no entity", kind
    if atype is None or kind.rstrip("+") not in atype.labels:
        return "wrong: wrong answer type", kind
    if not atype.typed:  # "which X" of an X of no known kind: any name was a candidate
        return "wrong: untyped question, another name won", kind
    return "wrong: right type, another candidate won", kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--weeks", choices=sorted(SPLITS), default="1-9")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (args.run / "predictions.jsonl").open(encoding="utf-8")]
    weeks = sorted({r["id"].split("_")[0] for r in rows})
    chosen = [
        r
        for r in rows
        if weeks.index(r["id"].split("_")[0]) in SPLITS[args.weeks]
        and r["free_text"] is not None
        and any(metrics.answer_in_text(r["gold"], p["text"]) for p in r["free_text"]["passages"])
    ]
    counts: Counter[str] = Counter()
    f1s: Counter[str] = Counter()
    kinds: dict[str, Counter[str]] = {}
    for r in chosen:
        name, kind = outcome(r)
        counts[name] += 1
        f1s[name] += r["scores"]["f1"]
        kinds.setdefault(name, Counter())[kind] += 1
        if args.list:
            free = r["free_text"]
            given = free["short_answer"] if free["answered"] else "(refused)"
            print(f"{name} [{kind}] {r['question']!r} gold={r['gold']!r} given={given!r}")
    total = len(chosen)
    print(f"\n{args.run.name}, weeks {args.weeks}: {total} questions with the gold in the passages")
    print("| outcome | questions | share | gold's spaCy kind (most common) |")
    print("|---|---|---|---|")
    for name, n in counts.most_common():
        common = ", ".join(f"{k} {c}" for k, c in kinds[name].most_common(4))
        print(f"| {name} | {n} | {n / total:.2f} | {common} |")
    em = counts["right"] / total if total else 0.0
    f1 = sum(f1s.values()) / total if total else 0.0
    print(f"| **all** | {total} | EM {em:.3f} | F1 {f1:.3f} |")


if __name__ == "__main__":
    main()
