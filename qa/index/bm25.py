"""BM25 analysis and postings: how text becomes keyword tokens (for the index and for queries
alike), and the term-frequency postings each segment stores.

A segment stores raw term frequencies and document lengths, not BM25 scores: a score depends on
the whole index (document frequency, number of documents, average length), which changes with
every ingest. Storing counts lets a new segment be written from its own chunks only, and the
reader (qa.index.bm25_read) scores with statistics over all live chunks of all segments, so the
ranking is the one a single index of the same chunks would give.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.text.words import bm25_stopwords, stemmer


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased, stop words removed, Snowball-stemmed word tokens (numbers kept)."""
    stop = bm25_stopwords()
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in stop]
    return list(stemmer().stemWords(words))


def indexed_text(title: str, published: str, text: str) -> str:
    # Titles and dates are indexed with the passage: news questions often name the event.
    return f"{title} {published} {text}"


@dataclass(frozen=True)
class Postings:
    """Term frequencies of one segment's chunks (by local position): the chunks holding term
    ``t`` are ``docs[indptr[t]:indptr[t+1]]`` (ascending), with counts ``tf[...]``."""

    terms: list[str]
    indptr: np.ndarray  # int64, len(terms) + 1
    docs: np.ndarray  # int32
    tf: np.ndarray  # float32 (bm25s scores in float32)
    lengths: np.ndarray  # int32, tokens per chunk

    @classmethod
    def from_tokens(cls, tokens: Sequence[Sequence[str]]) -> Postings:
        vocab: dict[str, int] = {}
        term_ids = np.fromiter(
            (vocab.setdefault(t, len(vocab)) for toks in tokens for t in toks), dtype=np.int64
        )
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int32, count=len(tokens))
        doc_ids = np.repeat(np.arange(len(tokens), dtype=np.int64), lengths)
        return cls._from_pairs(list(vocab), term_ids, doc_ids, None, lengths)

    @classmethod
    def _from_pairs(
        cls,
        terms: list[str],
        term_ids: np.ndarray,
        doc_ids: np.ndarray,
        counts: np.ndarray | None,
        lengths: np.ndarray,
    ) -> Postings:
        """From (term, doc[, count]) pairs in any order, repeats added up."""
        key = term_ids * max(1, len(lengths)) + doc_ids
        if counts is None:
            unique, tf = np.unique(key, return_counts=True)
        else:
            order = np.argsort(key, kind="stable")
            unique, starts = np.unique(key[order], return_index=True)
            tf = np.add.reduceat(counts[order], starts) if len(order) else counts[:0]
        terms_of = unique // max(1, len(lengths))
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms_of, minlength=len(terms)), out=indptr[1:])
        docs = (unique % max(1, len(lengths))).astype(np.int32)
        return cls(terms, indptr, docs, tf.astype(np.float32), lengths.astype(np.int32))

    @classmethod
    def load(cls, folder: Path) -> Postings:
        return cls(
            terms=json.loads((folder / "terms.json").read_text(encoding="utf-8")),
            indptr=np.load(folder / "indptr.npy", mmap_mode="r"),
            docs=np.load(folder / "docs.npy", mmap_mode="r"),
            tf=np.load(folder / "tf.npy", mmap_mode="r"),
            lengths=np.load(folder / "lengths.npy"),
        )


def save(postings: Postings, folder: Path) -> None:
    folder.mkdir()
    (folder / "terms.json").write_text(json.dumps(postings.terms), encoding="utf-8")
    for name in ("indptr", "docs", "tf", "lengths"):
        np.save(folder / f"{name}.npy", getattr(postings, name))


def merge(parts: Sequence[tuple[Postings, np.ndarray]]) -> Postings:
    """One segment's postings from several, keeping the chunks each ``keep`` mask selects, in
    order (no text is tokenised again)."""
    vocab: dict[str, int] = {}
    term_ids, doc_ids, counts, lengths = [], [], [], []
    offset = 0
    for postings, keep in parts:
        remap = np.fromiter(
            (vocab.setdefault(t, len(vocab)) for t in postings.terms),
            dtype=np.int64,
            count=len(postings.terms),
        )
        new_doc = np.where(keep, np.cumsum(keep) - 1 + offset, -1)
        per_term = np.diff(np.asarray(postings.indptr))
        terms = np.repeat(remap, per_term)
        docs = new_doc[np.asarray(postings.docs)]
        live = docs >= 0
        term_ids.append(terms[live])
        doc_ids.append(docs[live])
        counts.append(np.asarray(postings.tf)[live])
        lengths.append(np.asarray(postings.lengths)[keep])
        offset += int(keep.sum())
    return Postings._from_pairs(
        list(vocab),
        np.concatenate(term_ids) if term_ids else np.zeros(0, np.int64),
        np.concatenate(doc_ids) if doc_ids else np.zeros(0, np.int64),
        np.concatenate(counts) if counts else np.zeros(0, np.float32),
        np.concatenate(lengths) if lengths else np.zeros(0, np.int32),
    )
