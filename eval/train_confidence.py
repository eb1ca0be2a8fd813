"""Train the confidence models of ``qa.answering.confidence`` from RealTime QA news, and write them
with
their training report.

    python eval/train_confidence.py --data ../shared/benchmarks/realtimeqa/2023 [--weeks 26]

For every question of the chosen weeks, asked on its own date (the benchmark's setting) with the
extractive client and the real index (built or reused as ``qa eval realtimeqa`` does), the
script records the features of the client's short answer (label: it is right, by
``qa.evaluation.truthfulness.short_answer_right``) and of every option of the multiple-choice
question (label:
it is the gold option). Rows are cached in ``--rows`` so a refit needs no pipeline run.

Models are scikit-learn logistic regressions on standardised features. Every figure in the
report is out-of-fold: the weeks are cut into ``--folds`` blocks of consecutive weeks, and each
block is scored by a model trained on the others, so no week is scored by a model that saw it.
The bar written as the default (``answer.min_*_confidence``) is the lowest at which the
out-of-fold precision of what is shown stays >= ``--precision`` (0.9). The final models are
fitted on all the rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answering.confidence import MODEL_DIR, Calibrator, _logit
from qa.answering.features import FEATURE_VERSION, OPTION_FEATURES, SHORT_FEATURES
from qa.core.types import QAError
from qa.evaluation.figures import machine
from qa.evaluation.truthfulness import short_answer_right

MIN_SHOWN = 20  # a bar must show at least this many out-of-fold answers to be trusted


# ------------------------------------------------------------------------------ collecting


def collect(data: Path, weeks: list[str] | None, rows_path: Path, config: Path | None) -> None:
    """Ask every question and append its feature rows to ``rows_path``."""
    from qa.answering.assistant import Assistant
    from qa.answering.features import option_evidence, short_features
    from qa.core.config import load_settings
    from qa.evaluation import realtime_qa
    from qa.evaluation.runner import question_filters, realtimeqa_index_dir
    from qa.index import separate_index, sync

    settings = load_settings(config, {"llm.client": "extractive"})
    rt = realtime_qa.read(data, weeks)
    index_dir = realtimeqa_index_dir(settings.index_dir.parent, data, rt.weeks, settings)
    settings = separate_index(settings, index_dir)
    base = Assistant(settings)
    started = time.perf_counter()
    sync(index_dir, rt.documents, base.embedder, settings)
    print(f"{data.name}: index ready in {time.perf_counter() - started:.0f} s", flush=True)
    bench = Assistant(settings, embedder=base.embedder, calibrated=False)
    with open(rows_path, "a", encoding="utf-8") as out:
        for done, q in enumerate(rt.questions, 1):
            filters = question_filters(q.date, "question")
            as_of = str(filters.as_of) if filters and filters.as_of else ""
            if not q.skip_generation:
                free = bench.ask(q.question, filters=filters)
                checked = _checked(free)
                for rank, (span, citation) in enumerate(checked):
                    row = short_features(
                        q.question, span, citation.n, citation.quote, free.passages, as_of, rank
                    )
                    right = short_answer_right(span, [q.gold])
                    out.write(_row("short", q.id, q.week, row, right, span))
            mc = bench.ask(q.question, choices=q.choices, filters=filters)
            evidence = option_evidence(
                q.question, q.choices, mc.passages, mc.choice, [c.quote for c in mc.citations]
            )
            for j, row in enumerate(evidence.features):
                named = evidence.best_sentence[j] >= 0 or j == mc.choice
                out.write(_row("option", q.id, q.week, row, j == q.answer, str(j), named))
            if done % 50 == 0:
                print(f"  {done}/{len(rt.questions)} questions", flush=True)


def _checked(answer: Any) -> list[tuple[str, Any]]:
    """The client's short answer and its verified alternatives, as the judge sees them."""
    found = list(answer.alternatives)
    if answer.short_answer and answer.short_citation is not None:
        first = next(c for c in answer.citations if c.n == answer.short_citation)
        found.insert(0, (answer.short_answer, first))
    return found


