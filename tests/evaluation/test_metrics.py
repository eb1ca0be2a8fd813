"""Hand-computed cases for qa.evaluation.metrics."""

from __future__ import annotations

import pytest

from qa.evaluation.metrics import (
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
    # One list with qa.answering.check: the phrases only it knew count here too.
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


# --- right, wrong or silent (qa.evaluation.truthfulness) ---------------------------------


def test_short_answer_right_is_exact_contained_or_f1_half() -> None:
    from qa.evaluation.truthfulness import short_answer_right

    assert short_answer_right("The Qingdao.", ["Qingdao"])  # exact after normalisation
    assert short_answer_right("26 civilians", ["26"])  # contained on word boundaries
    assert not short_answer_right("126 civilians", ["26"])  # not on a word boundary
    # Token F1 2/3 >= 0.5: "russian defence minister" against "russias defence minister".
    assert short_answer_right("Russian Defence Minister", ["Russia's defence minister"])
    # Token F1 0.4 < 0.5 (1 shared word of 2 and of 3) and not contained: wrong.
    assert not short_answer_right("Defence ministry", ["Russia's defence minister"])
    assert not short_answer_right("Rajnath Singh", ["Russian Defence Minister"])
    assert not short_answer_right("", ["26"])  # nothing shown is never right
    # Unanswerable: any short answer is wrong, whatever it says.
    assert not short_answer_right("human", [])
    assert not short_answer_right("26", ["", "the"])


def test_choice_and_answer_right() -> None:
    from qa.evaluation.truthfulness import answer_right, choice_right

    assert choice_right(1, 1) and not choice_right(2, 1)
    assert not choice_right(None, 1) and not choice_right(1, None)
    assert answer_right("Singh met Khrenin on June 26, 2025.", ["June 26, 2025"])
    assert not answer_right("Singh met Khrenin in Qingdao.", ["June 26, 2025"])
    assert not answer_right("Minsk is the capital.", [])  # unanswerable: any answer is wrong
    assert not answer_right("", ["26"])


def test_crag_scores_and_score_row_keys() -> None:
    from qa.evaluation.truthfulness import crag, judged

    assert (crag(True, True), crag(True, False), crag(False, True), crag(False, False)) == (
        1,
        -1,
        0,
        0,
    )
    assert judged("short", True, True) == {
        "short_answered": 1.0,
        "short_right": 1.0,
        "short_truth": 1.0,
    }
    # Silence: answered 0, no precision figure (None is skipped in means), truthfulness 0.
    assert judged("mc", False, True) == {"mc_answered": 0.0, "mc_right": None, "mc_truth": 0.0}
    assert judged("mc", None)["mc_truth"] is None  # the decision does not apply
    rows = [
        {"type": "single", **judged("short", True, True)},
        {"type": "single", **judged("short", True, False)},
        {"type": "single", **judged("short", False)},
        {"type": "single", **judged("short", True, True)},
    ]
    overall = summarize(rows)["overall"]
    assert overall["short_answered"] == pytest.approx(0.75)  # coverage
    assert overall["short_right"] == pytest.approx(2 / 3)  # precision
    assert overall["short_truth"] == pytest.approx(0.25)  # (1 - 1 + 0 + 1) / 4


def _cands() -> list:
    from qa.evaluation.truthfulness import Candidate

    return [
        Candidate(True, 0.9, True),
        Candidate(True, 0.8, False),
        Candidate(True, 0.8, True),
        Candidate(True, 0.3, True),
        Candidate(False, None, False),  # no candidate at all: never answers
    ]


def test_precision_coverage_curve_on_a_tiny_known_example() -> None:
    from qa.evaluation.truthfulness import precision_at, precision_coverage

    points = precision_coverage(_cands())
    # The two 0.8s are a tie: no bar can split them, so they come in together.
    assert [p["threshold"] for p in points] == [0.9, 0.8, 0.3]
    assert [p["coverage"] for p in points] == pytest.approx([0.2, 0.6, 0.8])
    assert [p["precision"] for p in points] == pytest.approx([1.0, 2 / 3, 0.75])
    assert [p["truthfulness"] for p in points] == pytest.approx([0.2, 0.2, 0.4])
    assert precision_at(points, 0.1) == 1.0
    assert precision_at(points, 0.5) == pytest.approx(2 / 3)
    assert precision_at(points, 0.8) == pytest.approx(0.75)
    assert precision_at(points, 0.9) is None  # the absent candidate caps coverage at 0.8


def test_bar_withholds_a_candidate_below_it_as_silence() -> None:
    from qa.evaluation.truthfulness import Candidate, decide, decision_report

    shown, assumed = decide(_cands(), 0.8)
    assert shown == [True, True, True, False, False] and not assumed
    report = decision_report(_cands(), 0.8)
    assert report["confidence"] == "given"
    # At 0.8: three shown (two right, one wrong), two silent.
    assert report["at_bar"] == {
        "n": 5,
        "coverage": pytest.approx(0.6),
        "precision": pytest.approx(2 / 3),
        "truthfulness": pytest.approx(0.2),
    }
    assert report["all_candidates"]["coverage"] == pytest.approx(0.8)
    assert report["all_candidates"]["truthfulness"] == pytest.approx(0.4)
    assert report["precision_at"]["0.1"] == 1.0 and report["precision_at"]["1.0"] is None
    assert decide(_cands(), 0.95)[0] == [False] * 5
    # A present candidate without a confidence, when others have one, is withheld.
    assert decide([Candidate(True, None, True), Candidate(True, 0.7, True)], 0.0)[0] == [
        False,
        True,
    ]


def test_without_any_confidence_every_candidate_counts_as_one() -> None:
    from qa.evaluation.truthfulness import Candidate, decide, decision_report

    cands = [
        Candidate(True, None, True),
        Candidate(True, None, False),
        Candidate(False, None, False),
    ]
    shown, assumed = decide(cands, 0.99)
    assert shown == [True, True, False] and assumed
    report = decision_report(cands, 0.99)
    assert report["confidence"] == "assumed 1.0"
    assert report["at_bar"]["coverage"] == pytest.approx(2 / 3)
    assert report["curve"] == [
        {
            "threshold": 1.0,
            "coverage": pytest.approx(2 / 3),
            "precision": 0.5,
            "truthfulness": 0.0,
        }
    ]


def test_summarize_reports_each_kind_apart() -> None:
    rows = [
        {"type": "single", "kind": "who_is", "contains": 1.0, "refused": False},
        {"type": "unanswerable", "kind": "who_is", "contains": None, "refused": True},
        {"type": "single", "kind": "when_met", "contains": 0.0, "refused": False},
        {"type": "single", "contains": 1.0, "refused": False},  # no kind: overall only
    ]
    summary = summarize(rows)
    assert set(summary["by_kind"]) == {"who_is", "when_met"}
    assert summary["by_kind"]["who_is"]["n"] == 2
    assert summary["by_kind"]["who_is"]["contains"] == 1.0
    assert summary["by_kind"]["who_is"]["refused"] == 0.5
    assert summary["by_kind"]["when_met"]["contains"] == 0.0
    assert summary["overall"]["contains"] == pytest.approx(2 / 3)
    assert "by_kind" not in summarize([{"type": "single", "contains": 1.0}])
