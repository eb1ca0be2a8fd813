"""The BM25 reader scores and orders exactly as bm25s does over the same chunks, on a real
saved index."""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np
import pytest
from bm25s.stopwords import STOPWORDS_EN

from qa.index import LocalIndex, bm25_tokens
from qa.index.bm25 import indexed_text
from qa.text.words import bm25_stopwords

ROOT = Path(__file__).resolve().parents[2]


def test_stop_words_are_those_of_bm25s() -> None:
    assert bm25_stopwords() == frozenset(STOPWORDS_EN)


@pytest.mark.slow
def test_same_results_as_bm25s(corpus_index: Path) -> None:
    index = LocalIndex.open(corpus_index)
    ours = index.bm25
    texts = dict(
        (row, indexed_text(title, published, text))
        for row, title, published, text in index.db.execute(
            "SELECT c.row, d.title, d.published, c.text "
            "FROM chunks c JOIN docs d ON d.id = c.doc_id"
        )
    )
    theirs = bm25s.BM25()  # bm25s indexing the same chunks, in the index's position order
    theirs.index([bm25_tokens(texts[int(r)]) for r in index.ids], show_progress=False)
    gold = (ROOT / "eval" / "gold.jsonl").read_text().splitlines()
    queries = [json.loads(line)["question"] for line in gold if line]
    queries += ["India India Belarus", "zzzz unknown words only", "the of and"]
    k = min(20, len(index))
    for query in queries:
        tokens = bm25_tokens(query)
        positions, scores = ours.top_k(tokens, k)
        if not tokens:
            assert not scores.any()
            continue
        expected_pos, expected_scores = theirs.retrieve([tokens], k=k, show_progress=False)
        np.testing.assert_array_equal(scores, expected_scores[0])
        np.testing.assert_array_equal(positions, expected_pos[0])
        np.testing.assert_array_equal(ours.scores(tokens), theirs.get_scores(tokens))
