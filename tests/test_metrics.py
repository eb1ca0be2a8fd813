"""Hand-computed cases for qa.metrics."""

from __future__ import annotations

import pytest

from qa.metrics import (
    answer_in_text,
    citation_precision,
    citation_recall,
    contains_answer,
    evidence_complete,
    evidence_recall,
    exact_match,
    is_refusal,
    mrr,
    normalize_answer,
    percentile,
    rtqa_exact_match,
    rtqa_f1,
    rtqa_normalize,
    span_in_passage,
    summarize,
    token_f1,
)

# --- answers ---------------------------------------------------------------------------------


def test_normalize_answer_squad_rules() -> None:
    assert normalize_answer("  The  S-400, an Air-Defence system!  ") == "s400 airdefence system"
    # Curly apostrophes are punctuation too, so both spellings agree.
    assert normalize_answer("Belarus’s policy") == normalize_answer("Belarus's policy")
    # Articles go only as whole words.
    assert normalize_answer("Theatre and an Anthem") == "theatre and anthem"
    assert normalize_answer("") == ""


def test_exact_match() -> None:
    assert exact_match("the Operation Sindoor.", ["Operation Sindoor"]) == 1.0
    assert exact_match("Sindoor", ["Operation Sindoor", "Sindoor"]) == 1.0
    assert exact_match("Operation Sindoor launched", ["Operation Sindoor"]) == 0.0
    assert exact_match("26", "26") == 1.0  # a bare string is one gold answer, not characters
    assert exact_match("", ["26"]) == 0.0


def test_empty_golds_reward_only_an_empty_prediction() -> None:
    for metric in (exact_match, token_f1, contains_answer):
        assert metric("", []) == 1.0
        assert metric("  ... ", []) == 1.0  # normalises to nothing
        assert metric("26", []) == 0.0
        assert metric("26", ["", "the"]) == 0.0  # golds that normalise to "" are ignored
        assert metric("", ["", "the"]) == 1.0


def test_token_f1_hand_computed() -> None:
    # pred tokens: india russia (2); gold: india and russia (3); common 2.
    # P = 2/2, R = 2/3, F1 = 2 * 1 * 2/3 / (1 + 2/3) = 0.8
    assert token_f1("India, Russia", ["India and Russia"]) == pytest.approx(0.8)
    # best over golds: "russia" alone -> P = 1/2, R = 1, F1 = 2/3
    assert token_f1("India, Russia", ["Russia", "China"]) == pytest.approx(2 / 3)
    # repeated tokens count with multiplicity: pred "s400 s400", gold "s400": P 1/2, R 1
    assert token_f1("S-400 S-400", ["S-400"]) == pytest.approx(2 / 3)
    assert token_f1("", ["26"]) == 0.0
    assert token_f1("Pakistan", ["26"]) == 0.0
    # articles and punctuation removed before counting
    assert token_f1("The Memorandum of Obligation.", ["Memorandum of Obligation"]) == 1.0


def test_contains_answer_word_boundaries() -> None:
    assert contains_answer("It killed 26 civilians.", ["26"]) == 1.0
    assert contains_answer("It killed 126 civilians.", ["26"]) == 0.0
    assert contains_answer("They met on June 26, 2025.", ["June 26, 2025", "2025-06-26"]) == 1.0
    assert contains_answer("", ["26"]) == 0.0


def test_is_refusal() -> None:
    assert is_refusal("I cannot answer this from the given articles.")
    assert is_refusal("The date is not mentioned in the articles.")
    assert is_refusal("   ")
    # One list with qa.answer: the phrases only it knew count here too.
    assert is_refusal("I don't know.") and is_refusal("I don’t know who won.")
    assert is_refusal("The passages do not contain the date.")
    assert is_refusal("The date is not mentioned.")
    assert not is_refusal("Operation Sindoor")
    assert is_refusal({"answer": "Sindoor", "answered": False})
    assert not is_refusal({"answer": "I cannot answer", "answered": True})  # verdict wins
    assert is_refusal({"answer": ""})


# --- retrieval ---------------------------------------------------------------------------------

P1 = "Singh met Khrenin.\nThey agreed on a list of practical activities for the near future."
P2 = "Belousov said Russia stands in complete solidarity with India against terrorism."
P3 = "Unrelated text about the weather in Qingdao."


def test_span_in_passage_whitespace_and_clipping() -> None:
    assert span_in_passage("Singh  met\nKhrenin.", P1)
    assert not span_in_passage("singh met khrenin.", P1)  # verbatim: case matters
    span = "0123456789" * 2  # 20 characters; 90% is 18
    assert span_in_passage(span, "before " + span[:18])  # clipped at the end by 2
    assert span_in_passage(span, span[2:] + " after")  # clipped at the start by 2
    assert not span_in_passage(span, "before " + span[:17])  # only 85%
    assert not span_in_passage(span, "x " + span[1:19] + " y")  # a middle piece does not count
    assert not span_in_passage("", P1)


def test_evidence_recall_and_complete() -> None:
    ev = ["list of practical activities", "complete solidarity with India"]
    assert evidence_recall([P1, P2], ev) == 1.0
    assert evidence_recall([P3, P1], ev) == 0.5
    assert evidence_recall([P3], ev) == 0.0
    assert evidence_complete([P3, P1], ev) == 0.0
    assert evidence_complete([P2, P1], ev) == 1.0
    assert evidence_recall([P1], []) is None
    assert evidence_complete([P1], []) is None
    # duplicate spans count once
    assert evidence_recall([P1], ["list of practical", "list of practical"]) == 1.0


