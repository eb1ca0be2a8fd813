"""The eval harness: gold-file validation, a small run with the real model, reports, compare,
and a RealTime QA run on a tiny folder of the benchmark's layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import ASK_JSON_KEYS, ROOT

from qa import Assistant
from qa.core.config import load_settings
from qa.core.types import Answer, QAError
from qa.embedding.fake import FakeEmbedder
from qa.evaluation.runner import (
    GoldItem,
    compare,
    eval_gold,
    eval_realtimeqa,
    load_gold,
    load_report,
)


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
    # Bars at 0: this checks the harness's scoring, not what the confidence model shows.
    settings = load_settings(
        overrides={
            "paths.index": str(tmp_path / "idx" / "main"),
            "embedding.model": "fake",
            "answer.min_short_confidence": 0.0,
            "answer.min_choice_confidence": 0.0,
        },
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


# ---------------------------------------------------------------- kinds, choices and the bar


def test_gold_kinds_and_choices_load_and_are_validated(tmp_path: Path) -> None:
    items = {i.id: i for i in load_gold(ROOT / "eval" / "gold.jsonl")}
    assert items["g104"].kind == "who_is" and items["g104"].choices == ()
    assert items["g124"].choices == ("Russia", "Belarus", "China")
    assert items["g124"].choice == 2  # numbered from 1, as the text shows options
    assert items["g001"].kind == "" and items["g001"].choice is None

    base = '{"id": "%s", "question": "Q?", "answers": ["x"], "type": "single"'
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "\n".join(
            [
                base % "ok" + ', "kind": "choice", "choices": ["a", "b"], "choice": 2}',
                base % "a" + ', "choices": ["a"], "choice": 1}',  # one option
                base % "b" + ', "choices": "ab", "choice": 1}',  # not a list
                base % "c" + ', "choices": ["a", "b"], "choice": 0}',  # numbered from 1
                base % "d" + ', "choices": ["a", "b"], "choice": 3}',  # past the last
                base % "e" + ', "choices": ["a", "b"], "choice": "1"}',  # not an integer
                base % "f" + ', "choices": ["a", "b"]}',  # no right option
                base % "g" + ', "choice": 1}',  # no options
                base % "h" + ', "choices": ["a", 2], "choice": 1}',  # not strings
                base % "i" + ', "kind": 3}',  # kind not a string
                base % "j" + ', "choices": ["a", "b"], "choice": true}',  # a bool is no number
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(QAError) as info:
        load_gold(gold)
    message = str(info.value)
    assert "line 1:" not in message
    for n, expected in [
        (2, "2 or more"),
        (3, "2 or more"),
        (4, "from 1 to 2"),
        (5, "from 1 to 2"),
        (6, "option's number"),
        (7, "option's number"),
        (8, "2 or more"),
        (9, "non-empty strings"),
        (10, "kind must be a string"),
        (11, "option's number"),
    ]:
        assert f"line {n}: " in message and expected in message.split(f"line {n}: ")[1], n


@pytest.fixture
def scripted(fake_index: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Assistant.ask replaced by a script: each question's short answer (or option) with a
    given confidence, as the learned model would give it. Returns the bars it was asked at."""
    script: dict[str, tuple[str, int | None, float | None]] = {
        "Where?": ("Qingdao", None, 0.9),  # right, above the bar
        "When?": ("June 26", None, 0.6),  # right, but below the bar: withheld
        "Capital?": ("human", None, 0.95),  # unanswerable, shown: wrong
        "Who?": ("Rajnath Singh", None, 0.2),  # wrong, withheld: silent
        "Which?": ("", 1, 0.8),  # option 2 of 3, right, above the choice bar
        "First?": ("", 0, 0.3),  # option 1, wrong, below the choice bar: abstains
    }
    asked_at: list[float] = []

    def ask(self: Assistant, question: str, **kwargs: object) -> Answer:
        asked_at.append(self.settings.answer.min_short_confidence)
        asked_at.append(self.settings.answer.min_choice_confidence)
        short, choice, confidence = script[question]
        text = f"Option {choice + 1}: it [1]" if choice is not None else "As the article says [1]"
        return Answer(
            question=question,
            text=text,
            answered=True,
            citations=(),
            passages=(),
            model="scripted",
            short_answer=short,
            choice=choice,
            confidence=confidence,
        )

    monkeypatch.setattr(Assistant, "ask", ask)
    return asked_at


