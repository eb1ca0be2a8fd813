"""The OpenAI chat-completions shapes of an ``Answer``: the plain response and the server-sent
events of a streamed one.

Citations. The answer text carries the ``[n]`` markers, followed by a plain sources list
(``"\\n\\nSources:\\n[1] Title (date)"``) so that a client that only concatenates ``content``
shows where the answer comes from. The structured fields of ``qa ask --json`` that a chat
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


def extras(answer: Answer) -> dict[str, Any]:
    """The structured fields sent beside the text, in the ``qa ask --json`` shape."""
    shape = answer.to_dict()
    return {name: shape.get(name) for name in EXTRA_FIELDS}


def completion(answer: Answer, completion_id: str, created: int) -> dict[str, Any]:
    """A plain (non-streamed) ``chat.completion`` object."""
    message = {
        "role": "assistant",
        "content": answer.text + sources_text(answer.citations),
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
    pieces: Iterator[str | Answer], first: str | Answer | None, completion_id: str, created: int
) -> AsyncIterator[str]:
    """The server-sent events of one streamed chat completion (see the module docstring)."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return _sse(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": ASSISTANT_ID,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
                **extra,
            }
        )

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
    for piece in word_pieces(answer.text):
        yield chunk({"content": piece})
    sources = sources_text(answer.citations)
    if sources:
        yield chunk({"content": sources})
    final = extras(answer)
    yield chunk(final, "stop", citations=final["citations"], usage=usage(answer))
    yield "data: [DONE]\n\n"
