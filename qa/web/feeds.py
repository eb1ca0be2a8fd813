"""Feeds and web pages in: fetch, extract, store as corpus files, then index incrementally.

:func:`collect` fetches what it is given (a URL is a feed or an article page, told apart by
its content type) and stores each new article as a corpus file; :func:`reindex` brings the
index in line with the corpus, as `qa ingest` does; :func:`ingest_urls` does both. Every URL
that fails (not a feed, not an article, 404, timeout, too large, wrong content type,
duplicate) is reported with its reason and skipped; the rest go in.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from qa import index as index_mod
from qa.core.config import Settings
from qa.core.types import QAError
from qa.embedding.base import Embedder
from qa.ingest import read_paths
from qa.ingest.readers import normalize_date
from qa.web.feed_state import FeedState
from qa.web.fetch import Fetched, Fetcher, FetchError, normalize_url
from qa.web.pages import HTML_TYPES, Catalog, WebArticle, extract, store

STORED, DUPLICATE, NOT_MODIFIED, FAILED = "stored", "duplicate", "not_modified", "failed"


@dataclass(frozen=True)
class Outcome:
    """What happened to one URL: stored (detail: the file), duplicate or failed (the reason),
    or not_modified (a feed that answered 304)."""

    url: str
    status: str
    detail: str
    feed: str = ""  # the feed the link came from, if any

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "status": self.status, "detail": self.detail, "feed": self.feed}


@dataclass
class CollectReport:
    outcomes: list[Outcome] = field(default_factory=list)
    sync: index_mod.SyncReport | None = None  # None when nothing new was stored
    # The articles are stored but the index could not be synced (another writer holds it,
    # say): the next `qa ingest` or watch cycle indexes them.
    sync_error: str = ""
    seconds: float = 0.0

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def stored(self) -> list[Outcome]:
        return self.of(STORED)

    @property
    def failed(self) -> list[Outcome]:
        return self.of(FAILED)


@dataclass(frozen=True)
class FeedEntry:
    link: str
    title: str = ""
    published: str = ""
    author: str = ""


@dataclass(frozen=True)
class Feed:
    title: str
    entries: tuple[FeedEntry, ...]


def parse_feed(body: bytes) -> Feed:
    """Entries of an RSS or Atom document; raises :class:`FetchError` for anything else."""
    import feedparser

    parsed = feedparser.parse(body)
    # feedparser is lenient: a page that is not XML still "parses", with no version and no
    # entries. A feed with a small XML flaw but entries is accepted, as feed readers do; one
    # with a flaw and no entries is malformed, not empty.
    problem = parsed.get("bozo_exception")
    if not parsed.get("version") and not parsed.entries:
        why = f": {str(problem).splitlines()[0]}" if problem else ""
        raise FetchError(f"not an RSS or Atom feed{why}")
    if parsed.get("bozo") and not parsed.entries:
        # A feed cut off or broken before its first entry is not an empty feed: counted as
        # one, its failure went unreported and the exit code said all was well.
        # SAX's own message: its "<unknown>:2:46" position counts a line feedparser added.
        getter = getattr(problem, "getMessage", None)
        why = str(getter() if getter else problem or "unreadable").splitlines()[0]
        raise FetchError(f"malformed feed (XML error: {why}); no entries could be read")
    entries = []
    for entry in parsed.entries:
        link = entry.get("link") or ""
        if not link:
            continue
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        published = time.strftime("%Y-%m-%d", stamp) if stamp else ""
        entries.append(
            FeedEntry(
                link=link,
                title=" ".join(str(entry.get("title", "")).split()),
                published=published or normalize_date(entry.get("published", "")),
                author=" ".join(str(entry.get("author", "")).split()),
            )
        )
    return Feed(title=" ".join(str(parsed.feed.get("title", "")).split()), entries=tuple(entries))


def _is_feed_type(content_type: str) -> bool:
    return any(word in content_type for word in ("xml", "rss", "atom")) and (
        content_type not in HTML_TYPES
    )


def read_feed_list(path: Path) -> list[str]:
    """Feed URLs from a file, one per line; blank lines and ``#`` comments ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QAError(f"cannot read feed list {path}: {exc}") from None
    urls = [line.split("#", 1)[0].strip() for line in lines]
    return [u for u in urls if u]


