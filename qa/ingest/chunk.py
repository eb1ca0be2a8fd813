"""Document -> Chunks: sentence-aware, within a token budget of the embedding model, with overlap.

Chunks are cut from the cleaned segments of an article only, sentence by sentence, so each
chunk's ``start``/``end`` are exact offsets into ``Document.text``. The budget is counted with the
embedding model's own tokenizer and includes the title when titles are embedded with the text,
so no chunk is ever silently truncated by the model (all-MiniLM-L6-v2 reads 256 word pieces).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Protocol

from qa.core.types import Chunk, Document
from qa.text.sentences import sentence_spans

if TYPE_CHECKING:
    from qa.core.config import ChunkSettings

TokenCounter = Callable[[Sequence[str]], list[int]]


class ModelTokenizer(Protocol):
    """What chunking needs of the embedding model (an ``Embedder`` is one): its tokenizer's
    counts and how many word pieces it reads. Chunking does not depend on the embedders."""

    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

# Titles longer than this (in tokens) are cut in the embedded text, never the passage itself.
MAX_TITLE_TOKENS = 48
# Text longer than this (in characters) is never counted in one tokenizer call (see below);
# a budget of 256 word pieces is rarely more than ~2,000 characters.
LONG_CHARS = 4096


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    tokens: int


def _split_long(
    text: str, span: tuple[int, int], budget: int, count: TokenCounter, known: dict[str, int]
) -> list[Sentence]:
    """Cut a sentence longer than the budget at word boundaries into pieces that fit (or keep
    it whole when it fits). ``known`` caches word sizes across the sentences of a document."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[span[0] : span[1]])]
    sizes = word_sizes([text[span[0] + s : span[0] + e] for s, e in words], count, known)
    pieces: list[Sentence] = []
    first, used = 0, 0
    for i, size in enumerate(sizes):
        size = min(size, budget)  # a single monstrous "word" still becomes its own piece
        if used and used + size > budget:
            pieces.append(Sentence(span[0] + words[first][0], span[0] + words[i - 1][1], used))
            first, used = i, 0
        used += size
    if words:
        pieces.append(Sentence(span[0] + words[first][0], span[0] + words[-1][1], used))
    return pieces


def word_sizes(
    words: Sequence[str], count: TokenCounter, known: dict[str, int] | None = None
) -> list[int]:
    """Tokens of each whitespace-free word, counting each distinct word once.

    A word-piece tokenizer splits text at whitespace first, so a run of words has the sum of
    their sizes. Prose repeats its words (a 1 MB line holds ~170k words but ~15k distinct ones),
    and one tokenizer call per word, not per occurrence, keeps a long line linear and fast.
    """
    size_of = {} if known is None else known
    new = [w for w in dict.fromkeys(words) if w not in size_of]
    size_of.update(zip(new, count(new), strict=True))
    return [size_of[w] for w in words]


def embedded_title(title: str, count: TokenCounter) -> str:
    """The title as embedded: cut at a word boundary to at most MAX_TITLE_TOKENS word pieces."""
    if not title or (len(title) <= LONG_CHARS and count([title])[0] <= MAX_TITLE_TOKENS):
        return title
    words = list(re.finditer(r"\S+", title))
    end, used = 0, 0
    for word, size in zip(words, word_sizes([w.group() for w in words], count), strict=True):
        if used + size > MAX_TITLE_TOKENS:
            break
        end, used = word.end(), used + size
    return title[:end]


def embed_text(title: str, text: str, with_title: bool) -> str:
    """The text handed to the embedder for a chunk: the title first, when enabled."""
    return f"{title}\n{text}" if with_title and title else text


def chunk_document(
    doc: Document,
    count: TokenCounter,
    *,
    max_tokens: int,
    overlap_tokens: int,
    model_max_tokens: int = 256,
    with_title: bool = True,
) -> list[Chunk]:
    """Split ``doc`` into chunks of whole sentences whose embedded text fits ``max_tokens``.

    Consecutive chunks share trailing sentences worth up to ``overlap_tokens``. A sentence longer
    than the budget is cut at word boundaries rather than truncated.
    """
    # Two special tokens ([CLS], [SEP]) are added by the model around every input.
    limit = min(max_tokens, model_max_tokens - 2)
    title_tokens = 0
    title = embedded_title(doc.title, count) if with_title else ""
    if title:
        title_tokens = count([title])[0] + 1
    budget = max(16, limit - title_tokens)

    spans = [span for s, e in doc.segments for span in sentence_spans(doc.text, s, e)]
    from qa.ingest.clean import heading_segments  # here: `qa search` needs no ingest code

    headings = heading_segments(doc.text, doc.segments)
    starts, ends = {s for s, _ in headings}, {e for _, e in headings}
    # Very long "sentences" (a line without full stops) are never handed to the tokenizer
    # whole: its cost grows faster than the length. They are measured word by word instead.
    short = [span for span in spans if span[1] - span[0] <= LONG_CHARS]
    size_of = dict(zip(short, count([doc.text[s:e] for s, e in short]), strict=True))
    sentences: list[Sentence] = []
    known: dict[str, int] = {}
    for span in spans:
        size = size_of.get(span)
        if size is None or size > budget:
            sentences.extend(_split_long(doc.text, span, budget, count, known))
        else:
            sentences.append(Sentence(span[0], span[1], size))

    groups: list[list[Sentence]] = []
    current: list[Sentence] = []
    used = 0
    for sentence in sentences:
        # +1: a joining space can add a token at most.
        if current and used + sentence.tokens + 1 > budget:
            groups.append(current)
            current = _overlap(current, overlap_tokens, budget - sentence.tokens - 1)
            used = sum(s.tokens + 1 for s in current)
        current.append(sentence)
        used += sentence.tokens + 1
    if current:
        groups.append(current)

    return [
        Chunk(
            id=f"{doc.id}:{i}",
            doc_id=doc.id,
            ordinal=i,
            text=joined(doc.text, group, starts, ends),
            start=group[0].start,
            end=group[-1].end,
        )
        for i, group in enumerate(groups)
    ]


def joined(text: str, group: list[Sentence], starts: set[int], ends: set[int]) -> str:
    """A chunk's text: its sentences joined by a space, and by a blank line around a heading
    (``starts``/``ends``: of the heading lines), so a heading stays a block of its own that
    every sentence splitter ends (:func:`passage_sentences`) instead of running it into the
    paragraph it heads."""
    parts = [text[group[0].start : group[0].end]]
    for before, sentence in pairwise(group):
        parts.append("\n\n" if sentence.start in starts or before.end in ends else " ")
        parts.append(text[sentence.start : sentence.end])
    return "".join(parts)


def _overlap(previous: list[Sentence], overlap_tokens: int, room: int) -> list[Sentence]:
    """Trailing sentences of the previous chunk to repeat, within the overlap and the room left."""
    kept: list[Sentence] = []
    used = 0
    for sentence in reversed(previous[1:]):  # never the whole chunk: the next one must advance
        if used + sentence.tokens + 1 > min(overlap_tokens, room):
            break
        kept.insert(0, sentence)
        used += sentence.tokens + 1
    return kept


def chunks_for(doc: Document, model: ModelTokenizer, settings: ChunkSettings) -> list[Chunk]:
    """The chunks the index stores for ``doc``: the configured budget, counted with the
    embedding model's own tokenizer and capped by what the model reads."""
    return chunk_document(
        doc,
        model.count_tokens,
        max_tokens=settings.max_tokens,
        overlap_tokens=settings.overlap_tokens,
        model_max_tokens=model.max_tokens,
        with_title=settings.embed_title,
    )
