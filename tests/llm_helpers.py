"""Builders for the model-client tests: hits and prompts made from plain passage texts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qa.core.types import Chunk, DocInfo, Hit, Prompt
from qa.llm.prompts import SYSTEM, USER, format_choices, format_passage


def make_hits(texts: Sequence[str | tuple[str, str]]) -> tuple[Hit, ...]:
    """One hit per passage text (or (title, text)); passage n is hits[n - 1]."""
    hits = []
    for rank, item in enumerate(texts, 1):
        title, text = item if isinstance(item, tuple) else (f"Article {rank}", item)
        doc_id = f"doc{rank}"
        start = 100 * rank  # an offset into the (imaginary) article
        chunk = Chunk(
            id=f"{doc_id}:0",
            doc_id=doc_id,
            ordinal=0,
            text=text,
            start=start,
            end=start + len(text),
        )
        doc = DocInfo(id=doc_id, title=title, published="2024-03-05", source="Test News")
        hits.append(Hit(chunk=chunk, doc=doc, score=1.0 / rank, rank=rank))
    return tuple(hits)


def make_prompt(
    question: str,
    texts: Sequence[str | tuple[str, str]],
    choices: Sequence[str] = (),
    max_tokens: int = 300,
    term_weights: Mapping[str, float] | None = None,
) -> Prompt:
    """A prompt built the way the pipeline builds one, with the texts of qa.llm.prompts."""
    hits = make_hits(texts)
    passages = "\n\n".join(
        format_passage(n, h.doc.title, h.doc.published, h.chunk.text) for n, h in enumerate(hits, 1)
    )
    user = USER.format(passages=passages, question=question, choices=format_choices(tuple(choices)))
    return Prompt(
        question=question,
        passages=hits,
        messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": user}),
        choices=tuple(choices),
        max_tokens=max_tokens,
        term_weights=dict(term_weights or {}),
    )


KHRENIN = (
    "Russian Foreign Minister Sergei Khrenin arrived in New Delhi on Tuesday for two days of "
    "talks. Khrenin said India is a priority for Moscow's foreign policy. The two sides "
    "discussed energy and defence cooperation."
)
MUMBAI = (
    "Mumbai floods\n\nHeavy rain flooded streets in Mumbai on Monday. The city authorities "
    "closed schools because the roads were under water. Forecasters expect more rain this week."
)
# The corpus repeats itself: a wire story that reprints the Khrenin sentence.
KHRENIN_REPRINT = (
    "Khrenin said India is a priority for Moscow's foreign policy. Analysts in Moscow said the "
    "visit was planned months ago."
)
UNRELATED = (
    "The central bank kept interest rates unchanged at its March meeting. Inflation slowed to "
    "three percent in February, the statistics office said."
)
