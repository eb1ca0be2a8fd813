"""Checks on the hand-written gold set, eval/gold.jsonl, against the article bodies."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "eval" / "gold.jsonl"
CORPUS = ROOT / "corpus"
SEEDS = ROOT.parent / "shared" / "seed-articles"
TYPES = {"single", "multi", "unanswerable"}
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n.*?\r?\n---[ \t]*(\r?\n|\Z)", re.DOTALL)


def _bodies() -> dict[str, str]:
    """Article name -> body text: corpus/*.md without front matter, else the seed articles."""
    files = sorted(CORPUS.glob("*.md"))
    if files:
        return {
            p.stem: _FRONT_MATTER.sub("", p.read_text(encoding="utf-8"), count=1) for p in files
        }
    files = sorted(SEEDS.glob("*.txt"))
    assert files, f"no articles found in {CORPUS} or {SEEDS}"
    return {p.stem: p.read_text(encoding="utf-8") for p in files}


def _rows() -> list[tuple[int, dict[str, Any]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    for n, line in enumerate(GOLD.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail(f"gold.jsonl line {n}: invalid JSON ({exc})")
        assert isinstance(obj, dict), f"gold.jsonl line {n}: not a JSON object"
        rows.append((n, obj))
    return rows


@pytest.fixture(scope="module")
def rows() -> list[tuple[int, dict[str, Any]]]:
    return _rows()


@pytest.fixture(scope="module")
def bodies() -> dict[str, str]:
    return _bodies()


def test_fields_and_types(rows: list[tuple[int, dict[str, Any]]]) -> None:
    problems = []
    for n, r in rows:
        required = {"id", "question", "answers", "evidence", "type"}
        optional = {"kind", "choices", "choice"}
        if not required <= set(r) <= required | optional:
            problems.append(f"line {n}: fields {sorted(r)}")
            continue
        if "choices" in r and not (
            isinstance(r["choices"], list)
            and len(r["choices"]) >= 2
            and isinstance(r.get("choice"), int)
            and 1 <= r["choice"] <= len(r["choices"])
            and r["choices"][r["choice"] - 1] in r["answers"]
        ):
            problems.append(f"line {n}: choices need 2+ options and a choice numbered from 1")
        if not isinstance(r["id"], str) or not re.fullmatch(r"g\d{3,}", r["id"]):
            problems.append(f"line {n}: bad id {r['id']!r}")
        if not isinstance(r["question"], str) or not r["question"].strip():
            problems.append(f"line {n}: empty question")
        if r["type"] not in TYPES:
            problems.append(f"line {n}: type {r['type']!r} not in {sorted(TYPES)}")
        for key in ("answers", "evidence"):
            v = r[key]
            if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
                problems.append(f"line {n}: {key} must be a list of non-empty strings")
        if r["type"] == "unanswerable":
            if r["answers"] or r["evidence"]:
                problems.append(f"line {n}: unanswerable with answers or evidence")
        elif not r["answers"] or not r["evidence"]:
            problems.append(f"line {n}: {r['type']} question without answers or evidence")
    assert not problems, "\n".join(problems)


def test_ids_and_questions_unique(rows: list[tuple[int, dict[str, Any]]]) -> None:
    for key in ("id", "question"):
        seen: dict[str, int] = {}
        dupes = []
        for n, r in rows:
            v = str(r.get(key)).strip().lower()
            if v in seen:
                dupes.append(f"line {n}: {key} {r.get(key)!r} repeats line {seen[v]}")
            seen.setdefault(v, n)
        assert not dupes, "\n".join(dupes)


def test_size_and_mix(rows: list[tuple[int, dict[str, Any]]]) -> None:
    counts = {t: sum(1 for _, r in rows if r.get("type") == t) for t in TYPES}
    assert len(rows) >= 60, counts
    assert counts["unanswerable"] >= 10, counts
    assert counts["multi"] >= 8, counts
    assert counts["single"] >= 30, counts


def test_headline_question_present(rows: list[tuple[int, dict[str, Any]]]) -> None:
    assert any(r["question"] == "What did Khrenin say about India?" for _, r in rows)


def test_evidence_is_verbatim_in_the_articles(
    rows: list[tuple[int, dict[str, Any]]], bodies: dict[str, str]
) -> None:
    problems = []
    for n, r in rows:
        for span in r.get("evidence", []):
            if "\n" in span or "\r" in span:
                problems.append(f"line {n} ({r['id']}): evidence crosses a line break: {span!r}")
            elif not any(span in body for body in bodies.values()):
                problems.append(f"line {n} ({r['id']}): evidence not found: {span!r}")
    assert not problems, "\n".join(problems)


def test_multi_questions_need_two_articles(
    rows: list[tuple[int, dict[str, Any]]], bodies: dict[str, str]
) -> None:
    problems = []
    for n, r in rows:
        if r.get("type") != "multi":
            continue
        spans = r["evidence"]
        sources = {name for s in spans for name, body in bodies.items() if s in body}
        # No single article may hold every span: the evidence must come from two or more.
        single = [name for name, body in bodies.items() if all(s in body for s in spans)]
        if len(sources) < 2 or single:
            problems.append(f"line {n} ({r['id']}): evidence all in {single or sorted(sources)}")
    assert not problems, "\n".join(problems)