class Collector:
    """One run of fetching: a shared client, the catalog of stored articles, the outcomes."""

    def __init__(self, settings: Settings, fetcher: Fetcher, catalog: Catalog) -> None:
        self.settings = settings
        self.fetcher = fetcher
        self.catalog = catalog
        self.outcomes: list[Outcome] = []

    def note(self, url: str, status: str, detail: str, feed: str = "") -> None:
        self.outcomes.append(Outcome(url, status, detail, feed))

    def url(self, url: str, *, feed_only: bool = False, state: FeedState | None = None) -> None:
        """Fetch one URL given by the user: a feed (its new entries are collected) or, unless
        ``feed_only``, an article page."""
        if reason := self.catalog.url_seen(url):
            self.note(url, DUPLICATE, reason)
            return
        validators = state.validators(url) if state else ("", "")
        try:
            fetched = self.fetcher.get(url, etag=validators[0], last_modified=validators[1])
            if fetched.not_modified:
                self.note(url, NOT_MODIFIED, "feed unchanged since the last poll (HTTP 304)")
                return
            if _is_feed_type(fetched.content_type) or feed_only:
                self.feed(url, fetched, state)
            elif fetched.content_type in HTML_TYPES:
                self.page(url, fetched)
            else:
                raise FetchError(
                    f"neither an HTML page nor a feed (content type {fetched.content_type!r})"
                )
        except FetchError as exc:
            self.note(url, FAILED, str(exc))

    def feed(self, url: str, fetched: Fetched, state: FeedState | None) -> None:
        feed = parse_feed(fetched.body)
        failures = len(self.failed_urls())
        for entry in feed.entries:
            self.entry(entry, feed_url=url, outlet=feed.title)
        if state is not None and len(self.failed_urls()) == failures:
            # Validators are kept only when every entry went in: an entry that failed (a
            # timeout, say) is retried at the next poll instead of hiding behind a 304.
            state.remember(url, fetched.etag, fetched.last_modified)

    def entry(self, entry: FeedEntry, *, feed_url: str, outlet: str) -> None:
        try:
            link = normalize_url(urljoin(feed_url, entry.link))  # links may be relative
        except FetchError as exc:
            self.note(entry.link, FAILED, str(exc), feed_url)
            return
        if reason := self.catalog.url_seen(link):
            self.note(link, DUPLICATE, reason, feed_url)
            return
        fallback = WebArticle(
            url=link,
            title=entry.title,
            text="",
            published=entry.published,
            source=outlet,
            author=entry.author,
        )
        try:
            fetched = self.fetcher.get(link)
            if fetched.content_type not in HTML_TYPES:
                raise FetchError(f"not an HTML page (content type {fetched.content_type!r})")
            self.page(link, fetched, fallback, feed_url)
        except FetchError as exc:
            self.note(link, FAILED, str(exc), feed_url)

    def page(
        self, url: str, fetched: Fetched, fallback: WebArticle | None = None, feed_url: str = ""
    ) -> None:
        link = normalize_url(url)
        article = extract(
            fetched.body, link, min_words=self.settings.fetch.min_words, fallback=fallback
        )
        try:
            path = store(self.settings.corpus_dir, article, self.catalog)
        except FetchError as exc:
            self.note(link, DUPLICATE, str(exc).removeprefix("duplicate: "), feed_url)
            return
        self.note(link, STORED, str(path), feed_url)

    def failed_urls(self) -> list[str]:
        return [o.url for o in self.outcomes if o.status == FAILED]


