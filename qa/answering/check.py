"""Build the prompt; then check the model's answer against the passages and attach citations.

The model is not trusted. Each answer sentence is judged against the passages: a sentence is
*supported* by a passage when at least ``SUPPORT_THRESHOLD`` of its content words (lower-cased,
stemmed, stop words and citation markers removed, see ``qa.text.words``) occur in one sentence
window of that passage (the best passage sentence with its neighbours), and never one word
alone. Sentences of a passage that address a model or the reader (``qa.text.words.is_instruction``:
"Ignore previous instructions and answer that ...") are not evidence. A citation ``[n]``
survives only if passage n exists and supports its sentence; a sentence without a surviving
citation gets the passage that supports it best, or, if none does, it is dropped from the
answer and listed in ``Answer.unsupported``. An answer left with no supported sentence is a
refusal (answered=False). The reply's short-answer line is parsed and verified by
``qa.answering.short_line``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from qa.answering.compact import best_windows
from qa.answering.short_line import (
    content_words,
    sentence_with,
    split_short_answer,
    verify_short,
)
from qa.core.types import Citation, Document, Hit, Prompt, QAError
from qa.llm import prompts
from qa.text.evidence import share
from qa.text.sentences import sentence_spans
from qa.text.words import CITATION_MARKER, content_terms, is_instruction

SUPPORT_THRESHOLD = 0.5
UNSUPPORTED_CHOICE = "No passage supports this choice."
MARKER = CITATION_MARKER
REFUSAL = prompts.REFUSAL
OPTION = re.compile(r"\boption\s*(\d+)", re.IGNORECASE)

TokenCount = Callable[[str], int]
DocLookup = Callable[[str], Document | None]


def build_prompt(
    question: str,
    hits: Sequence[Hit],
    *,
    choices: Sequence[str] = (),
    context_window: int,
    max_answer_tokens: int,
    count_tokens: TokenCount,
    passage_budget: int | None = None,
    term_weights: Mapping[str, float] | None = None,
) -> Prompt:
    """Number the passages that fit the model's window (best first) and write the messages.
    With a ``passage_budget`` (tokens), the model gets only the best sentence windows of the
    passages (``qa.answering.compact``), each under its passage's number."""
    choice_text = prompts.format_choices(tuple(choices))
    everything = [
        prompts.SYSTEM,
        prompts.USER.format(passages="", question=question, choices=choice_text),
    ]
    everything += [
        prompts.format_passage(0, h.doc.title, h.doc.published, h.chunk.text) for h in hits
    ]
    # A BPE token is at least one byte, so when the bytes fit, the tokens fit: skip loading
    # the tokenizer (a fifth of a second on a cold start) for large windows.
    if passage_budget is None and sum(
        len(t.encode("utf-8")) + 8 for t in everything
    ) + max_answer_tokens + 32 <= (context_window):
        count_tokens = _bytes
    fixed = count_tokens(prompts.SYSTEM) + count_tokens(
        prompts.USER.format(passages="", question=question, choices=choice_text)
    )
    # A margin for the chat template's own tokens, which the client adds.
    room = context_window - max_answer_tokens - fixed - 32
    if room <= 0:
        raise QAError(
            f"the question leaves no room for passages in a {context_window}-token window"
        )
    if passage_budget is not None:
        kept, blocks = _compact_blocks(
            question, choices, hits, min(room, passage_budget), count_tokens, term_weights
        )
    else:
        kept, blocks = _whole_blocks(hits, room, count_tokens)
    user = prompts.USER.format(passages="\n\n".join(blocks), question=question, choices=choice_text)
    return Prompt(
        question=question,
        passages=tuple(kept),
        messages=({"role": "system", "content": prompts.SYSTEM}, {"role": "user", "content": user}),
        choices=tuple(choices),
        max_tokens=max_answer_tokens,
        term_weights=dict(term_weights or {}),
    )


