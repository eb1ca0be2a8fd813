"""`qa serve`: the Assistant over HTTP, with an OpenAI-compatible chat endpoint and a chat page.

Routes (all JSON errors have the OpenAI shape ``{"error": {"message", "type", "param", "code"}}``):

- ``GET /`` and ``GET /static/*``: the chat page (no build step, nothing loaded from other hosts).
- ``GET /healthz``: ``{"status": "ok", "articles": n, "chunks": n}``; 503 with status
  ``"no index"`` before `qa ingest` has run.
- ``GET /v1/models``, ``GET /v1/models/{id}``: the one model, ``"qa"``.
- ``POST /v1/chat/completions``: the OpenAI chat-completions protocol, plain or ``stream: true``
  (shapes in :mod:`qa.serving.openai_shapes`). The request's ``model`` may be ``"qa"`` (or left
  out) or
  the name of the underlying model (what answers report as ``model``, e.g. ``"extractive"``);
  anything else is a 404 ``model_not_found``. ``k`` and the filters ``as_of``, ``since``,
  ``until``, ``sources`` and ``message_format`` (``"markdown"``/``"plain"``, else
  ``server.message_format``) are accepted as extensions; ``temperature``, ``max_tokens`` and the
  other sampling options are ignored (the checked answer is deterministic for the configured
  client); ``n`` must be 1. A chat client's own chores (Open WebUI's title, tags and
  follow-up requests) are answered without retrieval (:mod:`qa.serving.chat_tasks`).
- ``POST /v1/embeddings``: the OpenAI embeddings protocol with the server's embedding model
  (:mod:`qa.serving.embeddings`), for ingests elsewhere with ``embedding.backend = "openai"``.
- ``POST /api/ask``: ``{"question", "k"?, "choices"?, "as_of"?, "since"?, "until"?,
  "sources"?}`` -> ``Answer.to_dict()`` (the ``qa ask --json`` shape).
- ``GET /api/articles/{doc_id}``: a stored article, so a quote can be shown in context.
- ``GET /api/articles``, ``DELETE /api/articles/{doc_id}``, ``POST /api/ingest``: the
  corpus itself (:mod:`qa.serving.articles`).
- ``GET /openapi.json``: the schema, generated from the request models of :mod:`qa.serving.schemas`.
- ``POST /mcp``: the Model Context Protocol, streamable HTTP (:mod:`qa.serving.mcp`).

Security (:mod:`qa.serving.guard`): binds 127.0.0.1 unless ``--public``; only the server's own
host names and page are served (Host and Origin checks, CORS only for ``server.cors_origins``);
bodies must be ``application/json`` and at most ``server.max_body_bytes``. With ``QA_API_KEY``
set, every route except the page, its static files and ``/healthz`` needs
``Authorization: Bearer <key>``. Slow clients are cut off by :mod:`qa.serving.server`.
"""

from __future__ import annotations

import contextlib
import html
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa.answering.assistant import Assistant
from qa.answering.check import MARKER
from qa.core.types import QAError
from qa.index import index_location, index_version
from qa.serving import chat_tasks
from qa.serving import openai_shapes as openai_compat
from qa.serving.articles import articles_router
from qa.serving.embeddings import embeddings_router
from qa.serving.guard import APIError, Slots, add_guards, from_qa_error
from qa.serving.mcp import mount_http
from qa.serving.openai_shapes import ASSISTANT_ID
from qa.serving.schemas import AskRequest, ChatRequest, StrictJSONRoute, validation_error
from qa.serving.server import serve_in_thread

__all__ = ["create_app", "serve_in_thread", "sources_text"]

log = logging.getLogger("qa.serving.app")

sources_text = openai_compat.sources_text
STATIC = Path(__file__).resolve().parent / "static"
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
# Seconds a request waits for one of the server.max_concurrent_answers model slots.
ANSWER_WAIT = 30.0


def page_html() -> str:
    """The chat page, given the server's own citation-marker pattern (one copy of the rule:
    qa.answering.check.MARKER), so the page finds ``[n]`` and ``[1, 2]`` exactly as the checker
    does."""
    template = (STATIC / "index.html").read_text(encoding="utf-8")
    return template.replace("{{MARKER_PATTERN}}", html.escape(MARKER.pattern, quote=True))


