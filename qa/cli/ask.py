"""`qa search` and `qa ask`: retrieval and answers, printed for a reader or as JSON."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from qa.cli.common import (
    AsOfOpt,
    ConfigOpt,
    IndexOpt,
    JsonOpt,
    KOpt,
    LLMOpt,
    SinceOpt,
    SourceOpt,
    UntilOpt,
    clip,
    fail,
    filters_for,
    out,
    print_json,
    settings_for,
    shown,
    utf8_text,
)
from qa.core.config import Settings
from qa.core.types import Answer, QAError
from qa.text.words import PrintableStream, printable

if TYPE_CHECKING:
    from qa.answering.assistant import Assistant


def loading_assistant(settings: Settings, *, answers: bool) -> Assistant:
    """An Assistant whose models already load in threads of their own: the embedding model
    while the rest of qa imports, and, to answer, the model client's own (the extractive
    client's spaCy) while the index opens and the question is embedded. A cold process spends
    most of its time loading; work that does not hold the GIL overlaps this way."""
    if answers and settings.llm.client == "extractive":
        from qa.reading import spacy_pipeline

        spacy_pipeline.start_process()  # first: it forks, which is safe before any thread
    from dataclasses import replace

    from qa.embedding import load_in_background

    # One question: one ONNX Runtime thread unless set, not the cores found free by watching
    # the machine for 0.1 s, which would cost a cold start more than a second thread saves.
    embedding = replace(settings.embedding, threads=settings.embedding.threads or 1)
    embedder = load_in_background(embedding)
    from qa.answering.assistant import Assistant

    assistant = Assistant(settings, embedder=embedder)
    if answers:
        assistant.load_in_background()
    return assistant


def search(
    query: Annotated[str, typer.Argument(help="what to look for", callback=utf8_text)],
    k: KOpt = None,
    as_of: AsOfOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    sources: SourceOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the passages that best match a query (dense and BM25, fused), published by the
    as-of date and within the given dates and sources."""
    settings = settings_for(config, **{"paths.index": index})
    filters = filters_for(as_of, since, until, sources)
    try:
        retrieval = loading_assistant(settings, answers=False).retrieve(query, k, filters=filters)
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "query": query,
                "filters": filters.to_dict(),
                "hits": [
                    {
                        "rank": h.rank,
                        **h.to_dict(),
                        "dense_score": h.dense_score,
                        "bm25_score": h.bm25_score,
                    }
                    for h in retrieval.hits
                ],
                "timings_ms": retrieval.timings_ms,
            }
        )
        return
    if not retrieval.hits:
        out.print("No passage is relevant enough to this query.")
    for h in retrieval.hits:
        dense = f"{h.dense_score:.3f}" if h.dense_score is not None else "-"
        out.print(
            f"[bold]{h.rank}. {shown(h.doc.title)}[/bold] ({shown(h.doc.published or 'undated')}) "
            f"score {h.score:.4f} cosine {dense} chars {h.chunk.start}-{h.chunk.end} "
            f"[dim]{shown(h.chunk.id)}[/dim]"
        )
        out.print(f"   {shown(clip(h.chunk.text, 400))}\n")


def ask(
    question: Annotated[str, typer.Argument(help="the question", callback=utf8_text)],
    k: KOpt = None,
    llm: LLMOpt = None,
    choices: Annotated[
        list[str] | None, typer.Option("--choice", help="a multiple-choice option (repeat)")
    ] = None,
    stream: Annotated[bool, typer.Option("--stream", help="print text as it is written")] = False,
    as_of: AsOfOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    sources: SourceOpt = None,
    config: ConfigOpt = None,
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the indexed articles, citing the passages that support it.
    Only articles published by the as-of date (today by default) are used."""
    settings = settings_for(config, **{"paths.index": index, "llm.client": llm})
    filters = filters_for(as_of, since, until, sources)
    try:
        assistant = loading_assistant(settings, answers=True)
        if stream and not as_json:
            answer, written = None, ""
            shown_stream = PrintableStream()
            for piece in assistant.stream(question, k=k, choices=choices or (), filters=filters):
                if isinstance(piece, Answer):
                    answer = piece
                else:
                    text = shown_stream.feed(piece)
                    written += text
                    sys.stdout.write(text)
                    sys.stdout.flush()
            rest = shown_stream.flush()
            written += rest
            sys.stdout.write(rest + ("\n" if written else ""))
            assert answer is not None
        else:
            answer = assistant.ask(question, k=k, choices=choices or (), filters=filters)
    except QAError as exc:
        fail(str(exc))
    if as_json:
        print_json(answer.to_dict())
    elif stream:
        print_answer(answer, streamed=written)
    else:
        print_answer(answer)


def sentences(text: str) -> list[str]:
    """Lines, and sentences within them, whitespace-normalised: what a reader compares."""
    parts = (re.split(r"(?<=[.!?])\s+", line) for line in text.splitlines())
    return [" ".join(p.split()) for line in parts for p in line if p.strip()]


def withdrawn(streamed: str, checked: str) -> list[str] | None:
    """What the citation check took out of the streamed draft, when that is all it did (its
    sentences are the draft's, in order, less some); None when it rewrote something."""
    draft, kept = sentences(streamed), sentences(checked)
    remaining = iter(draft)
    if not all(any(s == d for d in remaining) for s in kept):
        return None
    return [d for d in draft if d not in kept]


def print_answer(answer: Answer, streamed: str | None = None) -> None:
    """The answer, its short answer and its sources. ``streamed``: the draft already written
    as the model wrote it (`qa ask --stream`); the checked text follows only when the check
    changed it (dropped a sentence, replaced a reply), so an unchanged answer is printed once."""
    sure = f"confidence {answer.confidence:.2f}" if answer.confidence is not None else ""
    if answer.short_answer:
        line = f"[bold]{shown(answer.short_answer)}[/bold] {shown(f'[{answer.short_citation}]')}"
        out.print(f"{line} [dim]({sure})[/dim]\n" if sure else f"{line}\n")
    taken_out = withdrawn(streamed, printable(answer.text)) if streamed else None
    if not streamed:
        out.print(shown(answer.text))
    elif taken_out is None:
        out.print("[bold]Checked against its sources, the answer reads:[/bold]")
        out.print(shown(answer.text))
    else:  # only removals: name them (unsupported sentences are listed below anyway)
        unsupported = {" ".join(printable(u).split()) for u in answer.unsupported}
        for sentence in (t for t in taken_out if t not in unsupported):
            out.print(f"[dim]Withdrawn by the check: {shown(sentence)}[/dim]")
    if answer.choice is not None and sure:
        out.print(f"[dim]({sure})[/dim]")
    elif answer.answered and not answer.short_answer and sure:
        # A candidate was found but fell below the bar (answer.min_short_confidence).
        out.print(f"[dim](no short answer: the best candidate's {sure} is below the bar)[/dim]")
    if answer.citations:
        out.print("\n[bold]Sources[/bold]")
        for c in answer.citations:
            out.print(
                f"{shown(f'[{c.n}]')} {shown(c.title)} ({shown(c.published or 'undated')}) "
                f"[dim]{shown(c.doc_id)} chars {c.start}-{c.end}[/dim]"
            )
            out.print(f'    "{shown(clip(c.quote, 300))}"')
    if answer.unsupported:
        out.print("\n[dim]Left out, no passage supports it:[/dim]")
        for sentence in answer.unsupported:
            out.print(f"[dim]  - {shown(sentence)}[/dim]")
    out.print(f"\n[dim]{shown(answer.model)}, {answer.timings_ms.get('total', 0):.0f} ms[/dim]")
