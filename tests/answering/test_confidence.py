"""The learned confidence (qa.answering.confidence, qa.answering.features,
eval/train_confidence.py): calibration
where the truth is known, the bar, clear errors for a missing or stale model, and the training
script end to end on a tiny folder."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llm_helpers import make_hits

from qa.answering import confidence
from qa.answering.check import check_answer
from qa.answering.confidence import Calibrator, judge
from qa.answering.features import OPTION_FEATURES, SHORT_FEATURES
from qa.core.types import QAError

ROOT = Path(__file__).resolve().parents[2]


def _trainer() -> Any:
    spec = importlib.util.spec_from_file_location(
        "train_confidence", ROOT / "eval" / "train_confidence.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(n: int, informative: bool, seed: int = 0) -> list[dict[str, Any]]:
    """Synthetic short-answer rows over 10 weeks. Informative: `type_match` says whether the
    answer is right 95% of the time; otherwise every feature is noise and 30% are right."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        features = {f: float(rng.normal()) for f in SHORT_FEATURES}
        if informative:
            right = bool(rng.random() < 0.5)
            agrees = rng.random() < 0.95
            features["type_match"] = float(right == agrees)
        else:
            right = bool(rng.random() < 0.3)
        rows.append({"week": f"2023{i % 10:04d}", "features": features, "label": right})
    return rows


def test_a_confident_feature_gives_high_probability_and_noise_the_base_rate() -> None:
    trainer = _trainer()
    model, report = trainer.train_short(_rows(2000, informative=True), 5, 0.9)
    with_match = {f: 0.0 for f in SHORT_FEATURES} | {"type_match": 1.0}
    without = with_match | {"type_match": 0.0}
    assert model.probability(with_match) > 0.9
    assert model.probability(without) < 0.1
    assert report["auc"] > 0.9
    # The bar keeps held-out precision at 0.9 or better and still shows about half.
    assert report["at_bar"]["precision"] >= 0.9 and report["at_bar"]["shown"] > 800

    noise, noise_report = trainer.train_short(_rows(2000, informative=False, seed=1), 5, 0.9)
    probabilities = [noise.probability(r["features"]) for r in _rows(500, False, seed=2)]
    assert abs(float(np.mean(probabilities)) - 0.3) < 0.05
    assert max(probabilities) < 0.5  # nothing looks confident when nothing is known
    assert noise_report["bar"] > 1.0  # so no bar reaches precision 0.9: nothing is shown


def _constant(name: str, p: float) -> Calibrator:
    features = SHORT_FEATURES if name == "short" else OPTION_FEATURES
    n = len(features)
    return Calibrator(name, features, np.zeros(n), np.ones(n), np.zeros(n), math.log(p / (1 - p)))


PASSAGES = make_hits(
    [
        "Russian Defence Minister Andrey Belousov met Rajnath Singh in Qingdao on June 26.",
        "Belarusian Defence Minister Viktor Khrenin also met Singh.",
    ]
)


def _lookup(doc_id: str) -> None:
    return None


