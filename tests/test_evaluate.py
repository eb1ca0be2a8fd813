"""The eval harness: gold-file validation, a small run with the real model, reports, compare,
and a RealTime QA run on a tiny folder of the benchmark's layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ASK_JSON_KEYS, ROOT

from qa import Assistant
from qa.config import load_settings
from qa.embed import FakeEmbedder
from qa.evaluate import compare, eval_gold, eval_realtimeqa, load_gold, load_report
from qa.types import QAError


def test_malformed_gold_lines_are_reported_by_number(tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "\n".join(
            [
                '{"id": "a", "question": "Q?", "answers": ["x"], "evidence": [], "type": "single"}',
                '{"id": "b", "question": "Q?"',  # truncated JSON
                '{"id": "c", "answers": []}',  # no question
                '{"id": "a", "question": "Again?", "type": "single"}',  # duplicate id
                '{"id": "d", "question": "Q?", "type": "tricky"}',  # unknown type
                "[1, 2]",
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(QAError) as info:
        load_gold(gold)
    message = str(info.value)
    for expected in (
        "line 2: invalid JSON",
        "line 3: missing field 'question'",
        "line 4: duplicate id",
        "line 5: type must be",
        "line 6: not a JSON object",
    ):
        assert expected in message
    assert "line 1" not in message
    with pytest.raises(QAError, match="not found"):
        load_gold(tmp_path / "missing.jsonl")


def test_the_project_gold_set_loads() -> None:
    items = load_gold(ROOT / "eval" / "gold.jsonl")
    assert len(items) >= 60


def test_small_gold_run_with_the_real_model(assistant: Assistant, tmp_path: Path) -> None:
    items = [i for i in load_gold(ROOT / "eval" / "gold.jsonl") if i.id in ("g001", "g071")]
    assert [i.type for i in items] == ["single", "unanswerable"]
    out = tmp_path / "run"
    report = eval_gold(assistant, items, out)

    lines = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [i.id for i in items]
    headline = next(r for r in records if r["id"] == "g001")
    assert ASK_JSON_KEYS | {"scores", "type"} <= set(headline)
    assert headline["scores"]["evidence_recall"] == 1.0
    assert headline["scores"]["citation_precision"] > 0
    assert headline["scores"]["contains"] == 1.0

    summary = report["summary"]
    assert summary["n"] == 2
    assert set(summary["by_type"]) == {i.type for i in items}
    assert report["settings"]["client"] == "extractive"
    assert report["settings"]["index"]["embedding_model"].endswith("all-MiniLM-L6-v2")
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# qa eval: gold")
    assert load_report(out)["summary"]["n"] == 2

    with pytest.raises(FileExistsError):  # a run folder is never overwritten
        eval_gold(assistant, items, out)


def test_compare_shows_both_runs_and_the_difference() -> None:
    def report(f1: float, commit: str) -> dict[str, object]:
        return {
            "settings": {"client": "extractive", "model": "m", "k": 5, "commit": commit},
            "summary": {
                "overall": {"f1": f1},
                "refusal": {"unanswerable_refused": 0.5, "answerable_refused": 0.0},
                "latency_ms": {"p50": 10.0, "p95": 20.0},
            },
        }

    table = compare(report(0.25, "aaa"), report(0.5, "bbb"), ("one", "two"))
    assert "| f1 | 0.250 | 0.500 | +0.250 |" in table
    assert "| commit | aaa | bbb | |" in table


def _write_week(
    folder: Path, week: str, questions: list[dict[str, object]], results: list[list[dict[str, str]]]
) -> None:
    with open(folder / f"{week}_qa.jsonl", "w", encoding="utf-8") as qa_file:
        for q in questions:
            qa_file.write(json.dumps(q) + "\n")
    with open(folder / f"{week}_gcs.jsonl", "w", encoding="utf-8") as gcs:
        for q, found in zip(questions, results, strict=True):
            gcs.write(json.dumps({"question_id": q["question_id"], "search_result": found}) + "\n")


def test_realtimeqa_run_on_a_tiny_folder(tmp_path: Path) -> None:
    data = tmp_path / "rtqa"
    data.mkdir()
    article = {
        "url": "https://example.org/eclipse",
        "title": "Eclipse crosses North America",
        "text": "A total solar eclipse crossed Mexico, the United States and Canada on Monday.\n\n"
        "Millions watched the eclipse in Texas, where the sky went dark for four minutes.",
        "publish_date": "2024-04-08",
    }
    other = {
        "url": "https://example.org/budget",
        "title": "Budget vote",
        "text": "Parliament passed the budget after a long debate about farm subsidies.",
    }
    _write_week(
        data,
        "20240412",
        [
            {
                "question_id": "20240412_0",
                "question_date": "2024/04/12",
                "question_sentence": "How long did the sky go dark in Texas during the eclipse?",
                "choices": ["One minute", "Four minutes", "Ten minutes", "An hour"],
                "answer": ["1"],
            },
            {
                "question_id": "20240412_1",
                "question_date": "2024/04/12",
                "question_sentence": "What did parliament pass after a long debate?",
                "choices": ["A tax cut", "The budget", "A treaty", "A ban"],
                "answer": ["1"],
            },
        ],
        # The eclipse article was found for the budget question only.
        [[other], [other, article]],
    )
    settings = load_settings(
        overrides={"paths.index": str(tmp_path / "idx" / "main"), "embedding.model": "fake"},
        env={},
    )
    assistant = Assistant(settings, embedder=FakeEmbedder(name="fake"))
    out = tmp_path / "run"
    report = eval_realtimeqa(assistant, data, None, out)

    summary = report["summary"]
    assert summary["n"] == 2
    assert report["settings"]["articles"] == 2
    assert summary["overall"]["oracle"] == 1.0
    # The eclipse answer is in the pooled articles but not in its own question's search results.
    assert summary["overall"]["search_oracle"] == 0.5
    assert summary["overall"]["answer_recall"] == 1.0
    assert summary["overall"]["mc_accuracy"] == 1.0
    # The benchmark's index is its own, beside (not inside) the main one, and is reused.
    assert not (tmp_path / "idx" / "main").exists()
    built = [p for p in (tmp_path / "idx").iterdir() if p.name.startswith("realtimeqa-")]
    assert len(built) == 1
    again = eval_realtimeqa(assistant, data, None, tmp_path / "run2")
    assert again["summary"]["overall"] == summary["overall"]

    with pytest.raises(QAError, match=r"unknown|available"):
        eval_realtimeqa(assistant, data, ["20990101"], tmp_path / "run3")
