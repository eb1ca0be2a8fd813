"""`qa serve`: the Assistant over HTTP, with an OpenAI-compatible chat endpoint and a chat page.

Routes (all JSON errors have the OpenAI shape ``{"error": {"message", "type", "param", "code"}}``):

- ``GET /`` and ``GET /static/*``: the chat page (no build step, nothing loaded from other hosts).
- ``GET /healthz``: ``{"status": "ok", "articles": n, "chunks": n}``; 503 with status
  ``"no index"`` before `qa ingest` has run.
- ``GET /v1/models``, ``GET /v1/models/{id}``: the one model, ``"qa"``.
- ``POST /v1/chat/completions``: the OpenAI chat-completions protocol, plain or ``stream: true``.
  The request's ``model`` may be ``"qa"`` (or left out) or the name of the underlying model
  (what answers report as ``model``, e.g. ``"extractive"``); anything else is a 404
  ``model_not_found``. ``k`` (1-100) is accepted as an extension; ``temperature``,
  ``max_tokens`` and the other sampling options are ignored (the checked answer is
  deterministic for the configured client); ``n`` must be 1.
- ``POST /api/ask``: ``{"question", "k"?, "choices"?}`` -> ``Answer.to_dict()`` (the
  ``qa ask --json`` shape).
- ``GET /api/articles/{doc_id}``: a stored article, so a quote can be shown in context.

Citations. The answer text carries the ``[n]`` markers, followed by a plain sources list
(``"\\n\\nSources:\\n[1] Title (date)"``) so that a client that only concatenates ``content``
shows where the answer comes from. The structured citations (the fields of ``qa ask --json``)
travel in ``choices[0].message.citations`` (plain) or in ``choices[0].delta.citations`` and a
top-level ``citations`` of the final chunk (streaming), next to ``answered`` and
``rewritten_question``.

Streaming. The model's raw text may differ from the checked answer (unsupported sentences are
dropped, markers attached), and an OpenAI client simply concatenates ``delta.content``. So the
raw pieces are sent as they are written in ``delta.draft`` (a field other clients ignore; the
page shows it as a live draft) and only the checked answer is sent as ``delta.content``, in word
pieces, once the citations have been checked. The concatenated ``content`` therefore always
equals the final checked answer plus its sources list. An error after the stream has started
is sent as one ``data: {"error": {...}}`` event (which the openai client raises), then
``data: [DONE]``.

Security. Binds 127.0.0.1 unless ``--public``. With ``QA_API_KEY`` set, every route except the
page, its static files and ``/healthz`` needs ``Authorization: Bearer <key>``. Request bodies
are capped at ``server.max_body_bytes`` (413), with or without a Content-Length.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from qa.assistant import Assistant
from qa.config import Settings
from qa.http_guard import APIError, GuardMiddleware, from_qa_error
from qa.index import live_generation
from qa.types import Answer, Citation, QAError

log = logging.getLogger("qa.server")

ASSISTANT_ID = "qa"
STATIC = Path(__file__).resolve().parent / "static"
MAX_K = 100
MAX_CHOICES = 10
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# --------------------------------------------------------------------------- request parsing


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise APIError(400, "the request body is empty; send a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise APIError(400, "the request body must be a JSON object")
    return data


def _parse_k(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise APIError(400, f"'k' must be an integer from 1 to {MAX_K}", param="k")
    if not 1 <= value <= MAX_K:
        raise APIError(400, f"'k' is {value}; it must be from 1 to {MAX_K}", param="k")
    return value


def _content_text(content: Any, i: int) -> str:
    """A message's content as text: a string, null, or a list of text parts."""
    param = f"messages[{i}].content"
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise APIError(400, "only text content parts are supported", param=param)
            if not isinstance(part.get("text"), str):
                raise APIError(400, "a text content part needs a string 'text'", param=param)
            texts.append(part["text"])
        return "\n".join(texts)
    raise APIError(400, "'content' must be a string or a list of text parts", param=param)


def _parse_messages(value: Any) -> list[dict[str, str]]:
    if value is None:
        raise APIError(400, "missing required parameter: 'messages'", param="messages")
    if not isinstance(value, list):
        raise APIError(400, "'messages' must be an array of messages", param="messages")
    if not value:
        raise APIError(400, "'messages' is empty; send at least one user message", param="messages")
    conversation: list[dict[str, str]] = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise APIError(400, "each message must be an object", param=f"messages[{i}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise APIError(
                400,
                f"messages[{i}].role must be one of: {', '.join(sorted(ROLES))}",
                param=f"messages[{i}].role",
            )
        text = _content_text(message.get("content"), i)
        if role in ("user", "assistant"):
            conversation.append({"role": role, "content": text})
    if not any(m["role"] == "user" for m in conversation):
        raise APIError(400, "the conversation has no user message", param="messages")
    return conversation