def _gold_items() -> list[GoldItem]:
    def item(id: str, q: str, answers: tuple[str, ...], **kw: object) -> GoldItem:
        kind = "unanswerable" if not answers else "single"
        return GoldItem(id, q, answers, (), kind, **kw)  # type: ignore[arg-type]

    return [
        item("w", "Where?", ("Qingdao",), kind="type_trap"),
        item("n", "When?", ("June 26, 2025", "June 26"), kind="when_met"),
        item("c", "Capital?", (), kind="type_trap"),
        item("h", "Who?", ("Russian Defence Minister",), kind="who_is"),
        item("x", "Which?", ("b",), kind="choice", choices=("a", "b", "c"), choice=2),
        item("f", "First?", ("b",), kind="choice", choices=("a", "b", "c"), choice=2),
    ]


def test_the_harness_asks_without_bars_and_applies_the_configured_ones(
    fake_index: tuple[Path, Path], scripted: list[float], tmp_path: Path
) -> None:
    from dataclasses import replace

    from index_helpers import FAKE

    root, _ = fake_index
    settings = replace(
        FAKE,
        paths=replace(FAKE.paths, index=root),
        llm=replace(FAKE.llm, client="fake"),
        answer=replace(FAKE.answer, min_short_confidence=0.7, min_choice_confidence=0.5),
    )
    report = eval_gold(
        Assistant(settings, embedder=FakeEmbedder(name="fake")), _gold_items(), tmp_path / "r"
    )
    assert set(scripted) == {0.0}  # every candidate was asked for, with its confidence
    assert report["settings"]["bars"] == {
        "min_short_confidence": 0.7,
        "min_choice_confidence": 0.5,
    }
    records = {
        json.loads(line)["id"]: json.loads(line)
        for line in (tmp_path / "r" / "predictions.jsonl").read_text().splitlines()
    }
    scores = {i: r["scores"] for i, r in records.items()}
    # Above the bar and right: +1. Below the bar: silent (0), though it was right.
    assert (scores["w"]["short_answered"], scores["w"]["short_truth"]) == (1.0, 1.0)
    assert (scores["n"]["short_answered"], scores["n"]["short_truth"]) == (0.0, 0.0)
    assert scores["n"]["exact_match"] == 0.0 and records["n"]["candidate"]["right"] is True
    assert records["n"]["short_answer"] == "June 26"  # the candidate is still recorded
    # With the short answer withheld, "contains" judges the cited sentences only.
    assert scores["n"]["contains"] == 0.0 and scores["w"]["contains"] == 1.0
    assert scores["c"]["short_truth"] == -1.0  # any short answer to the unanswerable: wrong
    assert scores["h"]["short_truth"] == 0.0 and scores["h"]["short_right"] is None
    # Multiple choice: the right pick above the bar +1; a pick below it abstains.
    assert scores["x"]["mc_truth"] == 1.0 and scores["x"]["short_truth"] is None
    assert (scores["f"]["mc_answered"], scores["f"]["mc_truth"], scores["f"]["refused"]) == (
        0.0,
        0.0,
        True,
    )
    decisions = report["decisions"]
    assert decisions["short"]["at_bar"]["coverage"] == pytest.approx(0.5)  # w and c of 4
    assert decisions["short"]["at_bar"]["truthfulness"] == pytest.approx(0.0)
    assert decisions["short"]["all_candidates"]["truthfulness"] == pytest.approx(0.0)
    assert decisions["short"]["confidence"] == "given"
    assert decisions["choice"]["at_bar"] == {
        "n": 2,
        "coverage": 0.5,
        "precision": 1.0,
        "truthfulness": 0.5,
    }
    assert len(decisions["short"]["curve"]) == 4
    by_kind = report["summary"]["by_kind"]
    assert set(by_kind) == {"type_trap", "when_met", "who_is", "choice"}
    assert by_kind["type_trap"]["short_truth"] == 0.0  # +1 and -1
    md = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "Per question kind" in md and "| short answer | bar 0.7 | 4 | 0.500 |" in md
    assert "| decision | 0.1 |" in md


def test_without_confidences_every_candidate_is_shown_and_the_report_says_so(
    fake_index: tuple[Path, Path], scripted: list[float], tmp_path: Path, monkeypatch
) -> None:
    from dataclasses import replace

    from index_helpers import FAKE

    scripted_ask = Assistant.ask

    def no_confidence(self: Assistant, question: str, **kwargs: object) -> Answer:
        return replace(scripted_ask(self, question, **kwargs), confidence=None)

    monkeypatch.setattr(Assistant, "ask", no_confidence)
    root, _ = fake_index
    settings = replace(
        FAKE, paths=replace(FAKE.paths, index=root), llm=replace(FAKE.llm, client="fake")
    )
    report = eval_gold(
        Assistant(settings, embedder=FakeEmbedder(name="fake")), _gold_items(), tmp_path / "r"
    )
    assert report["decisions"]["short"]["confidence"] == "assumed 1.0"
    assert report["decisions"]["short"]["at_bar"]["coverage"] == 1.0
    assert report["decisions"]["choice"]["at_bar"]["coverage"] == 1.0
    assert "No confidence was given" in (tmp_path / "r" / "report.md").read_text()


