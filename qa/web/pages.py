"""Fetched articles become corpus files: extraction from HTML, the stored front-matter ``.md``,
and the catalog that keeps an article from being stored twice.

The corpus stays the source of truth: a fetched article is written as the same front-matter
Markdown a user would write (``title``, ``date``, ``source``, ``author``, ``url``), under
``<corpus>/web/<host>/``, and indexed by the ordinary incremental ingest. Each file is written
to a hidden temporary name and renamed into place, so a crash never leaves half an article
(hidden files are never read as articles).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from qa.core.locks import folder_lock
from qa.core.types import Document, QAError
from qa.ingest import read_paths
from qa.ingest.corpus import (
    REMOVED_FILE,
    TEXT_FOLDER,
    WEB_FOLDER,
    removed_urls,
    write_atomically,
)
from qa.ingest.readers import normalize_date
from qa.web.fetch import FetchError, normalize_url

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass(frozen=True)
class WebArticle:
    """An article ready to be stored: extracted text and the metadata found for it."""

    url: str
    title: str
    text: str
    published: str = ""  # YYYY-MM-DD or ""
    source: str = ""  # the outlet
    author: str = ""


def text_key(text: str) -> str:
    """What "the same text" means: equal after collapsing whitespace and case."""
    return hashlib.sha256(" ".join(text.split()).lower().encode("utf-8")).hexdigest()


def extract(
    html: bytes | str,
    url: str,
    *,
    min_words: int,
    fallback: WebArticle | None = None,
) -> WebArticle:
    """The article in an HTML page, with title, date, author and outlet extracted offline by
    trafilatura; ``fallback`` (what a feed entry said) fills what the page does not give, and
    its date, when it has one, wins.
    Raises :class:`FetchError` when the page holds no article of at least ``min_words``."""
    import trafilatura  # late: lxml and friends load only when a page is read

    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        # Dates from the page's metadata and URL only: the extensive search takes any date in
        # the text, such as "Copyright 2025" in a footer, as the publication day.
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    text = "" if doc is None or isinstance(doc, dict) else (doc.text or "")
    words = len(text.split())
    if words < min_words:
        raise FetchError(
            f"not an article: {words} words of text found (fetch.min_words is {min_words})"
        )
    assert doc is not None and not isinstance(doc, dict)
    back = fallback or WebArticle(url=url, title="", text="")
    return WebArticle(
        url=url,
        title=_one_line(doc.title) or back.title or _one_line(text.split("\n", 1)[0]),
        text=text,
        # A feed's date is the publisher's own statement; the page's comes from heuristics.
        published=back.published or normalize_date(doc.date),
        source=_one_line(doc.sitename) or back.source or (urlsplit(url).hostname or ""),
        author=_one_line(doc.author) or back.author,
    )


def _one_line(value: object) -> str:
    return "" if value is None else " ".join(str(value).split())


def _slug(title: str, limit: int = 60) -> str:
    words = re.findall(r"[a-z0-9]+", title.lower())
    slug = ""
    for word in words:
        if len(slug) + len(word) + 1 > limit:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug or "article"


def _host_folder(url: str) -> str:
    """The folder named after a URL's host: letters, digits, dots and hyphens only, never a
    dot-only name (a posted ``http://../x`` would otherwise climb out of ``web/``)."""
    host = re.sub(r"[^a-z0-9.-]+", "_", (urlsplit(url).hostname or "").lower()).strip(".")
    return host or "unknown-host"


def file_for(corpus: Path, article: WebArticle) -> Path:
    """Where an article is stored: ``web/<host>/<date>-<slug>-<hash>.md``; the hash (of the URL,
    or of the text when there is none) keeps two articles with one title apart."""
    if article.url:
        folder = _host_folder(article.url)
        digest = hashlib.sha1(article.url.encode("utf-8")).hexdigest()[:10]
    else:
        folder = TEXT_FOLDER
        digest = text_key(article.text)[:10]
    # published is YYYY-MM-DD or "" when it comes from normalize_date; anything else (a
    # caller's own WebArticle) is made a safe name too.
    day = re.sub(r"[^0-9-]+", "", article.published) or "undated"
    path = corpus / WEB_FOLDER / folder / f"{day}-{_slug(article.title)}-{digest}.md"
    if not path.resolve().is_relative_to((corpus / WEB_FOLDER).resolve()):
        raise QAError(f"refusing to store an article outside {corpus / WEB_FOLDER}: {path}")
    return path


def render(article: WebArticle) -> str:
    """The front-matter Markdown file of an article (fields left out when unknown)."""
    meta = {
        "title": article.title,
        "date": article.published,
        "source": article.source,
        "author": article.author,
        "url": article.url,
    }
    head = yaml.safe_dump(
        {k: v for k, v in meta.items() if v}, sort_keys=False, allow_unicode=True, width=1000
    )
    return f"---\n{head}---\n\n{article.text.strip()}\n"


class Catalog:
    """The articles already in the corpus, by normalised URL and by text, so an article met
    again (in the same run, another feed, or a later poll) is neither fetched nor stored; and
    the URLs removed with `qa articles remove`, so a feed does not bring them back."""

    def __init__(self, documents: Iterable[Document] = (), removed: Iterable[str] = ()) -> None:
        self.by_url: dict[str, str] = {}  # normalised URL -> why it is not fetched again
        self.by_text: dict[str, str] = {}
        self.paths: set[str] = set()  # files already counted, resolved (see refresh)
        for url in removed:
            self._add_url(url, f"removed earlier (listed in {WEB_FOLDER}/{REMOVED_FILE})")
        for doc in documents:
            self.add(doc.url, doc.text, doc.path)

    @classmethod
    def of_corpus(cls, corpus: Path, documents: Iterable[Document]) -> Catalog:
        return cls(documents, removed_urls(corpus))

    def _add_url(self, url: str, reason: str) -> None:
        # A user's file may carry any string as url.
        with contextlib.suppress(FetchError):
            self.by_url.setdefault(normalize_url(url), reason)

    def add(self, url: str, text: str, path: str) -> None:
        self.paths.add(str(Path(path).resolve()))
        if url:
            self._add_url(url, f"already stored as {path}")
        self.by_text.setdefault(text_key(text), f"same text as {path}")

    def url_seen(self, url: str) -> str:
        """Why an article at this URL is not fetched again, or "" when it is new."""
        try:
            return self.by_url.get(normalize_url(url), "")
        except FetchError:
            return ""

    def text_seen(self, text: str) -> str:
        """Why an article with this text is not stored again, or ""."""
        return self.by_text.get(text_key(text), "")

    def refresh(self, corpus: Path) -> None:
        """Count the articles stored under ``web/`` since this catalog was made (by another
        request of the server, another `qa watch`): called under the store lock, so the
        duplicate check sees every article written before it."""
        web = (corpus / WEB_FOLDER).resolve()
        if not web.is_dir():
            return
        new = [
            p
            for p in sorted(web.rglob("*.md"))
            if str(p) not in self.paths
            and not any(part.startswith(".") for part in p.relative_to(web).parts)
        ]
        if new:
            for doc in read_paths(new).documents:
                self.add(doc.url, doc.text, doc.path)


def store(corpus: Path, article: WebArticle, catalog: Catalog) -> Path:
    """Write ``article`` into the corpus and the catalog; raises :class:`FetchError` for a
    duplicate (same URL or same text as a stored article).

    The duplicate check and the write hold one lock on ``web/`` (between threads and
    processes), and the check first counts what others stored meanwhile: six requests
    posting one text at once store it once."""
    path = file_for(corpus, article)
    with folder_lock(corpus / WEB_FOLDER):
        catalog.refresh(corpus)
        reason = (catalog.url_seen(article.url) if article.url else "") or catalog.text_seen(
            article.text
        )
        if reason:
            raise FetchError(f"duplicate: {reason}")
        write_atomically(path, render(article))
        catalog.add(article.url, article.text, str(path))
    return path
