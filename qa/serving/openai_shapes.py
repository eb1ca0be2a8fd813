"""The OpenAI chat-completions shapes of an ``Answer``: the plain response and the server-sent
events of a streamed one.

Message text. Most chat clients (Open WebUI, LibreChat, the ``llm`` tool) show only
``content`` and keep only it in their history, so the text itself carries what makes an answer
worth having (``server.message_format``, or the request's ``message_format``):

- ``"markdown"`` (default): the short answer in bold with its ``[n]`` first (only when it is
  shown: below the confidence bar it is withheld; a refusal is the whole message), then the
  cited sentences with their ``[n]`` markers, then ``**Sources**`` with, for each ``[n]``, the
  title (linked to the article), outlet and date, and each quoted span as a ``>`` quote.
  Article text is Markdown-escaped, so a title or quote cannot add links, images or HTML.
- ``"plain"``: the sentences, then ``"\\n\\nSources:\\n[1] Title (date)"`` lines (the chat
  page asks for this and draws its own short answer and sources from the fields below).

The structured fields of ``qa ask --json`` that a chat
client can use (``citations``, ``answered``, ``short_answer``, ``short_answer_citation``,
``filters``, ``rewritten_question``) travel in ``choices[0].message`` (plain) or in
``choices[0].delta`` of the final chunk (streaming), whose top level also has ``citations``.

Streaming. The model's raw text may differ from the checked answer (unsupported sentences are
dropped, markers attached), and an OpenAI client simply concatenates ``delta.content``. So the
raw pieces are sent as they are written in ``delta.draft`` (a field other clients ignore; the
page shows it as a live draft) and only the checked answer is sent as ``delta.content``, in word
pieces, once the citations have been checked. The concatenated ``content`` therefore always
equals the final checked answer plus its sources list. An error after the stream has started
is sent as one ``data: {"error": {...}}`` event (which the openai client raises), then
``data: [DONE]``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool

from qa.answering.check import MARKER
from qa.core.types import Answer, Citation, QAError
from qa.serving.guard import APIError, from_qa_error

log = logging.getLogger("qa.serving.app")

ASSISTANT_ID = "qa"
# The fields of Answer.to_dict() that ride along with a chat message.
EXTRA_FIELDS = (
    "citations",
    "answered",
    "short_answer",
    "short_answer_citation",
    "confidence",
    "filters",
    "rewritten_question",
)


def usage(answer: Answer) -> dict[str, int]:
    prompt, completion = answer.usage.prompt_tokens, answer.usage.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def sources_text(citations: Sequence[Citation]) -> str:
    """The plain-text sources list appended to the answer: one line per cited passage."""
    first: dict[int, Citation] = {}
    for c in citations:
        first.setdefault(c.n, c)
    lines = [
        f"[{n}] {c.title}" + (f" ({c.published})" if c.published else "")
        for n, c in sorted(first.items())
    ]
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""


# Characters that would make article text into Markdown structure (emphasis, links, images,
# HTML, code, headings, tables); each is shown as itself once backslash-escaped.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|!~])")


def md_escape(text: str) -> str:
    """Article text as literal Markdown on one line (a quote must not end its ``>`` block)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _md_answer(text: str) -> str:
    """The answer sentences escaped, their ``[n]`` markers kept as written."""
    out, last = [], 0
    for match in MARKER.finditer(text):
        out.append(_MD_SPECIAL.sub(r"\\\1", text[last : match.start()]) + match.group(0))
        last = match.end()
    out.append(_MD_SPECIAL.sub(r"\\\1", text[last:]))
    return "".join(out)


def _link(title: str, url: str) -> str:
    shown = md_escape(title or "untitled")
    if not url.startswith(("https://", "http://")) or any(c in url for c in " <>\n"):
        return shown
    return f"[{shown}](<{url}>)"


def markdown_sources(answer: Answer) -> str:
    """The Markdown sources block: for each cited passage its title (linked), outlet and date,
    then each quoted span of it."""
    quotes: dict[int, list[Citation]] = {}
    for c in answer.citations:
        quotes.setdefault(c.n, []).append(c)
    blocks = []
    for n, cited in sorted(quotes.items()):
        first = cited[0]
        hit = answer.passages[n - 1] if 0 < n <= len(answer.passages) else None
        outlet = hit.doc.source if hit else ""
        url = hit.doc.url if hit else ""
        facts = [md_escape(v) for v in (outlet, first.published) if v]
        head = f"[{n}] {_link(first.title, url)}" + (f" — {', '.join(facts)}" if facts else "")
        seen: list[str] = []
        for c in cited:
            if c.quote.strip() and c.quote not in seen:
                seen.append(c.quote)
        blocks.append("\n".join([head, *(f"> {md_escape(q)}" for q in seen)]))
    return "\n\n**Sources**\n\n" + "\n\n".join(blocks) if blocks else ""


