"""The news-aware retrieval: as-of date, since/until/source filters inside the search, the
recency prior, and relative time in the question.

Mechanics run on small dated articles with the fake embedder (real FAISS and BM25 on disk);
the as-of exclusion is also checked on the bundled corpus with the real model.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKENDS, fake_settings, on_backend

from qa.answering.assistant import Assistant
from qa.core.config import Settings
from qa.core.types import Document, Filters, QAError
from qa.embedding.fake import FakeEmbedder
from qa.index import Index, open_index, sync, vectors
from qa.llm.extractive import ExtractiveLLM
from qa.retrieval.filters import build_filters, question_window
from qa.retrieval.retriever import Retriever

SETTINGS = fake_settings(max_tokens=60, overlap_tokens=0)


def article(doc_id: str, published: str, source: str, text: str) -> Document:
    return Document(doc_id, f"Harbour report {doc_id}", text, ((0, len(text)),), published, source)


STORY = "The harbour authority opened the new ferry terminal for passengers and freight."
DOCS = [
    article("jan02", "2024-01-02", "Coast Times", STORY + " Work began in the autumn."),
    article("jan09", "2024-01-09", "Coast Times", STORY + " Crowds gathered at the quay."),
    article("jan11", "2024-01-11", "Harbour News", STORY + " The mayor cut the ribbon."),
    article("jan20", "2024-01-20", "Harbour News", STORY + " Fares were announced later."),
    article("undated", "", "Blog", STORY + " A reader sent photographs."),
]
QUESTION = "When did the harbour authority open the ferry terminal?"


@pytest.fixture(scope="module", params=BACKENDS)
def news_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, milvus_db: Path
) -> Settings:
    """The dated articles indexed on each backend in turn: on Milvus the filters run inside
    the engine as scalar expressions."""
    root = tmp_path_factory.mktemp("news") / "index"
    settings = replace(SETTINGS, paths=replace(SETTINGS.paths, index=root))
    settings = on_backend(settings, request.param, milvus_db)
    sync(root, DOCS, FakeEmbedder(name="fake"), settings)
    return settings


@pytest.fixture(scope="module")
def index(news_settings: Settings) -> Index:
    return open_index(news_settings, dim=64)


def found(index: Index, filters: Filters | None, **retrieval: object) -> list[str]:
    settings = replace(SETTINGS.retrieval, max_per_doc=1, **retrieval)
    hits = (
        Retriever(index, FakeEmbedder(name="fake"), settings)
        .search(QUESTION, 10, filters=filters)
        .hits
    )
    return [h.doc.id for h in hits]


# ---------------------------------------------------------------- parsing user input


def test_as_of_defaults_to_today_and_dates_are_validated() -> None:
    assert build_filters().as_of == date.today()
    assert build_filters(as_of="2024-01-12").as_of == date(2024, 1, 12)
    with pytest.raises(QAError, match="as_of must be a date as YYYY-MM-DD"):
        build_filters(as_of="12/01/2024")
    with pytest.raises(QAError, match="after until"):
        build_filters(as_of="2024-02-01", since="2024-01-10", until="2024-01-05")
    with pytest.raises(QAError, match="after the as-of date"):
        build_filters(as_of="2024-01-01", since="2024-01-10")
    with pytest.raises(QAError, match="empty"):
        build_filters(sources=[" "])
    assert build_filters(sources=["Coast Times", "coast times "]).sources == ("coast times",)


# ---------------------------------------------------------------- filters inside the search


def test_articles_published_after_the_as_of_date_are_never_retrieved(index: Index) -> None:
    ids = found(index, build_filters(as_of="2024-01-10"))
    assert set(ids) == {"jan02", "jan09", "undated"}  # undated articles are not "future"
    assert set(found(index, build_filters(as_of="2030-01-01"))) == {d.id for d in DOCS}


def test_since_and_until_bound_the_publication_date(index: Index) -> None:
    ids = found(index, build_filters(as_of="2030-01-01", since="2024-01-05", until="2024-01-15"))
    assert set(ids) == {"jan09", "jan11"}  # a window needs a date: undated is out
    assert set(found(index, build_filters(as_of="2030-01-01", since="2024-01-10"))) == {
        "jan11",
        "jan20",
    }


def test_source_filter_is_case_insensitive_and_repeatable(index: Index) -> None:
    assert set(found(index, build_filters(as_of="2030-01-01", sources=["harbour news"]))) == {
        "jan11",
        "jan20",
    }
    both = build_filters(as_of="2030-01-01", sources=["HARBOUR NEWS", "Blog"])
    assert set(found(index, both)) == {"jan11", "jan20", "undated"}
    assert found(index, build_filters(as_of="2030-01-01", sources=["nobody"])) == []


def test_a_filter_that_leaves_nothing_gives_the_normal_cannot_answer(
    news_settings: Settings,
) -> None:
    assistant = Assistant(news_settings, embedder=FakeEmbedder(name="fake"), llm=ExtractiveLLM())
    answer = assistant.ask(QUESTION, filters=build_filters(as_of="2023-06-01", until="2023-06-01"))
    assert not answer.answered and answer.passages == () and answer.citations == ()
    assert answer.to_dict()["filters"]["as_of"] == "2023-06-01"


def test_the_id_selector_filters_inside_faiss_for_exact_and_ivf_indexes() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(100, 6100, dtype=np.int64)
    allowed = ids[::50]  # 2% of the vectors
    query = x[:1]
    truth = set(ids[::50][np.argsort(-(x[::50] @ query[0]))[:10]].tolist())
    for kind in ("flat", "ivf"):
        index = vectors.build(x, ids, kind)
        _, labels = vectors.search(index, query, 10, allowed_ids=allowed)
        got = [int(i) for i in labels[0] if i >= 0]
        assert got and set(got) <= set(allowed.tolist())
        if kind == "flat":
            assert set(got) == truth


# ---------------------------------------------------------------- time in the ranking


def test_recency_prior_ranks_newer_news_first_and_can_be_switched_off(index: Index) -> None:
    filters = build_filters(as_of="2024-01-21", sources=["coast times", "harbour news"])
    newest_first = found(index, filters, recency_weight=0.9, recency_half_life_days=5.0)
    assert newest_first == ["jan20", "jan11", "jan09", "jan02"]
    # Asked earlier, the article of 2024-01-20 does not exist yet and the newest is first.
    earlier = build_filters(as_of="2024-01-12", sources=["coast times", "harbour news"])
    assert found(index, earlier, recency_weight=0.9, recency_half_life_days=5.0) == [
        "jan11",
        "jan09",
        "jan02",
    ]


def test_an_undated_article_is_neutral_under_the_recency_prior(index: Index) -> None:
    # It gets the median prior of the dated candidates: below the newest, above the oldest.
    ranked = found(
        index, build_filters(as_of="2024-01-21"), recency_weight=0.9, recency_half_life_days=5.0
    )
    assert ranked == ["jan20", "jan11", "undated", "jan09", "jan02"]


def test_a_time_phrase_boosts_or_filters_to_the_period_it_names(index: Index) -> None:
    retriever = Retriever(
        index, FakeEmbedder(name="fake"), replace(SETTINGS.retrieval, max_per_doc=1)
    )
    question = "Who opened the harbour ferry terminal yesterday?"
    filters = build_filters(as_of="2024-01-12")
    boosted = retriever.search(question, 10, filters=filters)
    assert boosted.window == (date(2024, 1, 11), date(2024, 1, 12))
    assert boosted.hits[0].doc.id == "jan11"
    strict = Retriever(
        index,
        FakeEmbedder(name="fake"),
        replace(SETTINGS.retrieval, max_per_doc=1, time_phrase="filter"),
    ).search(question, 10, filters=filters)
    assert [h.doc.id for h in strict.hits] == ["jan11"]


@pytest.mark.parametrize(
    ("phrase", "start", "end"),
    [
        ("this week", "2024-01-06", "2024-01-12"),
        ("yesterday", "2024-01-11", "2024-01-12"),
        ("today", "2024-01-12", "2024-01-12"),
        ("last week", "2024-01-02", "2024-01-08"),
        ("on Monday", "2024-01-08", "2024-01-09"),
        ("last month", "2023-12-01", "2023-12-31"),
        ("this month", "2024-01-01", "2024-01-12"),
        ("in March", "2023-03-01", "2023-03-31"),
        ("in November 2023", "2023-11-01", "2023-11-30"),
        ("this year", "2024-01-01", "2024-01-12"),
        ("in 2022", "2022-01-01", "2022-12-31"),
        ("three days ago", "2024-01-09", "2024-01-10"),
    ],
)
def test_relative_time_phrases_resolve_against_the_as_of_date(
    phrase: str, start: str, end: str
) -> None:
    as_of = date(2024, 1, 12)  # a Friday
    window = question_window(f"What did the minister announce {phrase}?", as_of)
    assert window == (date.fromisoformat(start), date.fromisoformat(end))


def test_a_question_without_a_period_has_no_window() -> None:
    assert question_window("Who is the mayor of Weekford?", date(2024, 1, 12)) is None


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_as_of_excludes_later_articles_on_the_bundled_corpus(assistant: Assistant) -> None:
    question = "What did Khrenin say about India?"
    later = assistant.retrieve(question, 5, filters=build_filters(as_of="2030-01-01"))
    assert any(h.doc.published == "2025-06-28" for h in later.hits)
    before = assistant.retrieve(question, 5, filters=build_filters(as_of="2025-06-27"))
    assert before.hits
    assert all(h.doc.published <= "2025-06-27" for h in before.hits)
    none = assistant.ask(question, filters=build_filters(as_of="2020-01-01", until="2020-01-01"))
    assert not none.answered


def test_cli_rejects_a_bad_as_of(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from qa.cli import app

    result = CliRunner().invoke(app, ["search", "ferry", "--as-of", "2024-02-30"])
    assert result.exit_code == 1
    assert "as_of must be a date as YYYY-MM-DD" in result.output


def test_realtimeqa_asks_each_question_on_its_own_date(tmp_path: Path) -> None:
    import json

    from qa.core.config import load_settings
    from qa.evaluation.runner import eval_realtimeqa

    data = tmp_path / "rtqa"
    data.mkdir()
    later = {
        "url": "https://example.org/result",
        "title": "Ferry terminal result",
        "text": "The harbour authority opened the ferry terminal; the mayor was Ana Ruiz.",
        "publish_date": "2024/01/20",  # after the question was asked
    }
    question = {
        "question_id": "20240112_0",
        "question_date": "2024/01/12",
        "question_sentence": "Who was the mayor when the harbour ferry terminal opened?",
        "choices": ["Ana Ruiz", "Bo Li", "Cy Young", "Di Ross"],
        "answer": ["0"],
    }
    (data / "20240112_qa.jsonl").write_text(json.dumps(question) + "\n", encoding="utf-8")
    (data / "20240112_gcs.jsonl").write_text(
        json.dumps({"question_id": "20240112_0", "search_result": [later]}) + "\n",
        encoding="utf-8",
    )
    settings = load_settings(
        overrides={"paths.index": str(tmp_path / "idx" / "main"), "embedding.model": "fake"},
        env={},
    )
    assistant = Assistant(settings, embedder=FakeEmbedder(name="fake"))
    asked = eval_realtimeqa(assistant, data, None, tmp_path / "asked")
    assert asked["summary"]["overall"]["answer_recall"] == 0.0  # the news did not exist yet
    record = json.loads((tmp_path / "asked" / "predictions.jsonl").read_text().splitlines()[0])
    assert record["multiple_choice"]["filters"]["as_of"] == "2024-01-12"
    unlimited = eval_realtimeqa(assistant, data, None, tmp_path / "none", as_of="none")
    assert unlimited["summary"]["overall"]["answer_recall"] == 1.0