def test_the_short_answer_is_withheld_below_the_bar_and_shown_above(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(confidence, "load", lambda name: _constant(name, 0.7))
    raw = "Answer: Russian Defence Minister [1]\nBelousov is Russia's defence minister [1]."
    question = "Who is Andrey Belousov?"
    checked = check_answer(raw, PASSAGES, _lookup, (), question)
    assert checked.short_answer == "Russian Defence Minister"
    shown, p = judge(question, (), checked, PASSAGES, _lookup, None, 0.6, 0.6)
    assert shown.short_answer == "Russian Defence Minister" and p == pytest.approx(0.7)
    withheld, p = judge(question, (), checked, PASSAGES, _lookup, None, 0.8, 0.8)
    assert withheld.short_answer == "" and withheld.short_citation is None
    assert p == pytest.approx(0.7)  # the confidence still goes out
    assert withheld.answered and "[1]" in withheld.text  # the cited sentences remain


def test_a_choice_below_the_bar_says_the_articles_do_not_decide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qa.llm.prompts import UNDECIDED

    monkeypatch.setattr(confidence, "load", lambda name: _constant(name, 0.5))
    choices = ("Russia", "Belarus")
    question = "Which country's minister met Singh first?"
    checked = check_answer("Option 2: Belarus [2].", PASSAGES, _lookup, choices, question)
    assert checked.choice == 1
    # Two options with the same score: each has a calibrated share of 0.5.
    undecided, p = judge(question, choices, checked, PASSAGES, _lookup, None, 0.6, 0.6)
    assert undecided.choice is None and not undecided.answered
    assert undecided.text == UNDECIDED and p == pytest.approx(0.5)
    decided, _ = judge(question, choices, checked, PASSAGES, _lookup, None, 0.4, 0.4)
    assert decided.answered and decided.choice is not None


def test_a_missing_or_stale_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(QAError, match="missing: rebuild it with `python eval/train_confidence"):
        confidence.load("short", tmp_path)
    stale = _constant("short", 0.5).to_json() | {"features": ["typed", "something_else"]}
    (tmp_path / "short.json").write_text(json.dumps(stale), encoding="utf-8")
    confidence.load.cache_clear()
    with pytest.raises(QAError, match="stale"):
        confidence.load("short", tmp_path)
    (tmp_path / "short.json").write_text("[1, 2", encoding="utf-8")
    confidence.load.cache_clear()
    with pytest.raises(QAError, match="cannot be read"):
        confidence.load("short", tmp_path)


def test_the_shipped_models_load_and_their_bars_are_the_defaults() -> None:
    from qa.core.config import AnswerSettings

    confidence.load.cache_clear()
    for name in ("short", "option"):
        confidence.load(name)
    report = json.loads((confidence.MODEL_DIR / "report.json").read_text(encoding="utf-8"))
    defaults = AnswerSettings()
    assert defaults.min_short_confidence == pytest.approx(round(report["short"]["bar"], 3))
    assert defaults.min_choice_confidence == pytest.approx(round(report["option"]["bar"], 3))


def _week(folder: Path, week: str, items: list[tuple[str, list[str], int, str]]) -> None:
    """One week of a RealTime QA folder: (question, choices, gold index, article text)."""
    day = f"{week[:4]}/{week[4:6]}/{week[6:]}"
    with (
        open(folder / f"{week}_qa.jsonl", "w", encoding="utf-8") as qa_file,
        open(folder / f"{week}_gcs.jsonl", "w", encoding="utf-8") as gcs,
    ):
        for i, (question, choices, gold, text) in enumerate(items):
            qid = f"{week}_{i}"
            qa_file.write(
                json.dumps(
                    {
                        "question_id": qid,
                        "question_date": day,
                        "question_source": "Test",
                        "question_sentence": question,
                        "choices": choices,
                        "answer": [str(gold)],
                        "evidence": "",
                    }
                )
                + "\n"
            )
            article = {
                "url": f"https://news.example/{qid}",
                "title": question.rstrip("?"),
                "text": text,
                "authors": [],
                "publish_date": day,
            }
            gcs.write(json.dumps({"question_id": qid, "search_result": [article]}) + "\n")


def test_the_training_script_runs_end_to_end_on_a_tiny_folder(tmp_path: Path) -> None:
    folder = tmp_path / "rtqa"
    folder.mkdir()
    people = ["Jane Doe", "John Roe", "Max Power", "Erika Stone"]
    cities = ["Paris", "Berlin", "Rome", "Madrid"]
    for w, week in enumerate(["20240105", "20240112", "20240119", "20240126"]):
        _week(
            folder,
            week,
            [
                (
                    f"Who did Acme{w} name as chief executive?",
                    people,
                    w % 4,
                    f"Acme{w} named {people[w % 4]} as chief executive on Monday. "
                    f"{people[(w + 1) % 4]} had led the firm before.",
                ),
                (
                    f"Which city hosted summit{w}?",
                    cities,
                    3,  # the gold is never the city the article names: a wrong short answer
                    f"Summit{w} was held in {cities[w % 3]}, where leaders met for two days.",
                ),
            ],
        )
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nindex = "idx/index"\n\n[embedding]\nmodel = "fake"\n')
    out = tmp_path / "models"
    code = _trainer().main(
        ["--data", str(folder), "--out", str(out), "--folds", "2", "--config", str(config)]
    )
    assert code == 0
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"short", "option"}
    assert {r["label"] for r in rows if r["model"] == "short"} == {True, False}
    report = json.loads((out / "report.json").read_text())
    assert report["trained"]["weeks"] == 4 and report["option"]["questions"] == 8
    confidence.load.cache_clear()
    for name in ("short", "option"):
        model = confidence.load(name, out)
        assert model.features == (SHORT_FEATURES if name == "short" else OPTION_FEATURES)
    assert "Confidence models: training report" in (out / "REPORT.md").read_text()
    # A second run refits from the cached rows, with no pipeline run.
    again = _trainer().main(["--rows", str(out / "rows.jsonl"), "--out", str(out), "--folds", "2"])
    assert again == 0