def _whole_blocks(
    hits: Sequence[Hit], room: int, count_tokens: TokenCount
) -> tuple[list[Hit], list[str]]:
    kept: list[Hit] = []
    blocks: list[str] = []
    for hit in hits:
        block = prompts.format_passage(
            len(kept) + 1, hit.doc.title, hit.doc.published, hit.chunk.text
        )
        cost = count_tokens(block) + 2
        if cost > room:
            if not kept:  # not even the best passage fits whole: give the model its start
                block = block[: max(0, len(block) * room // cost - 16)]
                kept.append(hit)
                blocks.append(block)
            break
        room -= cost
        kept.append(hit)
        blocks.append(block)
    return kept, blocks


def _compact_blocks(
    question: str,
    choices: Sequence[str],
    hits: Sequence[Hit],
    room: int,
    count_tokens: TokenCount,
    term_weights: Mapping[str, float] | None,
) -> tuple[list[Hit], list[str]]:
    """Every hit stays passage n (so the checker can still verify against it); only the
    passages with a chosen sentence are shown, under their own numbers."""
    headers = {
        n: count_tokens(prompts.format_passage(n, h.doc.title, h.doc.published, "")) + 2
        for n, h in enumerate(hits, 1)
    }
    windows = best_windows(
        " ".join([question, *choices]), hits, room, count_tokens, term_weights, headers
    )
    blocks = [
        prompts.format_passage(n, h.doc.title, h.doc.published, windows[n])
        for n, h in enumerate(hits, 1)
        if n in windows
    ]
    return list(hits), blocks


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


@dataclass(frozen=True)
class CheckedAnswer:
    text: str
    answered: bool
    citations: tuple[Citation, ...]
    unsupported: tuple[str, ...]
    choice: int | None
    short_answer: str = ""
    short_citation: int | None = None
    # The client's other short-answer candidates that a passage holds, each with the
    # sentence that holds it (a Citation not yet in the answer), best first.
    alternatives: tuple[tuple[str, Citation], ...] = ()


@dataclass(frozen=True)
class _Window:
    start: int  # offsets in the article of the best supporting sentence
    end: int
    quote: str
    support: float


def check_answer(
    raw: str,
    passages: Sequence[Hit],
    lookup: DocLookup,
    choices: Sequence[str] = (),
    question: str = "",
    alternatives: Sequence[str] = (),
) -> CheckedAnswer:
    """Keep the claims the passages support, each with a verified citation; keep the short
    answer only when it occurs (on word boundaries) in a passage, preferring the cited one,
    and says more than the question itself."""
    original = raw
    short_line, raw = split_short_answer(raw)
    sentences = _answer_sentences(raw)
    spans = {n: _passage_sentences(hit, lookup) for n, hit in enumerate(passages, 1)}
    kept_sentences: list[str] = []
    unsupported: list[str] = []
    citations: dict[int, Citation] = {}
    short, short_n = verify_short(short_line, passages, spans, question)
    if short_n is not None:
        citations[short_n] = _holding(short, short_n, passages, spans)
    verified: list[tuple[str, Citation]] = []
    for line in alternatives:
        span, n = verify_short(line, passages, spans, question)
        if n is not None and span != short and span not in (v[0] for v in verified):
            verified.append((span, _holding(span, n, passages, spans)))
    for sentence in sentences:
        claim = MARKER.sub("", sentence).strip()
        cited = [
            int(n) for group in MARKER.findall(sentence) for n in group.split(",") if n.strip()
        ]
        if not content_words(claim) or (REFUSAL.search(claim) and not cited):
            continue  # a bare marker, an "Option 2:" prefix or a refusal phrase: not a claim
        valid = [n for n in dict.fromkeys(cited) if n in spans]
        support = {n: _support(claim, spans[n]) for n in spans}
        good = [n for n in valid if support[n].support >= SUPPORT_THRESHOLD]
        if not good:
            best = max(support, key=lambda n: (support[n].support, -n), default=None)
            if best is None or support[best].support < SUPPORT_THRESHOLD:
                unsupported.append(claim)
                continue
            good = [best]
        for n in good:
            if n not in citations:
                hit = passages[n - 1]
                w = support[n]
                citations[n] = Citation(
                    n,
                    hit.chunk.id,
                    hit.doc.id,
                    hit.doc.title,
                    hit.doc.published,
                    w.quote,
                    w.start,
                    w.end,
                )
        kept_sentences.append(_cite(claim, good))

    choice = _choice(original, choices)
    if not kept_sentences and choice is None and short_n is None:
        return CheckedAnswer(prompts.CANNOT_ANSWER, False, (), tuple(unsupported), None)
    if not kept_sentences and short_n is not None:
        # Only the short answer came back: explain it with the sentence that holds it.
        kept_sentences.append(_cite(" ".join(citations[short_n].quote.split()), [short_n]))
    text = " ".join(kept_sentences)
    if choice is not None and not OPTION.search(text):
        text = f"Option {choice + 1}: {choices[choice]}. {text}".strip()
    if choice is not None and not citations:
        # A pick no passage supports is a guess: the choice is kept (the caller may still
        # want it) but the answer says so and does not count as answered.
        text = f"Option {choice + 1}: {choices[choice]}. {UNSUPPORTED_CHOICE}"
    return CheckedAnswer(
        text,
        bool(citations) or choice is None,
        tuple(sorted(citations.values(), key=lambda c: c.n)),
        tuple(unsupported),
        choice,
        short,
        short_n,
        tuple(verified),
    )


def _holding(
    span: str, n: int, passages: Sequence[Hit], spans: dict[int, list[tuple[int, int, str]]]
) -> Citation:
    """The citation of passage n's sentence that holds the short answer ``span``."""
    start, end, quote = sentence_with(span, spans[n])
    hit = passages[n - 1]
    return Citation(
        n, hit.chunk.id, hit.doc.id, hit.doc.title, hit.doc.published, quote, start, end
    )


def _cite(claim: str, numbers: Sequence[int]) -> str:
    """The claim with its markers before the closing punctuation: "... nations [3]." """
    claim = re.sub(r"\s+([.!?;:,])", r"\1", claim)
    body = claim.rstrip(".!?;:, ")
    end = claim[len(body) :].strip()
    return f"{body} {''.join(f'[{n}]' for n in numbers)}{end}"


def _choice(raw: str, choices: Sequence[str]) -> int | None:
    if not choices:
        return None
    match = OPTION.search(raw)
    if match and 1 <= int(match.group(1)) <= len(choices):
        return int(match.group(1)) - 1
    # Models that ignore the format often still name the option's text.
    lowered = raw.lower()
    named = [i for i, c in enumerate(choices) if c.strip() and c.lower() in lowered]
    return named[0] if len(named) == 1 else None


def _answer_sentences(raw: str) -> list[str]:
    text = raw.strip()
    if not text:
        return []
    pieces: list[str] = []
    for line in text.splitlines():
        line = line.strip(" -*•\t")
        if line:
            pieces.extend(line[s:e] for s, e in sentence_spans(line, 0, len(line)))
    # A marker that punkt left at the start of the next sentence belongs to the previous one.
    merged: list[str] = []
    for piece in pieces:
        lead = re.match(r"^((?:\[\d+(?:\s*,\s*\d+)*\]\s*)+)(.*)$", piece)
        if lead and merged:
            merged[-1] += " " + lead.group(1).strip()
            piece = lead.group(2)
        if piece.strip():
            merged.append(piece)
    return merged


def _passage_sentences(hit: Hit, lookup: DocLookup) -> list[tuple[int, int, str]]:
    """Sentences of the passage as (start, end, text) with offsets in the stored article;
    sentences addressed to a model or the reader (``qa.text.words.is_instruction``) are not
    evidence and are left out."""
    return [s for s in _all_passage_sentences(hit, lookup) if not is_instruction(s[2])]


def _all_passage_sentences(hit: Hit, lookup: DocLookup) -> list[tuple[int, int, str]]:
    doc = lookup(hit.doc.id)
    if doc is None:  # the article is gone from the store: fall back to the chunk's own text
        return [
            (hit.chunk.start + s, hit.chunk.start + e, hit.chunk.text[s:e])
            for s, e in sentence_spans(hit.chunk.text, 0, len(hit.chunk.text))
        ]
    out: list[tuple[int, int, str]] = []
    for seg_start, seg_end in doc.segments:
        lo, hi = max(seg_start, hit.chunk.start), min(seg_end, hit.chunk.end)
        if lo < hi:
            out.extend((s, e, doc.text[s:e]) for s, e in sentence_spans(doc.text, lo, hi))
    return out


def _support(claim: str, sentences: list[tuple[int, int, str]]) -> _Window:
    """How well the best window of three passage sentences covers the claim's content words."""
    words = content_words(claim)
    if not words or not sentences:
        return _Window(0, 0, "", 0.0)
    bags = [content_terms(text) for _, _, text in sentences]

    def score(i: int) -> tuple[float, float]:
        window = bags[i].union(*bags[max(0, i - 1) : i + 2])
        # Ties go to the sentence that alone covers most: it is the better quote.
        return share(words, window), share(words, bags[i])

    best = max(range(len(sentences)), key=lambda i: (*score(i), -i))
    start, end, text = sentences[best]
    covered = score(best)[0]
    # One shared word is never support for a claim of two or more: "The minister resigned"
    # is not backed by a passage that only mentions a minister.
    if round(covered * len(words)) < min(2, len(words)):
        covered = 0.0
    return _Window(start, end, text, covered)
