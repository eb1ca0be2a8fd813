"""The article routes of `qa serve`: list, remove and add articles (issue: a living corpus).

- ``GET /api/articles?since=YYYY-MM-DD&source=NAME``: the indexed articles, newest first.
- ``DELETE /api/articles/{doc_id}``: remove one article from the index and its stored file.
- ``POST /api/ingest``: ``{"urls": [...]}`` (feeds or article pages, fetched politely) or
  ``{"text", "title", "published"?, "source"?, "url"?, "author"?}``; each stored as a corpus
  file and indexed. The report lists every URL's outcome.

They sit behind the same guards as every API route (API key, Host/Origin, JSON only). A URL
whose host has a loopback, private or other non-public address is refused (its outcome says
why) unless ``fetch.allowed_networks`` lists the network: a same-machine client could
otherwise make the server fetch its neighbours or 169.254.169.254 (qa.fetch_guard). Each
call runs in a worker thread: fetching and embedding block. The routes do the same as
`qa articles` and `qa ingest URL`, through :mod:`qa.articles` and :mod:`qa.feeds`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from qa.api_models import StrictJSONRoute
from qa.assistant import Assistant
from qa.filters import parse_day
from qa.http_guard import APIError, from_qa_error
from qa.types import QAError

MAX_URLS = 50


class IngestRequest(BaseModel):
    """``POST /api/ingest``: URLs to fetch, or one article given as text."""

    model_config = ConfigDict(strict=True, extra="forbid")

    urls: list[str] = Field(default_factory=list, max_length=MAX_URLS)
    text: str | None = None
    title: str = ""
    published: str = ""
    source: str = ""
    url: str = ""
    author: str = ""


def _report(report: Any) -> dict[str, Any]:
    return {
        "outcomes": [o.to_dict() for o in report.outcomes],
        "index": report.sync.summary() if report.sync else None,
        "index_error": report.sync_error,
    }


def articles_router(assistant: Assistant) -> APIRouter:
    """The routes over ``assistant``'s settings and embedder."""
    from qa import articles, feeds

    settings = assistant.settings
    router = APIRouter(route_class=StrictJSONRoute)

    @router.get("/api/articles")
    async def list_articles(
        since: str | None = None, source: Annotated[list[str] | None, Query()] = None
    ) -> Response:
        try:
            day = parse_day(since, "since")
            found = await run_in_threadpool(
                lambda: articles.list_articles(settings, since=day, sources=tuple(source or ()))
            )
        except QAError as exc:
            raise from_qa_error(exc, "since") from None
        return JSONResponse({"articles": [a.to_dict() for a in found], "count": len(found)})

    @router.delete("/api/articles/{doc_id:path}")
    async def remove_article(doc_id: str) -> Response:
        try:
            removed = await run_in_threadpool(articles.remove_article, settings, doc_id)
        except QAError as exc:
            message = str(exc)
            if message.startswith("no article"):
                raise APIError(404, message, param="doc_id") from None
            if "another `qa ingest`" in message:
                raise APIError(409, message, code="index_busy") from None
            raise APIError(400, message, param="doc_id") from None
        return JSONResponse(removed.to_dict())

    @router.post("/api/ingest")
    async def ingest(body: IngestRequest) -> Response:
        if bool(body.urls) == (body.text is not None):
            raise APIError(400, "give either urls or text (with a title)", param="urls")
        try:
            if body.urls:
                report = await run_in_threadpool(
                    feeds.ingest_urls, body.urls, settings, assistant.embedder
                )
            else:
                report = await run_in_threadpool(
                    lambda: feeds.add_text(
                        settings,
                        assistant.embedder,
                        title=body.title,
                        text=body.text or "",
                        published=body.published,
                        source=body.source,
                        url=body.url,
                        author=body.author,
                    )
                )
        except QAError as exc:
            raise from_qa_error(exc, "text") from None
        return JSONResponse(_report(report))

    return router
