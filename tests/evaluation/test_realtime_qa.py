"""The RealTime QA loader, on a tiny folder in the benchmark's layout and on the real slice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from qa.answering.assistant import Assistant
from qa.evaluation.realtime_qa import (
    doc_id_for_url,
    list_weeks,
    load,
    read,
    skip_generation,
)

REAL = Path(__file__).resolve().parents[2].parent / "shared/benchmarks/realtimeqa/2024q1"

URL_A = "https://www.cnn.com/2024/01/03/world/a.html"
URL_D = "https://apnews.com/article/d"
URL_E = "https://www.BBC.co.uk/news/e"


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _q(qid: str, sentence: str, answer: list[str], date: str = "2024/01/05") -> dict[str, Any]:
    return {
        "question_id": qid,
        "question_date": date,
        "question_source": "CNN",
        "question_sentence": sentence,
        "choices": ["Red", "Green", "Blue", "Yellow"],
        "answer": answer,
        "evidence": "",
    }


def _art(url: str, text: str | None, date: str | None = "2024/01/03") -> dict[str, Any]:
    a: dict[str, Any] = {"url": url, "title": f" Title of {url[-6:]} ", "authors": []}
    if text is not None:
        a["text"] = text
    a["publish_date"] = date
    return a


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "rtqa"
    d.mkdir()
    _write(
        d / "20240105_qa.jsonl",
        [
            _q("20240105_0", "Which colour is the sky?", ["2"]),
            _q("20240105_1", "All of the following are primary colours, except", ["3"]),
        ],
    )
    _write(
        d / "20240105_gcs.jsonl",
        [
            {
                "question_id": "20240105_0",
                "search_time": "2024/01/05/23:29",
                "search_result": [
                    _art(URL_A, "First para.\n\nSecond para.\n"),
                    _art("https://example.com/empty", "   "),
                    _art("https://example.com/missing", None),
                ],
            },
            {
                "question_id": "20240105_1",
                "search_time": "2024/01/05/23:30",
                "search_result": [
                    _art(URL_A, "A different copy of A."),  # duplicate within the week
                    _art(URL_D, "Only paragraph", date="2024/02/30"),  # impossible date
                ],
            },
        ],
    )
    _write(
        d / "20240112_qa.jsonl",
        [_q("20240112_0", "Which colour is grass?", ["1"], date="2024/01/12")],
    )
    _write(
        d / "20240112_gcs.jsonl",
        [
            {
                "question_id": "20240112_0",
                "search_time": "2024/01/12/23:00",
                "search_result": [
                    _art(URL_A, "Yet another copy."),  # duplicate across weeks
                    _art(URL_E, "Grass is green.\nIt grows.", date=None),
                ],
            }
        ],
    )
    (d / "README.md").write_text("not a week", encoding="utf-8")
    return d


def test_list_weeks(folder: Path) -> None:
    assert list_weeks(folder) == ["20240105", "20240112"]


def test_load_all_weeks(folder: Path) -> None:
    questions, docs = load(folder)
    assert [q.id for q in questions] == ["20240105_0", "20240105_1", "20240112_0"]
    q0, q1, q2 = questions
    assert q0.week == "20240105" and q0.date == "2024-01-05"
    assert q0.choices == ("Red", "Green", "Blue", "Yellow")
    assert q0.answer == 2 and q0.gold == "Blue"
    assert not q0.skip_generation
    assert q1.skip_generation and q1.gold == "Yellow"
    assert q2.week == "20240112" and q2.date == "2024-01-12" and q2.gold == "Green"

    assert [d.url for d in docs] == [URL_A, URL_D, URL_E]
    a, d, e = docs
    assert a.id == "rt-" + hashlib.sha1(URL_A.encode()).hexdigest()[:12] == doc_id_for_url(URL_A)
    assert a.text == "First para.\n\nSecond para.\n"  # the first copy wins, text as given
    assert [a.text[s:t] for s, t in a.segments] == ["First para.", "Second para."]
    assert a.title == "Title of a.html"
    assert a.published == "2024-01-03"
    assert a.source == "cnn.com"
    assert a.path == f"{folder / '20240105_gcs.jsonl'}#{URL_A}"
    assert d.published == ""  # 2024/02/30 is not a date
    assert e.published == "" and e.source == "bbc.co.uk"
    assert len({x.id for x in docs}) == 3


def test_read_counts_skipped_and_duplicate_results(folder: Path) -> None:
    data = read(folder)
    assert data.weeks == ("20240105", "20240112")
    assert data.search_results == 7
    assert data.skipped_empty == 2
    assert data.duplicates == 2
    aid = doc_id_for_url(URL_A)
    assert data.results["20240105_0"] == (aid,)
    assert data.results["20240105_1"] == (aid, doc_id_for_url(URL_D))
    assert data.results["20240112_0"] == (aid, doc_id_for_url(URL_E))


def test_week_filter(folder: Path) -> None:
    questions, docs = load(folder, ["20240112"])
    assert [q.id for q in questions] == ["20240112_0"]
    # URL_A is new within this selection, so this week's copy is kept.
    assert [(d.url, d.text) for d in docs] == [
        (URL_A, "Yet another copy."),
        (URL_E, "Grass is green.\nIt grows."),
    ]
    assert load(folder, ["2024-01-12"]) == (questions, docs)
    both, _ = load(folder, ["20240112", "20240105", "20240112"])
    assert [q.week for q in both] == ["20240105", "20240105", "20240112"]


def test_unknown_week_lists_available(folder: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown week '20240119'.*20240105, 20240112"):
        load(folder, ["20240119"])
    with pytest.raises(ValueError, match="no week chosen"):
        load(folder, [])


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        list_weeks(tmp_path / "nope")
    (tmp_path / "notes.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no RealTime QA week.*YYYYMMDD_qa\.jsonl"):
        load(tmp_path)


def test_malformed_line_names_file_and_line(folder: Path) -> None:
    path = folder / "20240112_qa.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"20240112_qa\.jsonl:3: not valid JSON"):
        load(folder)


def test_bad_answer_and_missing_search_file(folder: Path) -> None:
    _write(folder / "20240112_qa.jsonl", [_q("20240112_0", "Which?", ["4"])])
    with pytest.raises(ValueError, match=r"20240112_qa\.jsonl:1: answer .* out of range"):
        load(folder, ["20240112"])
    (folder / "20240105_gcs.jsonl").unlink()
    with pytest.raises(ValueError, match=r"20240105_gcs\.jsonl is missing"):
        load(folder, ["20240105"])


def test_an_option_listed_twice_is_kept_once(folder: Path) -> None:
    # As 2024-02-23 #23 lists "New Orleans Pelicans" twice: the assistant refuses a question
    # with two equal options, so the reader keeps one and the answer follows its text.
    twice = _q("20240112_0", "Which team?", ["3"])
    twice["choices"] = ["76ers", "Magic", "Pelicans", " pelicans"]
    _write(folder / "20240112_qa.jsonl", [twice])
    question = load(folder, ["20240112"])[0][0]
    assert question.choices == ("76ers", "Magic", "Pelicans")
    assert question.answer == 2
    assert question.gold.strip() == "pelicans"
    Assistant.validate_choices(question.choices)  # what the eval asks with is accepted
    blank = _q("20240112_0", "Which?", ["0"])
    blank["choices"] = ["", "Red"]
    _write(folder / "20240112_qa.jsonl", [blank])
    with pytest.raises(ValueError, match=r"fewer than two different options"):
        load(folder, ["20240112"])


def test_segments_come_from_ingest_clean(folder: Path) -> None:
    url = "https://example.com/t"
    _write(
        folder / "20240112_gcs.jsonl",
        [{"question_id": "20240112_0", "search_result": [
            {"url": url, "title": "Big News", "text": "Big News\n\nBody line.\nAdvertisement\n",
             "publish_date": "2024/01/10"},
        ]}],
    )  # fmt: skip
    _, docs = load(folder, ["20240112"])
    (doc,) = docs
    # The repeated title and the ad line are dropped; offsets point into the stored text.
    assert [doc.text[s:e] for s, e in doc.segments] == ["Body line."]


def test_skip_generation_rule() -> None:
    assert skip_generation("Name all of these, EXCEPT ")
    assert skip_generation("All of the following happened except:")
    assert not skip_generation("Except for rain, what fell this week?")


def test_real_slice_first_four_weeks() -> None:
    weeks = list_weeks(REAL)
    assert len(weeks) == 13
    assert weeks[:4] == ["20240105", "20240112", "20240119", "20240126"]
    data = read(REAL, weeks[:4])
    assert len(data.questions) == 120
    assert len(data.documents) == 828
    assert len({d.id for d in data.documents}) == 828  # the short ids do not collide
    assert all(d.segments and d.published for d in data.documents)
    assert all(q.gold == q.choices[q.answer] for q in data.questions)


def test_the_benchmark_index_key_follows_what_makes_the_vectors(tmp_path: Path) -> None:
    from dataclasses import replace

    from qa.core.config import Settings
    from qa.evaluation.runner import realtimeqa_index_dir

    base = Settings()
    emb = base.embedding

    def key(settings: Settings) -> Path:
        return realtimeqa_index_dir(tmp_path, tmp_path / "2024q1", ("20240105",), settings)

    same = [
        replace(base, embedding=replace(emb, runtime="torch")),
        replace(base, embedding=replace(emb, backend="openai")),
        replace(base, embedding=replace(emb, openai=replace(emb.openai, concurrency=9))),
        # How many threads or texts at a time compute them changes no vector (the index of a
        # run with QA_EMBEDDING_THREADS=2 was not found by the next run without it).
        replace(base, embedding=replace(emb, threads=2, batch_size=8, device="cuda")),
    ]
    assert {key(s) for s in same} == {key(base)}
    # An fp32 index keeps the name it had before precision was a setting (those indexes
    # take hours to build): the hash of the embedding settings as they were then.
    assert key(base).name == "realtimeqa-2024q1-" + _key_before_precision(tmp_path / "2024q1")
    other_model = replace(base, embedding=replace(emb, model="other/model"))
    other_chunks = replace(base, chunking=replace(base.chunking, max_tokens=100))
    int8 = replace(base, embedding=replace(emb, precision="int8"))
    assert len({key(base), key(other_model), key(other_chunks), key(int8)}) == 4


def _key_before_precision(data: Path) -> str:
    import hashlib
    import json

    embedding = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "path": "",
        "batch_size": 32,
        "device": "cpu",
        "threads": 0,
    }
    chunking = {"max_tokens": 200, "overlap_tokens": 40, "embed_title": True}
    raw = json.dumps([str(data.resolve()), ["20240105"], [embedding, chunking]], sort_keys=True)
    return hashlib.sha1(raw.encode()).hexdigest()[:10]
