"""The corpus folder's own files: where fetched articles go, the list of removed articles' URLs
(so no feed fetches them again), and the atomic write every stored file goes through."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

WEB_FOLDER = "web"  # under the corpus folder
REMOVED_FILE = ".removed.json"  # under WEB_FOLDER; hidden, so never read as an article
TEXT_FOLDER = "text"  # under WEB_FOLDER: articles posted as text, with no URL


def write_atomically(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` through a hidden temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per call: threads of one server writing the same article must not
    # share (and rename away) one temporary file.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o644)  # as open() would make it, not mkstemp's owner-only 0600
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def removed_urls(corpus: Path) -> list[str]:
    """URLs of articles removed with `qa articles remove` (``<corpus>/web/.removed.json``)."""
    try:
        data = json.loads((corpus / WEB_FOLDER / REMOVED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [u for u in data if isinstance(u, str)] if isinstance(data, list) else []


def remember_removed(corpus: Path, url: str) -> None:
    """Record a removed article's URL, so no feed or later ingest fetches it again."""
    urls = removed_urls(corpus)
    if url not in urls:
        write_atomically(corpus / WEB_FOLDER / REMOVED_FILE, json.dumps([*urls, url], indent=1))
