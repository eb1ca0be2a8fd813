"""The article routes of `qa serve`: list, remove and add articles (issue: a living corpus).

- ``GET /api/articles?since=YYYY-MM-DD&source=NAME``: the indexed articles, newest first.
- ``DELETE /api/articles/{doc_id}``: remove one article from the index and its stored file.
- ``POST /api/ingest``: ``{"urls": [...]}`` (feeds or article pages, fetched politely) or
  ``{"text", "title", "published"?, "source"?, "url"?, "author"?}``; each stored as a corpus
  file and indexed. The report lists every URL's outcome.

They sit behind the same guards as every API route (API key, Host/Origin, JSON only). A URL
whose host has a loopback, private or other non-public address is refused (its outcome says
why) unless ``fetch.allowed_networks`` lists the network: a same-machine client could
otherwise make the server fetch its neighbours or 169.254.169.254 (qa.web.guard). Each
call runs in a worker thread: fetching and embedding block. The routes do the same as
`qa articles` and `qa ingest URL`, through :mod:`qa.index.articles` and :mod:`qa.web.feeds`.

At most ``server.max_concurrent_ingests`` ingests run at once and one more is refused at once
(503 with Retry-After): a fetch may take up to ``fetch.total_timeout`` a URL, and ingests
must not take the worker threads questions need. Outcomes and errors name corpus files
relative to the corpus folder (``web/<host>/<file>.md``): remote callers learn nothing of the
server's own folders.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from qa.answering.assistant import Assistant
from qa.core.config import Settings
from qa.core.types import QAError
from qa.retrieval.filters import parse_day
from qa.serving.guard import APIError, Slots, from_qa_error
from qa.serving.schemas import StrictJSONRoute

MAX_URLS = 50
INGEST_RETRY_AFTER = 10.0  # seconds a refused ingest is told to wait


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


def hide_paths(text: str, settings: Settings) -> str:
    """``text`` with the server's corpus folder dropped from the paths it names (a file shows
    as ``web/host/file.md``) and its index folder shown as ``<index>``."""
    folders: dict[str, str] = {}
    for folder, shown in ((settings.corpus_dir, ""), (settings.index_dir, "<index>")):
        for form in (str(folder), str(folder.resolve())):
            folders[form] = shown
    # Longest first: the index folder may live inside the corpus folder. A folder counts only
    # as a whole path or followed by "/" (not /srv/corpus in /srv/corpus2).
    for form in sorted(folders, key=len, reverse=True):
        shown = folders[form]
        whole, inside = (shown or "."), (f"{shown}/" if shown else "")
        text = text.replace(form + "/", inside)
        text = re.sub(re.escape(form) + r"(?![\w.-])", whole, text)
    return text


def _report(report: Any, settings: Settings) -> dict[str, Any]:
    return {
        "outcomes": [
            {k: hide_paths(v, settings) for k, v in o.to_dict().items()} for o in report.outcomes
        ],
        "index": report.sync.summary() if report.sync else None,
        "index_error": hide_paths(report.sync_error, settings),
    }


def articles_router(assistant: Assistant) -> APIRouter:
    """The routes over ``assistant``'s settings and embedder."""
    from qa.index import articles
    from qa.web import feeds

    settings = assistant.settings
    router = APIRouter(route_class=StrictJSONRoute)
    if settings.server.max_concurrent_ingests < 1:
        raise QAError(
            "server.max_concurrent_ingests must be at least 1 "
            f"(got {settings.server.max_concurrent_ingests})"
        )
    ingest_slots = Slots(
        settings.server.max_concurrent_ingests,
        0.0,
        "with other ingests",
        retry_after=INGEST_RETRY_AFTER,
    )

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
        await ingest_slots.acquire()
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
            error = from_qa_error(exc, "text")
            error.message = hide_paths(error.message, settings)
            raise error from None
        finally:
            ingest_slots.release()
        return JSONResponse(_report(report, settings))

    return router