def message_parts(answer: Answer, message_format: str) -> tuple[str, str]:
    """The message text as (answer, sources): the answer part is streamed word by word, the
    sources block as one piece."""
    if message_format == "plain":
        return answer.text, sources_text(answer.citations)
    if not answer.answered:
        return md_escape(answer.text), ""
    lead = ""
    if answer.short_answer:
        marker = f" [{answer.short_citation}]" if answer.short_citation else ""
        lead = f"**{md_escape(answer.short_answer)}**{marker}\n\n"
    return lead + _md_answer(answer.text), markdown_sources(answer)


def message_text(answer: Answer, message_format: str = "markdown") -> str:
    """The whole ``content`` of the assistant message (see the module docstring)."""
    text, sources = message_parts(answer, message_format)
    return text + sources


def extras(answer: Answer) -> dict[str, Any]:
    """The structured fields sent beside the text, in the ``qa ask --json`` shape."""
    shape = answer.to_dict()
    return {name: shape.get(name) for name in EXTRA_FIELDS}


def completion(
    answer: Answer, completion_id: str, created: int, message_format: str = "markdown"
) -> dict[str, Any]:
    """A plain (non-streamed) ``chat.completion`` object."""
    message = {
        "role": "assistant",
        "content": message_text(answer, message_format),
        "refusal": None,
        **extras(answer),
    }
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": ASSISTANT_ID,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": usage(answer),
        "citations": message["citations"],
    }


NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def text_completion(text: str, completion_id: str, created: int) -> dict[str, Any]:
    """A ``chat.completion`` of bare text, without the answer fields (qa.serving.chat_tasks)."""
    message = {"role": "assistant", "content": text, "refusal": None}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": ASSISTANT_ID,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": NO_USAGE,
    }


async def text_events(text: str, completion_id: str, created: int) -> AsyncIterator[str]:
    """:func:`text_completion` as a stream: the role, the text, the stop."""
    for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": text}, None)):
        yield _sse(_chunk(completion_id, created, delta, finish))
    yield _sse({**_chunk(completion_id, created, {}, "stop"), "usage": NO_USAGE})
    yield "data: [DONE]\n\n"


def _chunk(
    completion_id: str, created: int, delta: dict[str, Any], finish: str | None
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": ASSISTANT_ID,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def word_pieces(text: str) -> list[str]:
    """Pieces that join back to ``text`` exactly: each word with the spaces that follow it."""
    return re.findall(r"\s+|\S+\s*", text)


def next_or_none(iterator: Iterator[Any]) -> Any:
    # StopIteration cannot cross a thread boundary; None marks the end instead.
    return next(iterator, None)


def close(iterator: Iterator[Any]) -> None:
    closer = getattr(iterator, "close", None)
    if closer is not None:
        closer()


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _internal(message: str) -> APIError:
    return APIError(500, message, type="server_error", code="internal")


async def chat_events(
    pieces: Iterator[str | Answer],
    first: str | Answer | None,
    completion_id: str,
    created: int,
    message_format: str = "markdown",
) -> AsyncIterator[str]:
    """The server-sent events of one streamed chat completion (see the module docstring)."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return _sse({**_chunk(completion_id, created, delta, finish), **extra})

    yield chunk({"role": "assistant", "content": ""})
    answer: Answer | None = None
    item = first
    try:
        while item is not None:
            if isinstance(item, Answer):
                answer = item
                break
            yield chunk({"draft": item})
            item = await run_in_threadpool(next_or_none, pieces)
    except QAError as exc:
        yield _sse(from_qa_error(exc, "messages").body())
        yield "data: [DONE]\n\n"
        return
    except Exception as exc:
        log.exception("chat stream failed")
        yield _sse(_internal(f"internal error: {type(exc).__name__}").body())
        yield "data: [DONE]\n\n"
        return
    finally:
        # Also runs when the client disconnects: stop the model's stream.
        close(pieces)
    if answer is None:
        yield _sse(_internal("the assistant ended without an answer").body())
        yield "data: [DONE]\n\n"
        return
    text, sources = message_parts(answer, message_format)
    for piece in word_pieces(text):
        yield chunk({"content": piece})
    if sources:
        yield chunk({"content": sources})
    final = extras(answer)
    yield chunk(final, "stop", citations=final["citations"], usage=usage(answer))
    yield "data: [DONE]\n\n"