def _row(
    model: str,
    qid: str,
    week: str,
    features: dict[str, float],
    label: bool,
    value: str,
    eligible: bool = True,
) -> str:
    record = {
        "model": model,
        "id": qid,
        "week": week,
        "features": features,
        "label": bool(label),
        "value": value,
        "eligible": eligible,
    }
    return json.dumps(record) + "\n"


# ------------------------------------------------------------------------------ fitting


def _fit(x: np.ndarray, y: np.ndarray, name: str, features: Sequence[str]) -> Calibrator:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = LogisticRegression(C=1.0, max_iter=2000).fit((x - scaler.mean_) / scale, y)
    return Calibrator(
        name, tuple(features), scaler.mean_, scale, model.coef_[0], float(model.intercept_[0])
    )


def _blocks(weeks: Sequence[str], folds: int) -> dict[str, int]:
    """Consecutive weeks cut into ``folds`` blocks: week -> block number."""
    ordered = sorted(set(weeks))
    return {w: min(folds - 1, i * folds // len(ordered)) for i, w in enumerate(ordered)}


def _bar(confidence: np.ndarray, right: np.ndarray, precision: float) -> tuple[float, dict]:
    """The lowest bar whose shown answers are right at least ``precision`` of the time (with
    at least MIN_SHOWN shown), and what it shows; 1.01 (show nothing) when none is."""
    order = np.argsort(-confidence, kind="stable")
    best: tuple[float, dict] = (1.01, {"shown": 0, "right": 0, "precision": None})
    hits = np.cumsum(right[order])
    for n in range(MIN_SHOWN, len(order) + 1):
        if n < len(order) and confidence[order[n]] == confidence[order[n - 1]]:
            continue  # a bar cannot split equal confidences
        if hits[n - 1] / n >= precision:
            best = (
                float(confidence[order[n - 1]]),
                {"shown": n, "right": int(hits[n - 1]), "precision": hits[n - 1] / n},
            )
    return best


def _reliability(confidence: np.ndarray, right: np.ndarray) -> list[dict[str, Any]]:
    """Mean confidence against the share right, in ten bins of confidence."""
    table = []
    for lo in np.arange(0.0, 1.0, 0.1):
        inside = (confidence >= lo) & (confidence < lo + 0.1 + (1e-9 if lo >= 0.9 else 0))
        if inside.any():
            table.append(
                {
                    "bin": f"{lo:.1f}-{lo + 0.1:.1f}",
                    "n": int(inside.sum()),
                    "mean_confidence": float(confidence[inside].mean()),
                    "share_right": float(right[inside].mean()),
                }
            )
    return table


def train_short(rows: list[dict], folds: int, precision: float) -> tuple[Calibrator, dict]:
    """P(right) per short-answer candidate; per question the judge shows the candidate with
    the highest probability, so the bar and its precision are measured on those."""
    from sklearn.metrics import roc_auc_score

    x = np.array([[r["features"][f] for f in SHORT_FEATURES] for r in rows], dtype=float)
    y = np.array([r["label"] for r in rows], dtype=bool)
    block = _blocks([r["week"] for r in rows], folds)
    groups = np.array([block[r["week"]] for r in rows])
    oof = np.zeros(len(rows))
    for b in range(folds):
        test = groups == b
        if test.any() and (~test).any() and len(set(y[~test])) == 2:
            model = _fit(x[~test], y[~test], "short", SHORT_FEATURES)
            oof[test] = _sigmoid(
                model.logits([dict(zip(SHORT_FEATURES, v, strict=True)) for v in x[test]])
            )
    by_question: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_question.setdefault(r.get("id", str(i)), []).append(i)
    first = [m[0] for m in by_question.values()]  # the client's own pick
    best = [max(m, key=lambda i: oof[i]) for m in by_question.values()]
    confidence, right = oof[best], y[best]
    bar, shown = _bar(confidence, right, precision)
    report = {
        "rows": len(rows),
        "questions": len(by_question),
        "base_rate": float(y.mean()),
        "auc": float(roc_auc_score(y, oof)) if len(set(y)) == 2 else None,
        "brier": float(np.mean((oof - y) ** 2)),
        "client_first_right": int(y[first].sum()),
        "judge_best_right": int(right.sum()),
        "bar": bar,
        "at_bar": shown,
        "reliability": _reliability(confidence, right),
    }
    return _fit(x, y, "short", SHORT_FEATURES), report


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def train_option(rows: list[dict], folds: int, precision: float) -> tuple[Calibrator, dict]:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[r["features"][f] for f in OPTION_FEATURES] for r in rows], dtype=float)
    y = np.array([r["label"] for r in rows], dtype=bool)
    ids = [r["id"] for r in rows]
    block = _blocks([r["week"] for r in rows], folds)
    groups = np.array([block[r["week"]] for r in rows])
    share = np.zeros(len(rows))
    for b in range(folds):
        test = groups == b
        if test.any() and (~test).any():
            model = _fit(x[~test], y[~test], "option", OPTION_FEATURES)
            logits = model.logits([dict(zip(OPTION_FEATURES, v, strict=True)) for v in x])
            share[test] = _shares(logits, ids)[test]
    # One decision per question: the eligible option with the best out-of-fold share.
    questions: dict[str, list[int]] = {}
    for i, qid in enumerate(ids):
        questions.setdefault(qid, []).append(i)
    picked, picked_right, client_right, client_answered = [], [], [], []
    for members in questions.values():
        eligible = [i for i in members if rows[i]["eligible"]]
        client = [i for i in members if rows[i]["features"]["client_pick"] == 1.0]
        client_answered.append(bool(client))
        client_right.append(bool(client) and bool(y[client[0]]))
        if eligible:
            best = max(eligible, key=lambda i: share[i])
            picked.append(share[best])
            picked_right.append(bool(y[best]))
    # Platt scaling of the winning share, fitted on the out-of-fold decisions.
    conf_raw = np.array(picked)
    right = np.array(picked_right, dtype=bool)
    platt = LogisticRegression(C=1e4).fit(_logit(conf_raw).reshape(-1, 1), right)
    a, b_ = float(platt.coef_[0][0]), float(platt.intercept_[0])
    confidence = _sigmoid(a * _logit(conf_raw) + b_)
    bar, shown = _bar(confidence, right, precision)
    n_q = len(questions)
    report = {
        "questions": n_q,
        "rows": len(rows),
        "learned_answered": len(picked) / n_q,
        "learned_accuracy": float(right.sum()) / n_q,
        "client_accuracy": float(np.sum(client_right)) / n_q,
        "client_answered": float(np.mean(client_answered)),
        "platt": [a, b_],
        "bar": bar,
        "at_bar": shown,
        "truthfulness_at_bar": (2 * shown["right"] - shown["shown"]) / n_q,
        "reliability": _reliability(confidence, right),
    }
    final = _fit(x, y, "option", OPTION_FEATURES)
    return replace(final, platt=(a, b_)), report