def test_span_split_evenly_between_two_passages_is_not_found() -> None:
    span = "Russia stands in complete solidarity with India"
    half = len(span) // 2
    assert evidence_recall([span[:half], span[half:]], [span]) == 0.0


def test_mrr() -> None:
    ev = ["complete solidarity"]
    assert mrr([P2, P1], ev) == 1.0
    assert mrr([P3, P1, P2], ev) == pytest.approx(1 / 3)
    assert mrr([P3, P1], ev) == 0.0
    # any span counts: the first passage holding one of them
    assert mrr([P3, P1, P2], ["complete solidarity", "practical activities"]) == 0.5
    assert mrr([P1], []) is None


# --- citations --------------------------------------------------------------------------------


def test_citation_precision_and_recall() -> None:
    ev = ["list of practical activities", "complete solidarity with India"]
    assert citation_precision([P1, P3], ev) == 0.5
    assert citation_recall([P1, P3], ev) == 0.5
    assert citation_precision([P1, P2], ev) == 1.0
    assert citation_recall([P1, P2], ev) == 1.0
    # the same passage cited three times counts once: 1 good of 2 distinct
    assert citation_precision([P1, P1, " " + P1, P3], ev) == 0.5
    assert citation_recall([P2, P2], ev) == 0.5


def test_citations_without_citations_or_evidence() -> None:
    assert citation_precision([], ["complete solidarity"]) == 0.0
    assert citation_recall([], ["complete solidarity"]) == 0.0
    assert citation_precision([P1], []) is None
    assert citation_recall([], []) is None


# --- aggregation -------------------------------------------------------------------------------


def test_percentile_linear_interpolation() -> None:
    xs = [10.0, 20.0, 30.0, 40.0]
    assert percentile(xs, 50) == 25.0
    assert percentile(xs, 95) == pytest.approx(38.5)  # pos 2.85 -> 30 + 0.85 * 10
    assert percentile(xs, 0) == 10.0
    assert percentile(xs, 100) == 40.0
    assert percentile([None, 7.0], 50) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(xs, 101)


def test_summarize_mixed_types() -> None:
    rows = [
        {"id": "g1", "type": "single", "em": 1.0, "f1": 1.0, "mrr": 1.0, "refused": False,
         "latency_ms": 100.0, "prompt_tokens": 50, "completion_tokens": 5},
        {"id": "g2", "type": "single", "em": 0.0, "f1": 0.5, "mrr": None, "refused": True,
         "latency_ms": 300.0, "tokens": 40},
        {"id": "g3", "type": "multi", "em": 0.0, "f1": 0.25, "mrr": 0.5, "refused": False,
         "latency_ms": 200.0, "prompt_tokens": 70, "completion_tokens": 10},
        {"id": "g4", "type": "unanswerable", "em": None, "f1": None, "mrr": None,
         "refused": True, "latency_ms": 50.0},
        {"id": "g5", "type": "unanswerable", "em": None, "f1": None, "mrr": None,
         "refused": False, "latency_ms": 150.0},
    ]  # fmt: skip
    s = summarize(rows)
    assert s["n"] == 5
    assert set(s["overall"]) == {"em", "f1", "mrr"}  # id/type/refused/costs are not metrics
    assert s["overall"]["em"] == pytest.approx(1 / 3)
    assert s["overall"]["f1"] == pytest.approx(1.75 / 3)
    assert s["overall"]["mrr"] == pytest.approx(0.75)
    assert s["by_type"]["single"] == {"n": 2, "em": 0.5, "f1": 0.75, "mrr": 1.0}
    assert s["by_type"]["multi"]["f1"] == 0.25
    assert s["by_type"]["unanswerable"] == {"n": 2, "em": None, "f1": None, "mrr": None}
    assert s["refusal"]["unanswerable_refused"] == 0.5
    assert s["refusal"]["answerable_refused"] == pytest.approx(1 / 3)
    assert s["latency_ms"]["p50"] == 150.0
    assert s["latency_ms"]["p95"] == pytest.approx(280.0)  # pos 3.8 -> 200 + 0.8 * 100
    assert s["tokens"] == {"prompt": 120, "completion": 15, "total": 175}


def test_summarize_empty() -> None:
    s = summarize([])
    assert s["n"] == 0
    assert s["refusal"] == {"unanswerable_refused": None, "answerable_refused": None}
    assert s["latency_ms"]["p50"] is None
    assert s["tokens"]["total"] == 0


# --- RealTime QA -------------------------------------------------------------------------------


def test_rtqa_normalize_keeps_articles_and_curly_quotes() -> None:
    assert rtqa_normalize("The  Eras Tour!") == "the eras tour"
    assert rtqa_normalize("“Barbie”") == "“barbie”"
    assert rtqa_normalize("25歳") == "25"


def test_rtqa_scores() -> None:
    assert rtqa_exact_match("tigger.", ["Tigger"]) == 1.0
    assert rtqa_exact_match("the Tigger", ["Tigger"]) == 0.0  # no article removal
    # pred "the tigger" vs gold "tigger": P 1/2, R 1 -> 2/3
    assert rtqa_f1("the Tigger", ["Tigger"]) == pytest.approx(2 / 3)
    assert rtqa_f1("", ["Tigger"]) == 0.0
    assert rtqa_f1("Tigger", []) == 0.0


def test_answer_in_text() -> None:
    text = "Tsai Ing-wen, who steps down in May, leads the DPP."
    assert answer_in_text("Tsai Ing-wen", text)
    assert answer_in_text("tsai ingwen", text)
    assert not answer_in_text("Ing", text)  # word boundaries
    assert not answer_in_text("", text)