def _last_user(messages: Sequence[dict[str, str]]) -> str:
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


# --------------------------------------------------------------------------- responses


def _usage(answer: Answer) -> dict[str, int]:
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


def _extras(answer: Answer) -> dict[str, Any]:
    return {
        "citations": [asdict(c) for c in answer.citations],
        "answered": answer.answered,
        "rewritten_question": answer.rewritten_question,
    }


def _word_pieces(text: str) -> list[str]:
    """Pieces that join back to ``text`` exactly: each word with the spaces that follow it."""
    return re.findall(r"\s+|\S+\s*", text)


def _next_or_none(iterator: Iterator[Any]) -> Any:
    # StopIteration cannot cross a thread boundary; None marks the end instead.
    return next(iterator, None)


def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


# --------------------------------------------------------------------------- the app


def create_app(assistant: Assistant, api_key: str | None = None) -> FastAPI:
    """The HTTP app over one shared ``assistant``; ``api_key`` turns on bearer-token auth."""
    settings = assistant.settings
    app = FastAPI(
        title="qa",
        summary="Question answering over news articles with checked citations",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.assistant = assistant
    app.add_middleware(
        GuardMiddleware, api_key=api_key or None, max_body=settings.server.max_body_bytes
    )

    # -- errors: always the OpenAI shape, never a bare 500 page

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Response:
        return exc.response()

    @app.exception_handler(QAError)
    async def _qa_error(request: Request, exc: QAError) -> Response:
        return from_qa_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        return APIError(exc.status_code, message).response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return APIError(400, str(first.get("msg", "invalid request")), param=param).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return APIError(
            500, f"internal error: {type(exc).__name__}", type="server_error", code="internal"
        ).response()

    def require_index() -> None:
        if live_generation(settings.index_dir) is None:
            raise APIError(
                503,
                f"no index yet at {settings.index_dir}: run `qa ingest` first",
                type="server_error",
                code="no_index",
            )

    def model_names() -> set[str]:
        names = {ASSISTANT_ID}
        with contextlib.suppress(Exception):  # a client that cannot even be built
            names.add(assistant.llm.model)
        return names

    def model_card() -> dict[str, Any]:
        return {"id": ASSISTANT_ID, "object": "model", "created": 0, "owned_by": "qa"}

    # -- the page

    @app.get("/", include_in_schema=False)
    @app.get("/index.html", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # -- health and models

    @app.get("/healthz")
    async def healthz() -> Response:
        if live_generation(settings.index_dir) is None:
            return JSONResponse({"status": "no index", "articles": 0, "chunks": 0}, status_code=503)
        try:
            index = await run_in_threadpool(lambda: assistant.index)
        except QAError as exc:
            return JSONResponse(
                {"status": "error", "message": str(exc), "articles": 0, "chunks": 0},
                status_code=503,
            )
        counts = index.manifest.get("counts", {})
        return JSONResponse(
            {
                "status": "ok",
                "articles": counts.get("articles", 0),
                "chunks": counts.get("chunks", 0),
            }
        )

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model}")
    async def get_model(model: str) -> dict[str, Any]:
        if model not in await run_in_threadpool(model_names):
            raise APIError(
                404, f"the model '{model}' does not exist", param="model", code="model_not_found"
            )
        return model_card()

    # -- chat completions

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = await _json_object(request)
        model = body.get("model", ASSISTANT_ID)
        if not isinstance(model, str):
            raise APIError(400, "'model' must be a string", param="model")
        if model not in await run_in_threadpool(model_names):
            raise APIError(
                404,
                f"the model '{model}' does not exist; use '{ASSISTANT_ID}'",
                param="model",
                code="model_not_found",
            )
        messages = _parse_messages(body.get("messages"))
        stream = body.get("stream", False)
        if stream is None:
            stream = False
        if not isinstance(stream, bool):
            raise APIError(400, "'stream' must be true or false", param="stream")
        n = body.get("n", 1)
        if n is not None and (isinstance(n, bool) or n != 1):
            raise APIError(400, "only n=1 is supported", param="n")
        k = _parse_k(body.get("k"))
        try:
            assistant.validate(_last_user(messages))
        except QAError as exc:
            raise APIError(400, str(exc), param="messages") from None
        require_index()

        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not stream:
            try:
                answer = await run_in_threadpool(assistant.chat, messages, k=k)
            except QAError as exc:
                raise from_qa_error(exc, "messages") from None
            message = {
                "role": "assistant",
                "content": answer.text + sources_text(answer.citations),
                "refusal": None,
                **_extras(answer),
            }
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": ASSISTANT_ID,
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
                    ],
                    "usage": _usage(answer),
                    "citations": message["citations"],
                }
            )

        pieces = assistant.stream_chat(messages, k=k)
        try:
            # The first step (rewrite, retrieval, first piece) runs before the response starts,
            # so its errors still get a proper status code.
            first = await run_in_threadpool(_next_or_none, pieces)
        except QAError as exc:
            _close(pieces)
            raise from_qa_error(exc, "messages") from None
        events = _chat_events(pieces, first, completion_id, created)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)

    # -- the plain API

    @app.post("/api/ask")
    async def ask(request: Request) -> Response:
        body = await _json_object(request)
        question = body.get("question")
        if question is None:
            raise APIError(400, "missing required parameter: 'question'", param="question")
        if not isinstance(question, str):
            raise APIError(400, "'question' must be a string", param="question")
        k = _parse_k(body.get("k"))
        choices = body.get("choices")
        if choices is None:
            choices = []
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise APIError(400, "'choices' must be an array of strings", param="choices")
        if len(choices) > MAX_CHOICES:
            raise APIError(400, f"at most {MAX_CHOICES} choices", param="choices")
        limit = settings.limits.max_question_chars
        if any(not c.strip() or len(c) > limit for c in choices):
            raise APIError(400, f"each choice must be 1 to {limit} characters", param="choices")
        try:
            assistant.validate(question)
        except QAError as exc:
            raise APIError(400, str(exc), param="question") from None
        require_index()
        try:
            answer = await run_in_threadpool(assistant.ask, question, k=k, choices=tuple(choices))
        except QAError as exc:
            raise from_qa_error(exc, "question") from None
        return JSONResponse(answer.to_dict())

    @app.get("/api/articles/{doc_id:path}")
    async def article(doc_id: str) -> Response:
        require_index()
        try:
            doc = await run_in_threadpool(assistant.document, doc_id)
        except QAError as exc:
            raise from_qa_error(exc) from None
        if doc is None:
            raise APIError(404, f"no article with id {doc_id!r}", param="doc_id")
        return JSONResponse(
            {
                "id": doc.id,
                "title": doc.title,
                "published": doc.published,
                "source": doc.source,
                "url": doc.url,
                "text": doc.text,
                "segments": [list(s) for s in doc.segments],
            }
        )

    return app


