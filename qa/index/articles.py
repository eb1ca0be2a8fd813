"""What the index holds, article by article: list, show, remove (`qa articles`, and the
functions ``GET/DELETE /api/articles`` call).

Removing an article removes its stored file too, so the corpus, the source of truth, agrees
with the index and the next `qa ingest` does not bring it back. The file is first renamed to
a hidden name (never read as an article); only when the index has dropped the article is it
deleted, and if the index write fails it is renamed back. A kill in between is settled by the
next writer (:mod:`qa.index.removals`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from qa import index as index_mod
from qa.core.config import Settings
from qa.core.types import Document, QAError
from qa.index.removals import Entry, journaled, parked_path, recover


@dataclass(frozen=True)
class ArticleInfo:
    """One indexed article, as listed."""

    id: str
    title: str
    published: str
    source: str
    url: str
    path: str  # the file it was read from ("file.jsonl#key" for a record)
    chunks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Removed:
    """An article removed: what it was, whether its file was deleted, the index after."""

    article: ArticleInfo
    file_deleted: bool
    articles_left: int
    chunks_left: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": self.article.to_dict(),
            "file_deleted": self.file_deleted,
            "articles": self.articles_left,
            "chunks": self.chunks_left,
        }


def list_articles(
    settings: Settings, *, since: date | None = None, sources: tuple[str, ...] = ()
) -> list[ArticleInfo]:
    """Indexed articles, newest first (undated last), published on or after ``since`` and
    from one of ``sources`` (case-insensitive) when given."""
    index = index_mod.open_index(settings)
    wanted = {s.strip().lower() for s in sources}
    first = since.isoformat() if since else ""
    try:
        found = [
            ArticleInfo(info.id, info.title, info.published, info.source, info.url, path, chunks)
            for info, path, chunks in index.documents()
            if (not first or (info.published and info.published[:10] >= first))
            and (not wanted or info.source.strip().lower() in wanted)
        ]
    finally:
        index.close()
    found.sort(key=lambda a: a.id)
    found.sort(key=lambda a: a.published or "", reverse=True)
    return found


def get_article(settings: Settings, doc_id: str) -> tuple[ArticleInfo, Document]:
    """One article with its stored text; a clear error when the id is unknown."""
    index = index_mod.open_index(settings)
    try:
        doc = index.document(doc_id)
        chunks = next((n for info, _, n in index.documents() if info.id == doc_id), 0)
    finally:
        index.close()
    if doc is None:
        raise QAError(f"no article with id {doc_id!r} in the index (see `qa articles list`)")
    info = ArticleInfo(doc.id, doc.title, doc.published, doc.source, doc.url, doc.path, chunks)
    return info, doc


def remove_article(settings: Settings, doc_id: str) -> Removed:
    """Remove an article from the index and delete the file it was read from; its URL is
    remembered so that no feed or later `qa ingest URL` fetches it again.

    An article that is one record of a ``.json``/``.jsonl`` file holding others is refused:
    deleting the file would lose them, and keeping it would bring the article back.
    """
    root = settings.index_dir
    recover(settings)  # a removal killed after the index dropped its article ends here
    info, _ = get_article(settings, doc_id)
    file_part, _, record = info.path.partition("#")
    if record:
        raise QAError(
            f"article {doc_id!r} is one record of {file_part}, which holds other articles: "
            "remove the record from that file and run `qa ingest`"
        )
    # Stored paths are relative to the config file's folder (a moved project still works).
    source = Path(index_mod.absolute_path(file_part, settings.root.resolve()))
    parked = parked_path(source)
    moved = False
    # Journaled: a kill from here on is finished or undone by the next writer (qa.index.removals).
    with journaled(settings, Entry(str(source), doc_id, info.url)):
        if file_part and source.is_file():
            os.replace(source, parked)  # hidden: a concurrent ingest no longer reads it
            moved = True
        try:
            report = index_mod.remove(root, [doc_id], settings)
        except BaseException:
            if moved:
                os.replace(parked, source)
            raise
        if moved:
            parked.unlink(missing_ok=True)
        if info.url:  # a feed still listing it must not bring it back
            # Imported here: it brings the fetcher (httpx) and YAML, which reading articles
            # (and a starting `qa serve`, which lists them) never needs.
            from qa.ingest.corpus import remember_removed

            remember_removed(settings.corpus_dir, info.url)
    return Removed(info, moved, report.articles_total, report.chunks_total)
