"""Removals of article files that survive a kill: a journal of the files being removed, and
the recovery every writer runs first.

`qa articles remove` renames the article's file aside (``.NAME.md.removing``, hidden, so no
ingest reads it), drops the article from the index, then deletes the file. A kill -9 between
those steps used to leave the hidden file behind for ever. Now each removal first writes an
entry in ``<corpus>/.removing/`` naming the file, its article id and URL, and holds the lock
on that folder until it is done; so an entry found under the lock belongs to a removal that
died, and :func:`recover` settles it by what the index says:

* the index still holds the article (killed before the index was written): undo, the file is
  renamed back, as if the command had never run;
* the index no longer holds it (killed after): finish, the hidden file is deleted and the URL
  remembered, so no feed brings the article back.

:func:`recover` runs at the start of `qa articles remove` (CLI and ``DELETE /api/articles``),
`qa ingest`, `qa watch` and ``POST /api/ingest``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qa import index as index_mod
from qa.core.config import Settings
from qa.core.locks import folder_lock
from qa.core.types import QAError

JOURNAL = ".removing"  # under the corpus folder; hidden, so never walked as articles


def parked_path(source: Path) -> Path:
    """Where a file being removed waits, hidden, for the index to drop its article."""
    return source.with_name(f".{source.name}.removing")


@dataclass(frozen=True)
class Entry:
    """One removal in progress: the article's file (absolute), its id and its URL."""

    path: str
    doc_id: str
    url: str

    @property
    def file(self) -> Path:
        return Path(self.path)


def _journal(settings: Settings) -> Path:
    return settings.corpus_dir / JOURNAL


def _entry_file(journal: Path, source: Path) -> Path:
    return journal / (hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:16] + ".json")


@contextmanager
def journaled(settings: Settings, entry: Entry) -> Iterator[None]:
    """Hold the journal's lock, settle what dead removals left, and record ``entry`` for the
    ``with`` block; the record goes when the block ends, whether it succeeded or raised (a
    failure inside has already put the file back)."""
    journal = _journal(settings)
    with folder_lock(journal):
        _recover_locked(settings, journal)
        record = _entry_file(journal, entry.file)
        tmp = record.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"path": entry.path, "id": entry.doc_id, "url": entry.url}, handle)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the file is renamed aside
        os.replace(tmp, record)
        try:
            yield
        finally:
            record.unlink(missing_ok=True)


def recover(settings: Settings) -> list[str]:
    """Settle the removals that a killed process left half done (see the module docstring);
    one line per file put back or deleted. Nothing is locked when there is no journal."""
    journal = _journal(settings)
    if not journal.is_dir():
        return []
    with folder_lock(journal):
        return _recover_locked(settings, journal)


def _recover_locked(settings: Settings, journal: Path) -> list[str]:
    notes = []
    for record in sorted(journal.glob("*.json")):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            entry = Entry(str(data["path"]), str(data["id"]), str(data.get("url") or ""))
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)  # torn before its rename: no file was moved
            continue
        note = _settle(settings, entry)
        if note:
            notes.append(note)
        record.unlink(missing_ok=True)
    for tmp in journal.glob("*.tmp"):  # an entry killed while being written
        tmp.unlink(missing_ok=True)
    return notes


def _settle(settings: Settings, entry: Entry) -> str:
    source, parked = entry.file, parked_path(entry.file)
    if _index_holds(settings, entry):
        if not parked.exists():
            return ""  # killed before the rename: nothing was moved
        if source.exists():  # a new file took the name since: it is the one stored now
            parked.unlink()
        else:
            os.replace(parked, source)
        return f"{source}: its removal was interrupted before the index dropped it; restored"
    if entry.url:  # a feed still listing it must not bring it back
        from qa.ingest.corpus import remember_removed  # brings httpx and YAML: only when needed

        remember_removed(settings.corpus_dir, entry.url)
    if parked.exists():
        parked.unlink()
        return f"{source}: its removal was interrupted after the index dropped it; deleted"
    return ""


def _index_holds(settings: Settings, entry: Entry) -> bool:
    """Whether the index still holds the article read from the entry's file. An index that
    cannot be read counts as holding it: putting the file back loses nothing."""
    try:
        index = index_mod.open_index(settings)
    except QAError:
        return True
    try:
        doc = index.document(entry.doc_id)
    finally:
        index.close()
    if doc is None:
        return False
    held = index_mod.absolute_path(doc.path, settings.root.resolve())
    return os.path.abspath(held.split("#", 1)[0]) == os.path.abspath(entry.path)