async def _chat_events(
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
            item = await run_in_threadpool(_next_or_none, pieces)
    except QAError as exc:
        yield _sse(from_qa_error(exc, "messages").body())
        yield "data: [DONE]\n\n"
        return
    except Exception as exc:
        log.exception("chat stream failed")
        error = APIError(
            500, f"internal error: {type(exc).__name__}", type="server_error", code="internal"
        )
        yield _sse(error.body())
        yield "data: [DONE]\n\n"
        return
    finally:
        # Also runs when the client disconnects: stop the model's stream.
        _close(pieces)
    if answer is None:
        error = APIError(
            500, "the assistant ended without an answer", type="server_error", code="internal"
        )
        yield _sse(error.body())
        yield "data: [DONE]\n\n"
        return
    for piece in _word_pieces(answer.text):
        yield chunk({"content": piece})
    sources = sources_text(answer.citations)
    if sources:
        yield chunk({"content": sources})
    extras = _extras(answer)
    yield chunk(extras, "stop", citations=extras["citations"], usage=_usage(answer))
    yield "data: [DONE]\n\n"


# --------------------------------------------------------------------------- running


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_public: bool) -> None:
    """Refuse to listen beyond this machine unless asked to explicitly."""
    if not allow_public and not is_loopback(host):
        raise QAError(
            f"refusing to listen on {host}: it is reachable from other machines. Pass --public "
            "to allow it (and set QA_API_KEY so that only clients with the key can ask)"
        )


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    allow_public: bool = False,
) -> None:
    """Run the server until interrupted (`qa serve`). ``host``/``port`` default to
    ``settings.server``; the bearer token comes from ``QA_API_KEY``."""
    import uvicorn

    host = host or settings.server.host
    port = settings.server.port if port is None else port
    check_host(host, allow_public)
    api_key = os.environ.get("QA_API_KEY", "").strip() or None
    if not is_loopback(host) and api_key is None:
        log.warning("listening on %s without QA_API_KEY: anyone who can reach it can ask", host)
    assistant = Assistant(settings)
    warm_up(assistant)
    uvicorn.run(create_app(assistant, api_key), host=host, port=port, log_level="info")


def warm_up(assistant: Assistant) -> None:
    """Load the index and models now rather than on the first request (no index: skip)."""
    if live_generation(assistant.settings.index_dir) is None:
        log.warning("no index at %s yet: run `qa ingest`", assistant.settings.index_dir)
        return
    try:
        assistant.retrieve("warm up")
        _ = assistant.llm
    except QAError as exc:
        log.warning("warm-up failed: %s", exc)


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` on uvicorn in a background thread; yields its base URL (tests, benchmarks).
    ``port=0`` picks a free port."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="qa-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{host}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
