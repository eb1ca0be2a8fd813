"""qa over the Model Context Protocol (issue #24): `qa mcp` on stdin/stdout, and ``/mcp`` under
`qa serve` (streamable HTTP), for assistants and IDEs that reach tools through MCP.

Tools (typed, structured results; each a thin layer over what the CLI and the HTTP API call):

- ``search``: passages for a query, with the filters of ``qa search`` (as-of day, since, until,
  sources) and ``k`` -> ids, titles, dates, outlets, URLs, text and offsets.
- ``ask``: the checked answer of ``qa ask``: answer text, short answer, confidence, citations
  (quote and its offsets in the article text) and the passages they number.
- ``list_articles``: the indexed articles, newest first (``qa articles list``).
- ``read_article``: one article's stored text, the text citation offsets point into.

Articles are also resources, ``qa://articles/{id}`` (an id's ``#`` written ``%23``).

Bad arguments are tool errors (``isError`` with one line naming the argument), never a
crashed server: the bounds, date rules and messages are the HTTP API's (:mod:`qa.serving.schemas`,
:func:`qa.retrieval.filters.build_filters`). One rule is added for the model on the other end, which
cannot see the corpus: a ``sources`` name no indexed article has is an error listing the known
outlets, not an empty result it would take for "no news".

Under `qa serve` the route sits behind the app's guards (API key, Host, Origin, JSON bodies:
:mod:`qa.serving.guard`), so the SDK's own Host/Origin check is off; it is stateless and answers
in JSON (every call is one request and one reply), and ``ask`` shares the model slots of
``/api/ask``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field, ValidationError

from qa.answering.assistant import Assistant
from qa.core.types import Document, Filters, Hit, QAError
from qa.index.articles import list_articles
from qa.retrieval.filters import build_filters, parse_day
from qa.serving.guard import APIError, Slots, from_qa_error
from qa.serving.schemas import MAX_SOURCES, Day, K, validation_error

log = logging.getLogger("qa.mcp")

HTTP_PATH = "/mcp"
ARTICLE_URI = "qa://articles/{+doc_id}"
DEFAULT_LISTED = 50
MAX_LISTED = 1000
SHOWN_SOURCES = 20  # outlets named in an unknown-source error

T = TypeVar("T")

Sources = Annotated[
    list[str] | None,
    Field(max_length=MAX_SOURCES, description="only articles from these outlets (any case)"),
]
Limit = Annotated[
    int, Field(ge=1, le=MAX_LISTED, description=f"articles to return (1-{MAX_LISTED})")
]


# --------------------------------------------------------------------------- results


class AppliedFilters(BaseModel):
    as_of: str | None = Field(description="the day the question was asked (YYYY-MM-DD)")
    since: str | None
    until: str | None
    sources: list[str]


class Passage(BaseModel):
    n: int = Field(description="the passage number answers cite as [n]")
    chunk_id: str
    doc_id: str = Field(description="the article's id (read_article, qa://articles/{id})")
    title: str
    published: str = Field(description="publication date, YYYY-MM-DD when known")
    source: str = Field(description="the outlet, when known")
    url: str
    text: str
    start: int = Field(description="offset of the passage in the article text")
    end: int
    score: float


class SearchResult(BaseModel):
    query: str
    filters: AppliedFilters
    passages: list[Passage]


class Citation(BaseModel):
    n: int = Field(description="the passage cited, as [n] in the answer")
    chunk_id: str
    doc_id: str
    title: str
    published: str
    quote: str = Field(description="the supporting span, verbatim from the article")
    start: int = Field(description="offset of the quote in the article text (read_article)")
    end: int


class AskResult(BaseModel):
    question: str
    answer: str = Field(description="the answer, each sentence citing the passages behind it")
    answered: bool
    short_answer: str = Field(description="the span that answers (name, number, date); or ''")
    short_answer_citation: int | None
    confidence: float | None = Field(description="learned probability the short answer is right")
    citations: list[Citation]
    passages: list[Passage]
    unsupported: list[str] = Field(description="answer sentences no passage supports")
    model: str
    filters: AppliedFilters | None = None


class ArticleSummary(BaseModel):
    id: str
    uri: str = Field(description="the article as an MCP resource")
    title: str
    published: str
    source: str
    url: str
    chunks: int


class ArticleList(BaseModel):
    count: int = Field(description="articles matching, of which the first `limit` are listed")
    articles: list[ArticleSummary]


class Article(BaseModel):
    id: str
    uri: str
    title: str
    published: str
    source: str
    url: str
    text: str = Field(description="the stored text; citation offsets point into it")


def article_uri(doc_id: str) -> str:
    # Ids are relative paths ("web/host/page", "feed#42"): "/" stays, "#" and the rest are quoted.
    return "qa://articles/" + quote(doc_id, safe="/")


def passages(hits: tuple[Hit, ...]) -> list[Passage]:
    return [Passage(n=n, url=h.doc.url, **h.to_dict()) for n, h in enumerate(hits, 1)]


def applied(filters: Filters) -> AppliedFilters:
    return AppliedFilters(**filters.to_dict())


def _markdown(doc: Document) -> str:
    about = " · ".join(part for part in (doc.source, doc.published, doc.url) if part)
    return "\n\n".join(part for part in (f"# {doc.title}", about, doc.text) if part) + "\n"


def unknown_source(wanted: tuple[str, ...], known: frozenset[str]) -> None:
    """A clear error for the first of ``wanted`` (lower case) that no indexed article is from:
    the model on the other end cannot see the corpus, and would read no passages as no news."""
    unknown = [s for s in wanted if s not in known]
    if unknown:
        names = sorted(known - {""})
        listed = ", ".join(repr(n) for n in names[:SHOWN_SOURCES]) or "none"
        more = len(names) - SHOWN_SOURCES
        raise QAError(
            f"sources: no indexed article is from {unknown[0]!r}; the outlets are {listed}"
            + (f" and {more} more" if more > 0 else "")
        )


# --------------------------------------------------------------------------- tools


class Tools:
    """The tools over one shared Assistant; blocking work runs in worker threads."""

    def __init__(self, assistant: Assistant, answer_slots: Slots | None = None) -> None:
        self.assistant = assistant
        self.answer_slots = answer_slots
        self._sources: dict[str, frozenset[str]] = {}  # index version -> outlets, lower case

    async def _call(self, work: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(work)
        except QAError as exc:
            # The HTTP API's rule: the caller's mistake is said as is; a failed model service
            # only in public words (the detail, which may name local paths, goes to the log).
            raise ToolError(from_qa_error(exc).message) from None

    def _filters(
        self, as_of: str | None, since: str | None, until: str | None, sources: list[str] | None
    ) -> Filters:
        filters = build_filters(as_of, since, until, sources or ())
        if filters.sources:
            index = self.assistant.index
            if index.version not in self._sources:
                outlets = frozenset(i.source.strip().lower() for i, _, _ in index.documents())
                self._sources = {index.version: outlets}
            unknown_source(filters.sources, self._sources[index.version])
        return filters

    async def search(
        self,
        query: Annotated[str, Field(description="what to look for")],
        k: K | None = None,
        as_of: Day = None,
        since: Day = None,
        until: Day = None,
        sources: Sources = None,
    ) -> SearchResult:
        """Find the news passages that best match a query (dense and keyword search, fused),
        published by the as-of day (default today) and within the given dates and outlets."""

        def work() -> SearchResult:
            filters = self._filters(as_of, since, until, sources)
            retrieval = self.assistant.retrieve(query, k, filters=filters)
            return SearchResult(
                query=query, filters=applied(filters), passages=passages(retrieval.hits)
            )

        return await self._call(work)

    async def ask(
        self,
        question: Annotated[str, Field(description="a question about the news")],
        k: K | None = None,
        as_of: Day = None,
        since: Day = None,
        until: Day = None,
        sources: Sources = None,
    ) -> AskResult:
        """Answer a question from the news articles, with citations checked against them:
        every cited sentence comes with the verbatim quote and its offsets in the article.
        "answered" is false when the articles do not hold the answer."""

        def work() -> AskResult:
            filters = self._filters(as_of, since, until, sources)
            answer = self.assistant.ask(question, k=k, filters=filters)
            return AskResult.model_validate(
                {**answer.to_dict(), "passages": passages(answer.passages)}
            )

        if self.answer_slots is None:
            return await self._call(work)
        try:
            await self.answer_slots.acquire()
        except APIError as exc:
            raise ToolError(exc.message) from None
        try:
            return await self._call(work)
        finally:
            self.answer_slots.release()

    async def list_articles(
        self,
        since: Annotated[str | None, Field(description="published on or after YYYY-MM-DD")] = None,
        sources: Sources = None,
        limit: Limit = DEFAULT_LISTED,
    ) -> ArticleList:
        """List the indexed articles, newest first, with their ids, dates and outlets."""

        def work() -> ArticleList:
            day = parse_day(since, "since")
            filters = self._filters(None, None, None, sources)
            found = list_articles(self.assistant.settings, since=day, sources=filters.sources)
            return ArticleList(
                count=len(found),
                articles=[
                    ArticleSummary(
                        id=a.id,
                        uri=article_uri(a.id),
                        title=a.title,
                        published=a.published,
                        source=a.source,
                        url=a.url,
                        chunks=a.chunks,
                    )
                    for a in found[:limit]
                ],
            )

        return await self._call(work)

    async def read_article(
        self, id: Annotated[str, Field(description="the article's id (doc_id in results)")]
    ) -> Article:
        """Read one article's full stored text (citation offsets point into it)."""

        def work() -> Article:
            doc = self._document(id)
            return Article(
                id=doc.id,
                uri=article_uri(doc.id),
                title=doc.title,
                published=doc.published,
                source=doc.source,
                url=doc.url,
                text=doc.text,
            )

        return await self._call(work)

    async def article_resource(self, doc_id: str) -> str:
        """The article as Markdown: title, outlet, date, URL, then the stored text."""
        try:
            doc = await anyio.to_thread.run_sync(self._document, doc_id)
        except QAError as exc:
            raise ResourceNotFoundError(from_qa_error(exc).message) from None
        return _markdown(doc)

    def _document(self, doc_id: str) -> Document:
        doc = self.assistant.document(doc_id)
        if doc is None:
            raise QAError(f"no article with id {doc_id!r} (list_articles and search give ids)")
        return doc