def _shares(logits: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Each row's softmax share among the rows of its question."""
    out = np.zeros(len(logits))
    members: dict[str, list[int]] = {}
    for i, qid in enumerate(ids):
        members.setdefault(qid, []).append(i)
    for rows in members.values():
        e = np.exp(logits[rows] - logits[rows].max())
        out[rows] = e / e.sum()
    return out


# ------------------------------------------------------------------------------ report


def write(out: Path, models: dict[str, Calibrator], report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        (out / f"{name}.json").write_text(
            json.dumps(model.to_json(trained=report["trained"]), indent=1) + "\n", encoding="utf-8"
        )
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (out / "REPORT.md").write_text(markdown(report), encoding="utf-8")


def markdown(report: dict[str, Any]) -> str:
    t, s, o = report["trained"], report["short"], report["option"]
    lines = [
        "# Confidence models: training report",
        "",
        f"Written by `{t['command']}` on {t['date']} (feature version {t['feature_version']}).",
        f"Data: {', '.join(t['data'])}; {t['weeks']} weeks in {t['folds']} blocks of "
        "consecutive weeks. Every figure is out-of-fold: each block scored by a model trained "
        "on the others.",
        "",
        "## Short answer",
        f"- {s['rows']} short-answer candidates of {s['questions']} questions, "
        f"{s['base_rate']:.3f} of them right. The client's first candidate is right on "
        f"{s['client_first_right']} questions, the judge's best on {s['judge_best_right']}.",
        f"- AUC {s['auc']:.3f}, Brier {s['brier']:.3f}.",
        f"- Bar for precision >= {t['precision']}: **{s['bar']:.3f}**, showing "
        f"{s['at_bar']['shown']} ({s['at_bar']['right']} right).",
        "",
        "## Multiple choice",
        f"- {o['questions']} questions. The client's own pick: accuracy "
        f"{o['client_accuracy']:.3f} (answered {o['client_answered']:.3f}); the learned pick: "
        f"accuracy {o['learned_accuracy']:.3f} (answered {o['learned_answered']:.3f}).",
        f"- Bar for precision >= {t['precision']}: **{o['bar']:.3f}**, showing "
        f"{o['at_bar']['shown']} ({o['at_bar']['right']} right); truthfulness at the bar "
        f"{o['truthfulness_at_bar']:+.3f}.",
        "",
        "## Reliability (mean confidence against the share right)",
        "",
        "| model | bin | n | mean confidence | share right |",
        "|---|---|---|---|---|",
    ]
    for name, part in (("short", s), ("option", o)):
        for r in part["reliability"]:
            lines.append(
                f"| {name} | {r['bin']} | {r['n']} | {r['mean_confidence']:.3f} | "
                f"{r['share_right']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", default=[])
    parser.add_argument("--weeks", help="first N weeks of each folder, or a comma list")
    parser.add_argument("--rows", type=Path, help="feature rows (JSONL): reused when present")
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args(argv)
    if not args.data and not (args.rows and args.rows.exists()):
        parser.error("give --data (a RealTime QA folder) or an existing --rows file")
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    rows_path = args.rows or args.out / "rows.jsonl"
    try:
        if args.data and not (args.rows and args.rows.exists()):
            rows_path.parent.mkdir(parents=True, exist_ok=True)
            rows_path.write_text("", encoding="utf-8")
            for folder in args.data:
                collect(folder, _weeks(folder, args.weeks), rows_path, args.config)
        rows = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines()]
    except (QAError, ValueError, OSError) as exc:
        print(f"train_confidence: {exc}", file=sys.stderr)
        return 2
    short_rows = [r for r in rows if r["model"] == "short"]
    option_rows = [r for r in rows if r["model"] == "option"]
    if len({r["label"] for r in short_rows}) < 2 or not option_rows:
        print("train_confidence: too few rows of both outcomes to learn from", file=sys.stderr)
        return 2
    weeks = sorted({r["week"] for r in rows})
    folds = min(args.folds, len(weeks))
    short, short_report = train_short(short_rows, folds, args.precision)
    option, option_report = train_option(option_rows, folds, args.precision)
    report = {
        "trained": {
            "command": "python eval/train_confidence.py " + " ".join(argv or sys.argv[1:]),
            "date": date.today().isoformat(),
            "machine": machine(),  # the docs render this report with where it was made
            "data": [str(d) for d in args.data] or [str(rows_path)],
            "weeks": len(weeks),
            "first_week": weeks[0],
            "last_week": weeks[-1],
            "folds": folds,
            "precision": args.precision,
            "feature_version": FEATURE_VERSION,
        },
        "short": short_report,
        "option": option_report,
    }
    write(args.out, {"short": short, "option": option}, report)
    print(markdown(report))
    return 0


def _weeks(folder: Path, spec: str | None) -> list[str] | None:
    from qa.evaluation import realtime_qa

    if not spec:
        return None
    if spec.isdigit():
        return realtime_qa.list_weeks(folder)[: int(spec)]
    return [w.strip() for w in spec.split(",") if w.strip()]


if __name__ == "__main__":
    raise SystemExit(main())
