"""The Assistant: the one entry point the CLI, the eval harness and the server all call.

question -> Hits -> numbered passages in one prompt -> completion -> Answer with checked
citations; at most one model call per question, none when nothing relevant was retrieved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from qa.answering.rewrite import rewrite
from qa.core.config import Settings, load_settings
from qa.core.types import Answer, Completion, Document, Filters, Hit, QAError, Usage
from qa.embedding import create_embedder
from qa.embedding.base import Embedder
from qa.index import Index, index_version, open_index
from qa.llm import prompts
from qa.llm.base import LLM, create
from qa.retrieval.retriever import Retrieval, Retriever
from qa.text.words import content_terms

# Friendly names accepted by ``Assistant.from_config`` next to dotted setting names.
SHORTCUTS = {"llm": "llm.client", "k": "retrieval.k", "index": "paths.index"}


class Assistant:
    """Answers questions from the index. Models load once, on first use; safe to share
    between threads (the server does)."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        llm: LLM | None = None,
        calibrated: bool = True,
    ) -> None:
        self.settings = settings
        # False: the client's short answer and pick go out unjudged, with no confidence (the
        # training script reads them so; everything else judges them, see qa.answering.confidence).
        self.calibrated = calibrated
        self.embedder = embedder or create_embedder(settings.embedding)
        self._llm = llm
        self._index: Index | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> Assistant:
        """Settings from config.toml and ``QA_*`` variables, then ``overrides``: ``llm``, ``k``,
        ``index`` or any dotted setting name (``**{"retrieval.fusion": "dense"}``)."""
        dotted = {SHORTCUTS.get(k, k): v for k, v in overrides.items()}
        return cls(load_settings(path, dotted))

    # -- parts

    @property
    def index(self) -> Index:
        """The live index, re-opened when `qa ingest` has written a new generation."""
        with self._lock:
            live = index_version(self.settings)
            if self._index is None or (live is not None and live != self._index.version):
                self._index = open_index(self.settings, dim=self.embedder.dim)
            return self._index

    @property
    def llm(self) -> LLM:
        with self._lock:
            if self._llm is None:
                self._llm = create(self.settings.llm.client, self.settings, self.embedder)
            return self._llm

    def load_in_background(self) -> None:
        """Start loading the model client's own models in threads of their own, for a client
        that can (the extractive client's spaCy): a cold `qa ask` retrieves meanwhile."""
        start = getattr(self.llm, "load_in_background", None)
        if start is not None:
            start()

    def retriever(self) -> Retriever:
        return Retriever(self.index, self.embedder, self.settings.retrieval)

    def document(self, doc_id: str) -> Document | None:
        """A stored article, for showing a citation in context."""
        return self.index.document(doc_id)

    # -- asking

    def validate(self, question: str) -> str:
        """The question stripped, or a clear error for an empty or oversized one."""
        question = (question or "").strip()
        if not question:
            raise QAError("the question is empty")
        limit = self.settings.limits.max_question_chars
        if len(question) > limit:
            raise QAError(
                f"the question is {len(question)} characters long; the limit is {limit} "
                "(limits.max_question_chars)"
            )
        return question

    @staticmethod
    def validate_choices(choices: Sequence[str]) -> tuple[str, ...]:
        """The options, or a clear error: a multiple-choice question needs two or more
        different, non-empty options (one option would be "chosen" with certainty)."""
        if not choices:
            return ()
        options = tuple(str(c).strip() for c in choices)
        if len(options) < 2:
            raise QAError("multiple choice needs at least two options")
        blank = [n for n, option in enumerate(options, 1) if not option]
        if blank:
            raise QAError(f"option {blank[0]} is empty")
        seen: dict[str, int] = {}
        for n, option in enumerate(options, 1):
            if option.casefold() in seen:
                raise QAError(f"options {seen[option.casefold()]} and {n} are the same")
            seen[option.casefold()] = n
        return options

    def retrieve(
        self, question: str, k: int | None = None, *, filters: Filters | None = None
    ) -> Retrieval:
        return self.retriever().search(self.validate(question), k, filters=filters)

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        choices: Sequence[str] = (),
        filters: Filters | None = None,
    ) -> Answer:
        """Answer one question from the index, with checked citations; ``filters`` limit the
        articles it may draw on (as-of date, date bounds, sources)."""
        answer: Answer | None = None
        for item in self._run(question, k, choices, filters, streaming=False):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        choices: Sequence[str] = (),
        filters: Filters | None = None,
    ) -> Iterator[str | Answer]:
        """Text pieces as the model writes them, then the checked ``Answer`` (whose text may
        differ: unsupported sentences are dropped and citations attached, and a reply that
        only repeated the question may be replaced by a second try that is not streamed)."""
        return self._run(question, k, choices, filters, streaming=True)

    def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        k: int | None = None,
        filters: Filters | None = None,
    ) -> Answer:
        """Answer the last user message of a conversation, rewritten to stand on its own."""
        standalone, original = self._standalone(messages)
        answer = self.ask(standalone, k=k, filters=filters)
        return _with_rewrite(answer, original, standalone)

    def stream_chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        k: int | None = None,
        filters: Filters | None = None,
    ) -> Iterator[str | Answer]:
        standalone, original = self._standalone(messages)
        for item in self.stream(standalone, k=k, filters=filters):
            yield _with_rewrite(item, original, standalone) if isinstance(item, Answer) else item

    def _standalone(self, messages: Sequence[dict[str, str]]) -> tuple[str, str]:
        if not messages:
            raise QAError("the conversation has no messages")
        original = self.validate(
            next(
                (str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"),
                "",
            )
        )
        return self.validate(rewrite(messages, self.llm)), original

    def _run(
        self,
        question: str,
        k: int | None,
        choices: Sequence[str],
        filters: Filters | None,
        streaming: bool,
    ) -> Iterator[str | Answer]:
        question = self.validate(question)
        choices = self.validate_choices(choices)
        started = time.perf_counter()
        index = self.index
        retriever = Retriever(index, self.embedder, self.settings.retrieval)
        # With options, retrieve for the question with each option: the passage that decides
        # between them names one, and each option gets its chance to be found.
        retrieval = _merge(
            [retriever.search(f"{question} {c}", k, filters=filters) for c in choices]
            or [retriever.search(question, k, filters=filters)]
        )
        timings = dict(retrieval.timings_ms)
        llm = self.llm
        if not retrieval.hits:
            # Nothing relevant: a normal "cannot answer", and no model call.
            timings["total"] = (time.perf_counter() - started) * 1000
            yield Answer(
                question,
                prompts.CANNOT_ANSWER,
                False,
                (),
                (),
                llm.model,
                timings_ms=timings,
                filters=filters,
            )
            return

        # Imported here: `qa search` needs none of the answering code (nor the extractive
        # client it imports), and a cold search pays for every module it loads.
        from qa.answering.key_entity import missing_entity

        missing = "" if choices else missing_entity(question, retrieval.hits)
        if missing:
            # The passages are about someone else: no model call (see qa.answering.key_entity).
            timings["total"] = (time.perf_counter() - started) * 1000
            yield Answer(
                question,
                f"{prompts.CANNOT_ANSWER} The articles found do not mention the {missing}.",
                False,
                (),
                retrieval.hits,
                llm.model,
                timings_ms=timings,
                filters=filters,
            )
            return

        from qa.answering.check import build_prompt, check_answer
        from qa.answering.short_line import echoed_words

        t0 = time.perf_counter()
        prompt = build_prompt(
            question,
            retrieval.hits,
            choices=choices,
            context_window=llm.context_window,
            max_answer_tokens=self.settings.llm.max_answer_tokens,
            count_tokens=_token_counter(llm.model),
            # slow readers: qa.answering.compact
            passage_budget=getattr(llm, "passage_budget", None),
            term_weights=index.term_weights(
                content_terms(question).union(*(content_terms(c) for c in choices))
            ),
        )
        timings["prompt"] = (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        completion: Completion | None = None
        if streaming:
            for piece in llm.stream(prompt):
                if isinstance(piece, Completion):
                    completion = piece
                else:
                    yield piece
        else:
            completion = llm.generate(prompt)
        if completion is None:
            raise QAError(f"model client {llm.name!r} ended its stream without a completion")
        timings["generate"] = (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        documents: dict[str, Document | None] = {}

        def lookup(doc_id: str) -> Document | None:
            if doc_id not in documents:
                documents[doc_id] = index.document(doc_id)
            return documents[doc_id]

        checked = check_answer(
            completion.text, prompt.passages, lookup, choices, question, completion.alternatives
        )
        timings["check_citations"] = (time.perf_counter() - t0) * 1000
        steerable = not checked.answered and not choices and getattr(llm, "avoids_words", False)
        avoid = echoed_words(completion.text, question) if steerable else ()
        if avoid:
            # A second try (not streamed) with the echoed words barred; the model's KV cache
            # still holds the prompt, so it costs only the few tokens of the new reply.
            t0 = time.perf_counter()
            second = llm.generate(replace(prompt, avoid=avoid))
            retried = check_answer(second.text, prompt.passages, lookup, choices, question)
            timings["retry"] = (time.perf_counter() - t0) * 1000
            usage = Usage(
                completion.usage.prompt_tokens + second.usage.prompt_tokens,
                completion.usage.completion_tokens + second.usage.completion_tokens,
            )
            if retried.answered:
                checked = retried
            completion = replace(second if retried.answered else completion, usage=usage)
        confidence = None
        if self.calibrated:
            from qa.answering.confidence import judge

            t0 = time.perf_counter()
            bars = self.settings.answer
            checked, confidence = judge(
                question,
                choices,
                checked,
                prompt.passages,
                lookup,
                filters,
                bars.min_short_confidence,
                bars.min_choice_confidence,
            )
            timings["judge"] = (time.perf_counter() - t0) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        yield Answer(
            question=question,
            text=checked.text,
            answered=checked.answered,
            citations=checked.citations,
            passages=prompt.passages,
            model=completion.model,
            usage=completion.usage,
            timings_ms=timings,
            choice=checked.choice,
            unsupported=checked.unsupported,
            short_answer=checked.short_answer,
            short_citation=checked.short_citation,
            confidence=confidence,
            alternatives=checked.alternatives,
            filters=filters,
        )


def _merge(retrievals: Sequence[Retrieval]) -> Retrieval:
    """One list from several searches: rank 1 of each, then rank 2 of each ..., each passage
    once; stage timings are summed."""
    if len(retrievals) == 1:
        return retrievals[0]
    hits: dict[str, Hit] = {}
    for rank in range(max(len(r.hits) for r in retrievals)):
        for r in retrievals:
            if rank < len(r.hits) and r.hits[rank].chunk.id not in hits:
                hits[r.hits[rank].chunk.id] = replace(r.hits[rank], rank=len(hits) + 1)
    timings: dict[str, float] = {}
    for r in retrievals:
        for stage, ms in r.timings_ms.items():
            timings[stage] = timings.get(stage, 0.0) + ms
    return Retrieval(tuple(hits.values()), timings)


def _token_counter(model: str) -> Any:
    from qa.llm.tokens import count_tokens

    return lambda text: count_tokens(text, model)


def _with_rewrite(answer: Answer, original: str, standalone: str) -> Answer:
    if standalone == original:
        return answer
    return replace(answer, question=original, rewritten_question=standalone)