def create_app(
    assistant: Assistant, api_key: str | None = None, *, answer_wait: float = ANSWER_WAIT
) -> FastAPI:
    """The HTTP app over one shared ``assistant``; ``api_key`` turns on bearer-token auth.
    At most ``server.max_concurrent_answers`` model calls run at once; a request waits up to
    ``answer_wait`` seconds for a slot, then gets 503 with Retry-After."""
    settings = assistant.settings
    if settings.server.max_concurrent_answers < 1:
        raise QAError(
            "server.max_concurrent_answers must be at least 1 "
            f"(got {settings.server.max_concurrent_answers})"
        )
    answer_slots = Slots(
        settings.server.max_concurrent_answers, answer_wait, "answering other questions"
    )
    app = FastAPI(
        title="qa",
        summary="Question answering over news articles with checked citations",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.router.route_class = StrictJSONRoute
    app.state.assistant = assistant
    add_guards(app, settings.server, api_key)
    page = page_html()

    # -- errors: always the OpenAI shape, never a bare 500 page

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        return APIError(exc.status_code, message).response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return validation_error(exc.errors()).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return APIError(
            500, f"internal error: {type(exc).__name__}", type="server_error", code="internal"
        ).response()

    def require_index() -> None:
        if index_version(settings) is None:
            raise APIError(
                503,
                f"no index yet at {index_location(settings)}: run `qa ingest` first",
                type="server_error",
                code="no_index",
            )

    def check_question(question: str, param: str) -> None:
        try:
            assistant.validate(question)
        except QAError as exc:
            raise APIError(400, str(exc), param=param) from None

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
    async def index_page() -> Response:
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # -- health and models

    @app.get("/healthz")
    async def healthz() -> Response:
        if await run_in_threadpool(index_version, settings) is None:
            return JSONResponse({"status": "no index", "articles": 0, "chunks": 0}, status_code=503)
        try:
            index = await run_in_threadpool(lambda: assistant.index)
        except QAError as exc:
            return JSONResponse(
                {"status": "error", "message": str(exc), "articles": 0, "chunks": 0},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "articles": index.articles(), "chunks": len(index)})

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
    async def chat_completions(body: ChatRequest) -> Response:
        if body.model not in await run_in_threadpool(model_names):
            raise APIError(
                404,
                f"the model '{body.model}' does not exist; use '{ASSISTANT_ID}'",
                param="model",
                code="model_not_found",
            )
        messages = body.conversation()
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        task = chat_tasks.detect(messages)
        if task is not None:
            return await chat_task(task, bool(body.stream), completion_id, created)
        check_question(body.last_question(), "messages")
        filters = body.filters()
        require_index()
        message_format = body.message_format or settings.server.message_format
        await answer_slots.acquire()
        if not body.stream:
            try:
                answer = await run_in_threadpool(
                    lambda: assistant.chat(messages, k=body.k, filters=filters)
                )
            except QAError as exc:
                raise from_qa_error(exc, "messages") from None
            finally:
                answer_slots.release()
            return JSONResponse(
                openai_compat.completion(answer, completion_id, created, message_format)
            )

        pieces = assistant.stream_chat(messages, k=body.k, filters=filters)
        try:
            # The first step (rewrite, retrieval, first piece) runs before the response starts,
            # so its errors still get a proper status code.
            first = await run_in_threadpool(openai_compat.next_or_none, pieces)
        except BaseException as exc:
            openai_compat.close(pieces)
            answer_slots.release()
            if isinstance(exc, QAError):
                raise from_qa_error(exc, "messages") from None
            raise
        events = openai_compat.chat_events(pieces, first, completion_id, created, message_format)
        return StreamingResponse(
            SlotStream(events, answer_slots),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    async def chat_task(task: chat_tasks.ChatTask, stream: bool, cid: str, t: int) -> Response:
        """A chat client's chore (title, tags, follow-ups): no retrieval (qa.serving.chat_tasks)."""
        await answer_slots.acquire()  # a configured API model may answer it
        try:
            text = await run_in_threadpool(lambda: chat_tasks.reply(task, assistant.llm))
        except QAError as exc:
            raise from_qa_error(exc, "messages") from None
        finally:
            answer_slots.release()
        if stream:
            events = openai_compat.text_events(text, cid, t)
            return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
        return JSONResponse(openai_compat.text_completion(text, cid, t))

    # -- the plain API

    @app.post("/api/ask")
    async def ask(body: AskRequest) -> Response:
        limit = settings.limits.max_question_chars
        if any(not c.strip() or len(c) > limit for c in body.choices):
            raise APIError(400, f"each choice must be 1 to {limit} characters", param="choices")
        try:
            assistant.validate_choices(body.choices)
        except QAError as exc:
            raise APIError(400, str(exc), param="choices") from None
        check_question(body.question, "question")
        filters = body.filters()
        require_index()
        await answer_slots.acquire()
        try:
            answer = await run_in_threadpool(
                lambda: assistant.ask(
                    body.question, k=body.k, choices=tuple(body.choices), filters=filters
                )
            )
        except QAError as exc:
            raise from_qa_error(exc, "question") from None
        finally:
            answer_slots.release()
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

    app.include_router(articles_router(assistant))
    app.include_router(embeddings_router(settings, assistant.embedder, answer_wait))
    mount_http(app, assistant, answer_slots)
    return app


class SlotStream:
    """A stream's events, holding one model slot until the stream ends, fails, is cancelled
    (the client went away) or is dropped without ever being read."""

    def __init__(self, events: AsyncIterator[str], slots: Slots) -> None:
        self.events = events
        self.slots = slots
        self.held = True

    def __aiter__(self) -> SlotStream:
        return self

    async def __anext__(self) -> str:
        try:
            return await anext(self.events)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slots.release()

    def __del__(self) -> None:
        self.release()