def _budget_week(folder: Path, week: str) -> None:
    article = {
        "url": f"https://example.org/budget-{week}",
        "title": "Budget vote",
        "text": "Parliament passed the budget after a long debate about farm subsidies.",
        "publish_date": f"{week[:4]}-{week[4:6]}-{week[6:]}",
    }
    question = {
        "question_id": f"{week}_0",
        "question_date": f"{week[:4]}/{week[4:6]}/{week[6:]}",
        "question_sentence": "What did parliament pass after a long debate?",
        "choices": ["A tax cut", "The budget", "A treaty", "A ban"],
        "answer": ["1"],
    }
    folder.mkdir(exist_ok=True)
    _write_week(folder, week, [question], [[article]])


def test_realtimeqa_takes_several_folders(tmp_path: Path) -> None:
    from qa.evaluation.realtime_qa_eval import choose_weeks, split_weeks

    a, b = tmp_path / "2023", tmp_path / "2024q1"
    for week in ("20231006", "20231013"):
        _budget_week(a, week)
    for week in ("20240105", "20240112", "20240119"):
        _budget_week(b, week)
    settings = load_settings(
        overrides={
            "paths.index": str(tmp_path / "idx" / "main"),
            "embedding.model": "fake",
            "llm.client": "fake",
        },
        env={},
    )
    assistant = Assistant(settings, embedder=FakeEmbedder(name="fake"))
    report = eval_realtimeqa(assistant, [a, b], choose_weeks([a, b], "2"), tmp_path / "run")
    summary = report["summary"]
    assert summary["n"] == 4  # the first two weeks of each folder, asked together
    assert list(summary["by_type"]) == ["20231006", "20231013", "20240105", "20240112"]
    assert [f["weeks"] for f in report["settings"]["folders"]] == [
        ["20231006", "20231013"],
        ["20240105", "20240112"],
    ]
    assert report["settings"]["articles"] == 4
    built = sorted(p.name for p in (tmp_path / "idx").iterdir())
    assert len(built) == 2 and built[0].startswith("realtimeqa-2023-")  # an index each
    # Per question, so a split by weeks can add them up: answered, right, truthfulness.
    record = json.loads((tmp_path / "run" / "predictions.jsonl").read_text().splitlines()[0])
    assert record["folder"] == "2023"
    for key in ("mc", "short"):
        assert {f"{key}_answered", f"{key}_right", f"{key}_truth"} <= set(record["scores"])
    assert set(report["decisions"]) == {"short", "choice"}
    assert "Precision at coverage" in (tmp_path / "run" / "report.md").read_text()

    # A comma list goes to the folder holding each week; what cannot be placed is an error.
    assert split_weeks([a, b], ["20231013", "20240119"]) == [["20231013"], ["20240119"]]
    with pytest.raises(QAError, match="in none of"):
        split_weeks([a, b], ["20990101"])
    with pytest.raises(QAError, match="no week of"):
        split_weeks([a, b], ["20231013"])
    with pytest.raises(QAError, match="twice"):
        eval_realtimeqa(assistant, [a, a], None, tmp_path / "run2")


def test_cli_realtimeqa_repeats_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from qa.cli import app

    for name in [n for n in os.environ if n.startswith("QA_")]:
        monkeypatch.delenv(name)
    a, b = tmp_path / "2023", tmp_path / "2024q1"
    _budget_week(a, "20231006")
    _budget_week(b, "20240105")
    config = tmp_path / "config.toml"
    config.write_text(
        '[paths]\nindex = "idx/main"\nruns = "runs"\n[embedding]\nmodel = "fake"\n'
        '[llm]\nclient = "fake"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    args = ["eval", "realtimeqa", "--data", str(a), "--data", str(b), "--config", str(config)]
    result = runner.invoke(app, [*args, "--weeks", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["summary"]["n"] == 2 and len(report["settings"]["folders"]) == 2
    bad = runner.invoke(app, [*args, "--weeks", "20231006"])
    assert bad.exit_code != 0 and "no week of" in bad.stderr
