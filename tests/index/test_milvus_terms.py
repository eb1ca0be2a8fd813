"""The Milvus writer's table of passages per term (qa/index/milvus_terms.py): exact after every
kind of ingest, the same term weights as the local backend without a TEXT_MATCH scan per term,
and a run killed between its writes and its counts falls back to counting, then converges."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import check, check_term_counts, expected, run
from conftest import on_backend
from index_helpers import FAKE, article, make_corpus, write

from qa.core.config import Settings
from qa.index import open_index, remove
from qa.index.milvus_terms import STATE, TermCounts
from qa.text.words import content_terms

QUESTION = "Did the alpaca summit talks continue while a walrus was seen, or the badger treaty?"


def _settings(backend: str, tmp_path: Path, milvus_db: Path) -> Settings:
    base = replace(FAKE, paths=replace(FAKE.paths, index=tmp_path / backend))
    return on_backend(base, backend, milvus_db)


def _filters_seen(index: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The filter of every query the index's client runs from now on."""
    seen: list[str] = []
    query = index.client.query

    def spy(collection: str, **kwargs: Any) -> Any:
        seen.append(str(kwargs.get("filter", "")))
        return query(collection, **kwargs)

    monkeypatch.setattr(index.client, "query", spy)
    return seen


def test_term_weights_match_the_local_backend_after_adds_changes_and_removals(
    tmp_path: Path, milvus_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    local, milvus = (_settings(b, tmp_path, milvus_db) for b in ("local", "milvus"))
    for s in (local, milvus):
        run(s, [corpus])
    write(corpus, "delta.md", article("Delta pact", "dolphin", extra="A walrus swam."))
    text = (corpus / "alpha.md").read_text().replace("A walrus was seen.", "A zeppelin flew.")
    (corpus / "alpha.md").write_text(text)
    for s in (local, milvus):
        run(s, [corpus])
        remove(s.index_dir, ["charlie"], s)
    wanted = expected(corpus)
    del wanted["charlie"]
    index = check(milvus, wanted)  # the counts are those of the stored passages
    terms = content_terms(QUESTION)
    seen = _filters_seen(index, monkeypatch)
    weights = index.term_weights(terms)
    assert not any("TEXT_MATCH" in f for f in seen)  # one lookup, no scan per term
    assert weights == pytest.approx(open_index(local, dim=64).term_weights(terms))
    assert weights["walrus"] > weights["summit"] > weights["talk"]  # rarer weighs more


def test_an_ingest_killed_before_its_counts_falls_back_then_converges(
    tmp_path: Path, milvus_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings("milvus", tmp_path, milvus_db)
    corpus = make_corpus(tmp_path / "corpus")
    run(settings, [corpus])
    exact = open_index(settings, dim=64).term_weights(content_terms(QUESTION))

    def killed(self: TermCounts, delta: Any) -> None:
        raise KeyboardInterrupt  # stands for a kill after every passage is written

    write(corpus, "delta.md", article("Delta pact", "walrus"))
    with monkeypatch.context() as patch:
        patch.setattr(TermCounts, "apply", killed)
        with pytest.raises(KeyboardInterrupt):
            run(settings, [corpus])
    index = open_index(settings, dim=64)
    assert not TermCounts(index.client, settings, index.generation).exact()
    seen = _filters_seen(index, monkeypatch)
    counted = index.term_weights(content_terms(QUESTION))
    assert any("TEXT_MATCH" in f for f in seen)  # counted the slow way
    assert counted["walrus"] < exact["walrus"]  # the new article's walruses are counted

    assert not run(settings, [corpus]).changed  # every article was written: only a recount
    index = open_index(settings, dim=64)
    check_term_counts(index)
    assert index.term_weights(content_terms(QUESTION)) == pytest.approx(counted)


def test_an_index_from_before_the_table_gets_one_at_the_next_ingest(
    tmp_path: Path, milvus_db: Path
) -> None:
    settings = _settings("milvus", tmp_path, milvus_db)
    corpus = make_corpus(tmp_path / "corpus")
    run(settings, [corpus])
    index = open_index(settings, dim=64)
    table = TermCounts(index.client, settings, index.generation)
    index.client.drop_collection(table.name)
    assert not table.exact() and table.lookup(["walrus"]) is None
    assert index.term_weights(["walrus"])["walrus"] > 0  # TEXT_MATCH meanwhile
    run(settings, [corpus])
    check(settings, expected(corpus))


def test_a_table_is_never_marked_exact_before_its_counts_are_written(
    tmp_path: Path, milvus_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill at any point of a recount, or of an ingest that makes the table for an index
    that had none, must leave a table readers do not trust: "exact" comes after the counts."""
    settings = _settings("milvus", tmp_path, milvus_db)
    corpus = make_corpus(tmp_path / "corpus")
    run(settings, [corpus])
    index = open_index(settings, dim=64)
    table = TermCounts(index.client, settings, index.generation)
    writes: list[object] = []
    write = TermCounts._write

    def spy(self: TermCounts, counts: dict[str, int]) -> None:
        writes.append(counts[STATE] if list(counts) == [STATE] else "counts")
        write(self, counts)

    monkeypatch.setattr(TermCounts, "_write", spy)
    table.recount()
    assert writes == [0, "counts", 1]
    writes.clear()
    index.client.drop_collection(table.name)
    assert table.begin() is False
    assert writes[0] == 0 and 1 not in writes
