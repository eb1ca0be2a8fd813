"""BM25 analysis: how text becomes keyword tokens, for the index and for queries alike."""

from __future__ import annotations

import re
import sqlite3
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np


@cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


# Not qa.text.STOPWORDS on purpose: this is bm25s's stock English list, which the stored index
# was tokenized with (changing it would change every stored posting), and it keeps words such
# as "said" and "question" that qa.text drops only for judging a sentence's content.
@cache
def _stopwords() -> frozenset[str]:
    from qa.bm25_read import stopwords_en  # without importing bm25s (slow) at question time

    return stopwords_en()


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased, stop words removed, Snowball-stemmed word tokens (numbers kept)."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in _stopwords()]
    return list(_stemmer().stemWords(words))


def corpus_tokens(conn: sqlite3.Connection, ids: np.ndarray) -> list[list[str]]:
    # Titles and dates are indexed with the passage: news questions often name the event.
    rows = dict(
        conn.execute(
            "SELECT c.row, d.title || ' ' || d.published || ' ' || c.text "
            "FROM chunks c JOIN docs d ON d.id = c.doc_id"
        ).fetchall()
    )
    return [bm25_tokens(rows[int(r)]) for r in ids]


def save(tokens: list[list[str]], path: Path) -> None:
    import bm25s

    retriever = bm25s.BM25()
    # bm25s cannot index an empty corpus; an empty index is represented by no folder.
    if tokens:
        retriever.index(tokens, show_progress=False)
        retriever.save(str(path), show_progress=False)
    else:
        path.mkdir()
