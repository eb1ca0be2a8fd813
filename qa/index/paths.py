"""Which article is which: how paths are stored, the one id rule, and the scope of an ingest."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from qa.core.types import Document


def stored_path(path: str, base: Path) -> str:
    """How an article's path is stored: relative to ``base`` (the config file's folder) when
    the file is under it, so a moved or re-cloned project finds its articles again; otherwise
    absolute, so the same file read as ``../shared/x`` or ``/work/shared/x`` is one article. A
    relative ``path`` is relative to the working folder, as the reader that opened it saw it.
    A ``#record`` suffix is kept."""
    file, mark, record = path.partition("#")
    if not file:
        return path
    p = Path(os.path.abspath(file))
    if p.is_relative_to(base):
        return p.relative_to(base).as_posix() + mark + record
    return str(p) + mark + record


def absolute_path(path: str, base: Path) -> str:
    """The inverse of :func:`stored_path` (a stored relative path is relative to ``base``)."""
    file, mark, record = path.partition("#")
    if not file or Path(file).is_absolute():
        return path
    return os.path.normpath(base / file) + mark + record


def assign_ids(
    documents: Iterable[Document], stored: dict[str, dict[str, Any]], base: Path
) -> dict[str, Document]:
    """The one id rule, the same for one run over several folders or several runs.

    An article read from a path the index already holds keeps the id it has there. Otherwise
    it takes the id it was read with (its path relative to the folder given), unless another
    path holds that id, in the index or earlier in this run (``a/x.md`` then ``b/x.md``): then
    it gets ``<id>@<8 hex digits of its stored path>``. An article read from a new path with
    the content of an indexed article whose file is gone has moved: it keeps that id. A path
    read twice counts once. Returns the documents by id, with their paths in stored form.
    """
    # Stored paths in today's form: an index written by an older `qa` may hold "../x".
    held = {d: stored_path(absolute_path(m["path"], base), base) for d, m in stored.items()}
    id_of_path = {path: d for d, path in held.items() if path}
    documents = list(documents)
    id_of_path |= _moved(documents, stored, held, id_of_path, base)
    out: dict[str, Document] = {}
    seen: set[str] = set()
    for doc in documents:
        path = stored_path(doc.path, base)
        if not path:  # built in code, read from no file: its id is all there is
            out.setdefault(doc.id, doc)
            continue
        if path in seen:
            continue
        seen.add(path)
        doc_id = id_of_path.get(path)
        if doc_id is None:
            doc_id = doc.id
            if held.get(doc_id, path) != path or doc_id in out:
                doc_id = f"{doc.id}@{hashlib.sha1(path.encode('utf-8')).hexdigest()[:8]}"
            held[doc_id] = path
        out[doc_id] = replace(doc, id=doc_id, path=path)
    return out


def _moved(
    documents: list[Document],
    stored: dict[str, dict[str, Any]],
    held: dict[str, str],
    id_of_path: dict[str, str],
    base: Path,
) -> dict[str, str]:
    """New stored path -> id, for each article read from a path the index does not hold whose
    content hash is that of an indexed article whose file no longer exists (a folder moved or
    renamed, outside the project too, where the scope of an ingest never reaches the old
    path). Each indexed article is claimed once; files are looked at only when a new path
    came in."""
    new = [(p, d) for d in documents if (p := stored_path(d.path, base)) and p not in id_of_path]
    if not new:
        return {}
    gone: dict[str, list[str]] = {}
    for doc_id, meta in stored.items():
        file = absolute_path(held[doc_id], base).split("#", 1)[0]
        if meta.get("hash") and file and not os.path.exists(file):
            gone.setdefault(meta["hash"], []).append(doc_id)
    moves: dict[str, str] = {}
    for path, doc in new:
        ids = gone.get(doc.content_hash) if gone and path not in moves else None
        if ids:
            moves[path] = ids.pop(0)
    return moves


def scope(roots: Sequence[Path], keep: Iterable[str] = ()) -> Callable[[str], bool]:
    """Which indexed articles an ingest of ``roots`` may remove: those read from a file under
    one of the roots, except the files in ``keep`` (read this time without success: a file that
    turned corrupt must not cost the article already stored). Paths are absolute."""
    resolved = [r.resolve() for r in roots]
    kept = {k.split("#", 1)[0] for k in keep}

    def in_scope(path: str) -> bool:
        file = Path(path.split("#", 1)[0])
        if str(file) in kept:
            return False
        return any(file == r or file.is_relative_to(r) for r in resolved)

    return in_scope