def read_corpus(settings: Settings) -> Any:
    """The corpus folder read as `qa ingest` reads it (the index folder excluded), after
    settling what a killed `qa articles remove` left (:mod:`qa.index.removals`)."""
    from qa.index.removals import recover

    corpus = settings.corpus_dir
    corpus.mkdir(parents=True, exist_ok=True)
    recover(settings)
    return read_paths(
        [corpus], exclude=[settings.index_dir], max_file_bytes=settings.ingest.max_file_bytes
    )


def reindex(settings: Settings, embedder: Embedder, corpus: Any = None) -> index_mod.SyncReport:
    """Bring the index in line with the corpus folder (only new or changed articles are
    embedded), with the same ids and scope as `qa ingest` of the corpus folder."""
    result = corpus if corpus is not None else read_corpus(settings)
    return index_mod.sync(
        settings.index_dir,
        result.documents,
        embedder,
        settings,
        in_scope=index_mod.scope([settings.corpus_dir], keep=[s.path for s in result.skipped]),
    )


def collect(
    urls: Sequence[str],
    settings: Settings,
    *,
    feeds: Sequence[str] = (),
    fetcher: Fetcher | None = None,
    catalog: Catalog | None = None,
    state: FeedState | None = None,
) -> list[Outcome]:
    """Fetch ``urls`` (feeds or pages) and ``feeds`` (feeds only) and store every new article
    in the corpus; nothing is indexed. ``state`` makes feed requests conditional."""
    if catalog is None:
        catalog = Catalog.of_corpus(settings.corpus_dir, read_corpus(settings).documents)
    own = fetcher is None
    client = fetcher or Fetcher(settings.fetch)
    try:
        run = Collector(settings, client, catalog)
        for url in urls:
            run.url(url, state=state)
        for url in feeds:
            run.url(url, feed_only=True, state=state)
    finally:
        if own:
            client.close()
    if state is not None:
        state.save()
    return run.outcomes


def ingest_urls(
    urls: Sequence[str],
    settings: Settings,
    embedder: Embedder,
    *,
    feeds: Sequence[str] = (),
    fetcher: Fetcher | None = None,
    use_state: bool = True,
) -> CollectReport:
    """Fetch and store new articles, then index them: what `qa ingest URL...` and
    ``POST /api/ingest`` with a URL do. The index is touched only when something was stored;
    if that fails, the stored articles stay and ``sync_error`` says why."""
    started = time.perf_counter()
    state = FeedState.for_corpus(settings.corpus_dir) if use_state else None
    outcomes = collect(urls, settings, feeds=feeds, fetcher=fetcher, state=state)
    report = CollectReport(outcomes=outcomes)
    if report.stored:
        try:
            report.sync = reindex(settings, embedder)
        except QAError as exc:
            report.sync_error = str(exc)
    report.seconds = time.perf_counter() - started
    return report


def add_text(
    settings: Settings,
    embedder: Embedder,
    *,
    title: str,
    text: str,
    published: str = "",
    source: str = "",
    url: str = "",
    author: str = "",
) -> CollectReport:
    """Store an article given as text (``POST /api/ingest`` with text) and index it, reported
    as one stored outcome (detail: the file). Raises :class:`QAError` for an empty text, an
    unreadable date, a bad URL or a duplicate; an index that cannot be synced is reported in
    ``sync_error``, the article staying stored."""
    if not text.strip():
        raise QAError("the article text is empty")
    if url:
        url = normalize_url(url)
    date = normalize_date(published) if published else ""
    if published and not date:
        raise QAError(f"cannot read the date {published!r}: use YYYY-MM-DD")
    article = WebArticle(
        url=url,
        title=" ".join(title.split()) or " ".join(text.split()[:12]),
        text=text,
        published=date,
        source=source,
        author=author,
    )
    corpus = read_corpus(settings)
    path = store(
        settings.corpus_dir, article, Catalog.of_corpus(settings.corpus_dir, corpus.documents)
    )
    report = CollectReport(outcomes=[Outcome(url, STORED, str(path))])
    try:
        report.sync = reindex(settings, embedder)
    except QAError as exc:
        report.sync_error = str(exc)
    return report
