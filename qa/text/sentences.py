"""Sentences: the one Punkt tokenizer (English) and the sentence spans of a text, used by
chunking, the retrieval rerank, the answer check and the extractive reader alike."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any


@cache
def sentence_tokenizer() -> Any:
    """The one Punkt sentence tokenizer (English), loaded once for chunking and the extractive
    client alike."""
    import punkt

    return punkt.tokenizer_for("english")


# A blank line ends a sentence: Punkt alone runs a heading into the next line.
BLOCK_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")


@lru_cache(maxsize=4096)
def passage_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """Punkt's sentence spans of a stored passage (offsets into it), each block between blank
    lines split on its own (a heading is such a block: see :func:`qa.ingest.chunk.joined`);
    memoised: a question's passages are split by the retrieval rerank and again by the
    extractive client, and a server sees the same passages again (Punkt costs ~0.2 ms a
    passage)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for brk in [*BLOCK_BREAK.finditer(text), None]:
        end = brk.start() if brk else len(text)
        block = sentence_tokenizer().span_tokenize(text[pos:end])
        spans.extend((pos + s, pos + e) for s, e in block)
        pos = brk.end() if brk else end
    return tuple(spans)


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` as offsets into ``text``, whitespace trimmed."""
    spans = []
    for s, e in sentence_tokenizer().span_tokenize(text[start:end]):
        piece = text[start + s : start + e]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if e - trail > s + lead:
            spans.append((start + s + lead, start + e - trail))
    return spans
