"""`qa eval realtimeqa`: the RealTime QA benchmark, from one or more of its folders.

Each folder (a quarter or a year of weeks) gets its own index, reused on later runs; the
questions of every folder are asked and reported together, per week as before. The assistant
asks with both confidence bars at 0 and the configured bars are applied here, as for the gold
set (``qa.evaluation.runner``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qa.answering.assistant import Assistant
from qa.core.config import EmbeddingSettings
from qa.core.types import Answer, Filters, QAError
from qa.evaluation import metrics
from qa.evaluation import truthfulness as truth
from qa.evaluation.realtime_qa import RTQuestion
from qa.evaluation.report import configured_bars, run_settings, unbarred, write_report

Progress = Callable[[int, int], None]  # (done, total)


def realtimeqa_index_dir(base: Path, data: Path, weeks: tuple[str, ...], settings: Any) -> Path:
    """One index per (data folder, weeks, embedding and chunking settings), reused when the
    same run comes again; other settings get an index of their own instead of a rebuild. Only
    what changes the vectors is in the key: the model and its precision. Where and how they are
    computed is not: torch and ONNX, in this process or through an embeddings service, with any
    threads or batch size, give the same vectors of the same model."""
    embedding = asdict(settings.embedding)
    # How the vectors are computed: left out, or (in the keys of indexes built before this
    # rule) set to their defaults, so those indexes keep their names.
    for key in ("runtime", "backend", "openai"):
        embedding.pop(key)
    for key in ("batch_size", "device", "threads"):
        embedding[key] = getattr(EmbeddingSettings(), key)
    if embedding["precision"] == "fp32":
        del embedding["precision"]  # fp32 indexes were built before precision existed
    build = [embedding, asdict(settings.chunking)]
    raw = json.dumps([str(data.resolve()), list(weeks), build], sort_keys=True, default=str)
    return base / f"realtimeqa-{data.name}-{hashlib.sha1(raw.encode()).hexdigest()[:10]}"


def question_filters(question_date: str, as_of: str) -> Filters | None:
    """The filters a benchmark question is asked with (see ``eval_realtimeqa``)."""
    if as_of == "none":
        return None
    from qa.retrieval.filters import build_filters

    day = question_date if as_of == "question" else as_of
    if not day:
        return None  # a question without a date: no limit rather than today's
    return build_filters(as_of=day)


def choose_weeks(folders: Sequence[Path], spec: str | None) -> list[str] | None:
    """The weeks ``--weeks`` names: None (all), "N" (fewer than 4 digits: the first N weeks
    of each folder) or a comma list of week names such as 20240105,20240112."""
    from qa.evaluation import realtime_qa

    if not spec or not spec.strip():
        return None
    spec = spec.strip()
    if spec.isdigit() and len(spec) < 4:
        try:
            return [w for f in folders for w in realtime_qa.list_weeks(f)[: int(spec)]]
        except ValueError as exc:
            raise QAError(str(exc)) from None
    return [w.strip() for w in spec.split(",") if w.strip()]


def split_weeks(folders: Sequence[Path], weeks: Sequence[str] | None) -> list[list[str] | None]:
    """Each folder's share of ``weeks`` (None: all its weeks). With one folder the names go to
    it unchanged; with several, each named week goes to the folder that holds it, and a week
    no folder holds, a week two folders hold, or a folder none of the weeks is in is an
    error (a clear one, rather than a silent guess)."""
    from qa.evaluation import realtime_qa

    if weeks is None or len(folders) == 1:
        return [None if weeks is None else list(weeks)] * len(folders)
    try:
        held = {f: set(realtime_qa.list_weeks(f)) for f in folders}
    except ValueError as exc:
        raise QAError(str(exc)) from None
    parts: dict[Path, list[str]] = {f: [] for f in folders}
    for raw in weeks:
        w = raw.strip().replace("-", "").replace("/", "")
        owners = [f for f in folders if w in held[f]]
        if not owners:
            raise QAError(f"unknown week {raw!r}: in none of the --data folders")
        if len(owners) > 1:
            raise QAError(f"week {raw!r} is in {owners[0]} and {owners[1]}: give one of them")
        parts[owners[0]].append(w)
    for f, chosen in parts.items():
        if not chosen:
            raise QAError(f"--weeks names no week of {f}; leave that folder out of --data")
    return [parts[f] for f in folders]


@dataclass
class _Asked:
    q: RTQuestion
    folder: str
    retrieved: list[str]
    recall: bool
    oracle: bool
    search_oracle: bool
    choice: Answer
    free: Answer | None


def _short(a: Answer | None) -> str:
    return a.short_answer if a is not None and a.answered else ""


def _row(x: _Asked, mc_shown: bool, short_shown: bool) -> dict[str, Any]:
    q, choice, free = x.q, x.choice, x.free
    chosen = choice.choice if mc_shown else None
    free_text = _short(free) if short_shown else ""
    return {
        "id": q.id,
        "type": q.week,
        "answer_recall": float(x.recall),
        "oracle": float(x.oracle),
        "search_oracle": float(x.search_oracle),
        # At the configured bar: a withheld choice abstains, a withheld short answer is none.
        "mc_accuracy": float(chosen == q.answer),
        "mc_abstained": float(chosen is None),
        **truth.judged("mc", chosen is not None, truth.choice_right(chosen, q.answer)),
        "em": metrics.rtqa_exact_match(free_text, [q.gold]) if free else None,
        "f1": metrics.rtqa_f1(free_text, [q.gold]) if free else None,
        **truth.judged(
            "short",
            bool(free_text) if free else None,
            truth.short_answer_right(free_text, [q.gold]),
        ),
        "latency_ms": choice.timings_ms.get("total", 0.0)
        + (free.timings_ms.get("total", 0.0) if free else 0.0),
        "prompt_tokens": choice.usage.prompt_tokens + (free.usage.prompt_tokens if free else 0),
        "completion_tokens": choice.usage.completion_tokens
        + (free.usage.completion_tokens if free else 0),
    }


def eval_realtimeqa(
    assistant: Assistant,
    data: Path | Sequence[Path],
    weeks: Sequence[str] | None,
    out: Path,
    *,
    k: int | None = None,
    as_of: str = "question",
    index_progress: Progress | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Index each benchmark folder's articles into an index of its own, then ask every question
    three ways: retrieval only (answer recall@k), with its choices, and free text.

    ``data`` is one folder or several (their questions are reported together; ``weeks`` are
    shared among them by :func:`split_weeks`). ``as_of`` is "question" (the benchmark's
    setting: each question is asked on its ``question_date``, and later news does not exist
    yet), "none" (no date limit: every article counts, as before the news-aware retrieval) or
    a YYYY-MM-DD day for all."""
    from qa.evaluation import realtime_qa
    from qa.index import separate_index, sync

    folders = [data] if isinstance(data, Path) else list(data)
    if not folders:
        raise QAError("no RealTime QA folder given")
    if len({f.resolve() for f in folders}) < len(folders):
        raise QAError("the same RealTime QA folder is given twice")
    k = k or assistant.settings.retrieval.k
    bars = configured_bars(assistant)
    asker = unbarred(assistant)
    loaded = []
    for folder, chosen in zip(folders, split_weeks(folders, weeks), strict=True):
        try:
            loaded.append((folder, realtime_qa.read(folder, chosen)))
        except (ValueError, OSError) as exc:
            raise QAError(str(exc)) from None
    ids = [q.id for _, rt in loaded for q in rt.questions]
    if len(set(ids)) < len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise QAError(f"question {dup} is in more than one --data folder")
    total = len(ids)
    out.mkdir(parents=True, exist_ok=False)
    asked: list[_Asked] = []
    details: list[dict[str, Any]] = []
    bench = asker
    for folder, rt in loaded:
        base = asker.settings.index_dir.parent
        index_dir = realtimeqa_index_dir(base, folder, rt.weeks, asker.settings)
        settings = separate_index(asker.settings, index_dir)
        synced = sync(index_dir, rt.documents, asker.embedder, settings, progress=index_progress)
        bench = Assistant(settings, embedder=asker.embedder, llm=asker.llm)
        details.append(
            {
                "data": str(folder.resolve()),
                "weeks": list(rt.weeks),
                "articles": len(rt.documents),
                "chunks": synced.chunks_total,
                "index_seconds": round(synced.seconds, 1),
                "skipped_empty": rt.skipped_empty,
            }
        )
        # Oracles: the gold text occurs somewhere in the folder's indexed articles, or in one
        # of the articles the benchmark's search returned for this question. The first counts
        # chance matches ("40" or "Ecuador" in unrelated stories of the pooled quarter); the
        # second is the benchmark's own setting, so it is the ceiling recall is compared with.
        corpus = {d.id: f" {metrics.rtqa_normalize(d.title + ' ' + d.text)} " for d in rt.documents}
        for q in rt.questions:
            gold = metrics.rtqa_normalize(q.gold)
            filters = question_filters(q.date, as_of)
            hits = [h.chunk for h in bench.retrieve(q.question, k, filters=filters).hits]
            own = rt.results.get(q.id, ())
            asked.append(
                _Asked(
                    q=q,
                    folder=folder.name,
                    retrieved=[h.id for h in hits],
                    recall=any(metrics.answer_in_text(q.gold, h.text) for h in hits),
                    oracle=bool(gold) and any(f" {gold} " in t for t in corpus.values()),
                    search_oracle=bool(gold) and any(f" {gold} " in corpus[d] for d in own),
                    choice=bench.ask(q.question, k=k, choices=q.choices, filters=filters),
                    free=None if q.skip_generation else bench.ask(q.question, k=k, filters=filters),
                )
            )
            if progress:
                progress(len(asked), total)

    mc_cands = [
        truth.Candidate(
            x.choice.choice is not None,
            x.choice.confidence,
            truth.choice_right(x.choice.choice, x.q.answer),
        )
        for x in asked
    ]
    free_asked = [x for x in asked if x.free is not None]
    short_cands = [
        truth.Candidate(
            bool(_short(x.free)),
            x.free.confidence if x.free else None,
            truth.short_answer_right(_short(x.free), [x.q.gold]),
        )
        for x in free_asked
    ]
    mc_shown, _ = truth.decide(mc_cands, bars["min_choice_confidence"])
    short_flags, _ = truth.decide(short_cands, bars["min_short_confidence"])
    short_shown = {id(x): s for x, s in zip(free_asked, short_flags, strict=True)}

    rows: list[dict[str, Any]] = []
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for x, mc_ok in zip(asked, mc_shown, strict=True):
            row = _row(x, mc_ok, short_shown.get(id(x), False))
            record = {
                "id": x.q.id,
                "folder": x.folder,
                "question": x.q.question,
                "choices": list(x.q.choices),
                "gold": x.q.gold,
                "gold_index": x.q.answer,
                "retrieved": x.retrieved,
                "multiple_choice": x.choice.to_dict() | {"shown": mc_ok},
                "free_text": (x.free.to_dict() | {"shown": short_shown[id(x)]} if x.free else None),
                "scores": {k2: v for k2, v in row.items() if k2 not in ("id", "type")},
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            rows.append(row)
    decisions = {"short": truth.decision_report(short_cands, bars["min_short_confidence"])}
    decisions["choice"] = truth.decision_report(mc_cands, bars["min_choice_confidence"])
    report = {
        "kind": "realtimeqa",
        "settings": run_settings(bench, k, bars)
        | {
            "data": [d["data"] for d in details],
            "weeks": [w for d in details for w in d["weeks"]],
            "articles": sum(d["articles"] for d in details),
            "chunks": sum(d["chunks"] for d in details),
            "index_seconds": round(sum(d["index_seconds"] for d in details), 1),
            "skipped_empty": sum(d["skipped_empty"] for d in details),
            "folders": details,
            "as_of": as_of,
        },
        "summary": metrics.summarize(rows),
        "decisions": decisions,
    }
    write_report(out, report)
    return report
