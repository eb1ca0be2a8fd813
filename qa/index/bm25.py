"""BM25 analysis: how text becomes keyword tokens, for the index and for queries alike."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import numpy as np

from qa.text import bm25_stopwords, stemmer


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased, stop words removed, Snowball-stemmed word tokens (numbers kept)."""
    stop = bm25_stopwords()
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in stop]
    return list(stemmer().stemWords(words))


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
