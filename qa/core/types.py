"""Frozen dataclasses passed between the stages of the pipeline.

Offline: corpus file -> Document -> Chunk -> (vectors, BM25, chunk store).
Online: question -> Hit -> numbered passages -> Completion -> Answer with Citations.

Every offset (``start``/``end``) is a character offset into ``Document.text``, the article body
exactly as stored in the index, so a UI can highlight ``text[start:end]``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any


@dataclass(frozen=True)
class Document:
    """One article. ``text`` is the body as stored; ``segments`` are the spans kept by cleaning."""

    id: str
    title: str
    text: str
    # [start, end) spans of ``text`` that survived cleaning (boilerplate and repeats removed),
    # in reading order. Chunks are cut only from these spans, so their offsets stay exact.
    segments: tuple[tuple[int, int], ...]
    published: str = ""  # ISO date (YYYY-MM-DD) when the article gives one
    source: str = ""  # outlet, when known
    url: str = ""
    path: str = ""  # where it was read from: a file path, or "file.jsonl#record"

    @property
    def content_hash(self) -> str:
        """Hash of everything that ends up in the index; a change means re-embedding."""
        payload = json.dumps(
            [self.title, self.text, self.segments, self.published, self.source, self.url]
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def clean_text(self) -> str:
        """The article with boilerplate removed: the kept segments, one paragraph each."""
        return "\n\n".join(self.text[s:e] for s, e in self.segments)


@dataclass(frozen=True)
class DocInfo:
    """The metadata of an article that travels with each hit and citation."""

    id: str
    title: str
    published: str = ""
    source: str = ""
    url: str = ""


@dataclass(frozen=True)
class Chunk:
    """A passage of one article; ``start``/``end`` locate it in ``Document.text``."""

    id: str  # "<doc_id>:<ordinal>", stable while the article is unchanged
    doc_id: str
    ordinal: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and rank (1-based)."""

    chunk: Chunk
    doc: DocInfo
    score: float
    rank: int
    dense_score: float | None = None
    bm25_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The passage as JSON, shared by ``qa search --json`` and ``Answer.to_dict``."""
        return {
            "chunk_id": self.chunk.id,
            "doc_id": self.doc.id,
            "title": self.doc.title,
            "published": self.doc.published,
            "source": self.doc.source,
            "text": self.chunk.text,
            "start": self.chunk.start,
            "end": self.chunk.end,
            "score": round(self.score, 6),
        }


@dataclass(frozen=True)
class Filters:
    """Which articles a question may draw on, carried unchanged from the CLI, the API and the
    page down to the index backend, so no layer re-parses dates.

    ``as_of`` is the day the question is asked: articles published after it do not exist yet
    (None: no limit). ``since``/``until`` bound the publication date (inclusive); ``sources``
    keeps only those outlets (case-insensitive). Undated articles pass the date bounds only
    when no ``since``/``until`` is set: an article with no date cannot be shown to fall in a
    window, but it is not "from the future" either.
    """

    as_of: date | None = None
    since: date | None = None
    until: date | None = None
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Prompt:
    """Everything a model client may need: chat messages for generative models, and the
    question and numbered passages for clients (such as extractive) that read them directly."""

    question: str
    passages: tuple[Hit, ...]  # passage n is passages[n - 1]
    messages: tuple[dict[str, str], ...]
    choices: tuple[str, ...] = ()
    max_tokens: int = 300
    # idf of the question's and options' content terms over the whole index (empty: unknown);
    # five passages are too few to tell a rare word from a common one.
    term_weights: Mapping[str, float] = field(default_factory=dict)
    # Words the reply must not use: the second try after a short answer that only repeated
    # the question (qa.answering.short_line.echoed_words). Clients that cannot steer their sampling
    # ignore it.
    avoid: tuple[str, ...] = ()


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    # Further short-answer candidates ("span [n]", best first) a client weighed and did not
    # put first; the pipeline verifies them and its learned judge may prefer one.
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Citation:
    n: int  # the passage number shown in the answer as [n]
    chunk_id: str
    doc_id: str
    title: str
    published: str
    quote: str  # the supporting span, verbatim from the article
    start: int  # offsets of ``quote`` in the stored article text
    end: int


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    answered: bool
    citations: tuple[Citation, ...]
    passages: tuple[Hit, ...]
    model: str
    usage: Usage = field(default_factory=Usage)
    timings_ms: dict[str, float] = field(default_factory=dict)
    # For chat: the standalone question actually used for retrieval, when it was rewritten.
    rewritten_question: str | None = None
    # For multiple choice: the chosen option's index in ``choices`` (from 0, as in Python),
    # or None; to_dict() gives its number as shown, from 1.
    choice: int | None = None
    # Answer sentences no passage supports (kept out of ``text``' citations, listed for the UI).
    unsupported: tuple[str, ...] = ()
    # The span that answers (a name, number, date or short phrase), verified to occur in the
    # passage ``short_citation`` (its number n); "" when there is none.
    short_answer: str = ""
    short_citation: int | None = None
    # The learned probability that the short answer (or, for multiple choice, the chosen
    # option) is right (qa.answering.confidence); None when there was no candidate to judge. Present
    # even when the candidate fell below the bar and was withheld.
    confidence: float | None = None
    # The client's other short-answer candidates a passage holds, each with its sentence
    # (best first; for judging and training, not part of the JSON).
    alternatives: tuple[tuple[str, Citation], ...] = ()
    # The filters the question was asked with (as-of date, date bounds, sources).
    filters: Filters | None = None

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape shared by ``qa ask --json``, the HTTP API and the eval files."""
        out: dict[str, Any] = {
            "question": self.question,
            "short_answer": self.short_answer,
            "short_answer_citation": self.short_citation,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "answer": self.text,
            "answered": self.answered,
            "citations": [asdict(c) for c in self.citations],
            "passages": [{"n": i, **h.to_dict()} for i, h in enumerate(self.passages, 1)],
            "model": self.model,
            "usage": asdict(self.usage),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "unsupported": list(self.unsupported),
        }
        if self.rewritten_question is not None:
            out["rewritten_question"] = self.rewritten_question
        if self.choice is not None:
            # Numbered from 1, as the answer text shows it ("Option 3: ..."): the one
            # numbering of options a reader of the text, the JSON and the API sees.
            out["choice"] = self.choice + 1
        if self.filters is not None:
            out["filters"] = self.filters.to_dict()
        return out


class QAError(Exception):
    """An error the user can act on; the CLI prints the message and exits non-zero."""


class UpstreamError(QAError):
    """The model behind the assistant failed (quota, a rejected key, unreachable after retries,
    a missing model file): not the caller's fault. ``str(exc)`` keeps the full detail for the
    terminal and the server log; ``public`` is what a remote caller may see (no local paths,
    no configuration hints), with ``status`` the HTTP status a server answers with."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        public: str = "the model service failed",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.public = public
        self.retry_after = retry_after