# --------------------------------------------------------------------------- the server


class _Server(MCPServer[Any]):
    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError):
                raise  # a crash: the SDK's bare "Error executing tool", details in the log
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                # One line naming the argument, as the HTTP API says it ("'k': Input should be
                # greater than or equal to 1"), instead of pydantic's multi-line report.
                message = validation_error(cause.errors()).message
            else:
                message = str(exc).removeprefix(f"Error executing tool {name}: ")
            raise ToolError(f"{name}: {message}") from cause


def build_server(
    assistant: Assistant,
    *,
    answer_slots: Slots | None = None,
    lifespan: Callable[[Any], Any] | None = None,
) -> MCPServer[Any]:
    """The MCP server over ``assistant``; ``answer_slots`` bound concurrent answers (under
    `qa serve`), ``lifespan`` runs around a stdio session (the CLI warms up there)."""
    tools = Tools(assistant, answer_slots)
    server = _Server(
        "qa",
        title="qa: news question answering",
        instructions=(
            "Search and ask about the indexed news articles. Answers cite passages [n]; each "
            "citation has a verbatim quote with offsets into read_article's text. Dates are "
            "YYYY-MM-DD; as_of is the day the question is asked (later news is hidden)."
        ),
        log_level="WARNING",
        lifespan=lifespan,
    )
    read_only = {"readOnlyHint": True, "openWorldHint": False}
    for tool in (tools.search, tools.ask, tools.list_articles, tools.read_article):
        server.add_tool(tool, annotations=read_only)  # type: ignore[arg-type]
    server.resource(
        ARTICLE_URI,
        name="article",
        title="A news article",
        description="An indexed article as Markdown (ids from list_articles or search)",
        mime_type="text/markdown",
    )(tools.article_resource)
    return server


def mount_http(app: Any, assistant: Assistant, answer_slots: Slots) -> None:
    """Serve MCP at ``/mcp`` of the `qa serve` app (a FastAPI app whose guards already cover
    every route); its session manager runs for the app's lifetime."""
    server = build_server(assistant, answer_slots=answer_slots)
    http = server.streamable_http_app(
        streamable_http_path=HTTP_PATH,
        stateless_http=True,
        json_response=True,
        # Host and Origin are checked by qa.serving.guard with the server's own settings
        # (server.allowed_hosts, cors_origins), before this route is reached.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    app.router.routes.extend(http.routes)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: Any) -> AsyncIterator[Any]:
        async with server.session_manager.run(), outer(running) as state:
            yield state

    app.router.lifespan_context = lifespan
