"""The index folder on disk: its layout, the build settings in the manifest, the writer's lock,
the commit of a new generation and the collection of old ones.

Layout of the index folder::

    CURRENT          name of the live generation (replaced atomically with os.replace)
    LOCK             held while a writer builds a new generation
    store-000003.sqlite  articles (with their stored text) and chunks, shared by the generations
                    that name it: each row records the generations that added and retired it
                    (qa.index.chunk_store), so a generation reads exactly its own rows
    gen-000007/      one complete, immutable generation
        manifest.json   schema, embedding model, dimension and weights fingerprint, chunking,
                        the store, the segments, a content hash and stored path per article;
                        readers hold a shared lock on it while they use the generation
        seg-000003/     segments: vectors, FAISS structure and BM25 postings of some chunks
        seg-000007/     (qa.index.segments), hard links to the same files in every generation
                        that has them: written once, never changed
        deleted.npy     chunk rows of those segments this generation no longer has
    .tmp-gen-*/      a generation being written (or left by a killed writer)
    .trash-gen-*/    a generation being deleted by the collector

A writer builds a new generation beside the live one (linking the segments it keeps, writing
one for the new chunks, adding rows to the store that no committed generation sees yet) and
only then points CURRENT at it (:func:`commit`), so a crash or kill at any moment leaves a
loadable, consistent index: the vectors, the chunk store and BM25 can never fall out of step
(the failure mem0 #7117 reports).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from qa.core.types import QAError
from qa.index import chunk_store
from qa.index.check import current_name

SCHEMA_VERSION = 2  # 1: one copy of everything per generation
# A write the file system refused: the disk full, the folder read-only or not ours.
WRITE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM)
CURRENT = "CURRENT"


def live_generation(root: Path) -> Path | None:
    """The generation CURRENT points at, or None when there is no complete index; raises
    :class:`qa.index.check.IndexDamaged` when CURRENT does not name a generation."""
    try:
        raw = (root / CURRENT).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    generation = root / current_name(root, raw)  # CURRENT of garbage: IndexDamaged
    return generation if (generation / "manifest.json").is_file() else None


def write_failed(root: Path, exc: OSError | sqlite3.OperationalError) -> QAError:
    """One line for a write the file system refused. Nothing was committed: a generation is
    written beside the live one, which CURRENT names until the last step."""
    errno_ = getattr(exc, "errno", None)
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if errno_ in (errno.EROFS, errno.EACCES, errno.EPERM):
        return QAError(
            f"the index at {root} cannot be written ({reason}): a read-only index can be "
            "searched, not changed; give a writable --index"
        )
    if errno_ == errno.ENOSPC or "disk is full" in str(exc):
        return QAError(
            f"no space left on the device of the index at {root}: nothing was changed (the "
            "previous index is intact); free some space and run the command again"
        )
    return QAError(
        f"could not write the index at {root} ({reason}): nothing was changed (the previous "
        "index is intact)"
    )


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / "LOCK", "w")  # noqa: SIM115 - closed by the with below
    except OSError as exc:  # a read-only folder: one line, not a traceback
        raise write_failed(root, exc) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise QAError(f"another `qa ingest` is writing the index at {root}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def writing(root: Path) -> Iterator[None]:
    """The writer's lock, and a write the file system refuses inside it (a full disk, a
    read-only file) told in one line (:func:`write_failed`)."""
    try:
        with writer_lock(root):
            yield
    except (OSError, sqlite3.OperationalError) as exc:
        raise write_failed(root, exc) from None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    for p in [*path.rglob("*"), path]:
        _fsync(p)


def commit(root: Path, tmp: Path, final: Path) -> None:
    """Make a fully written (and fsynced) generation the live one. Each step leaves an index
    that opens and is consistent, whatever happens next (tests/index/test_index_crash.py kills a
    writer after each one):

    1. rename ``tmp`` into place as ``final``, then fsync the index folder, so that the name
       is on disk before anything points at it (without this, after a power loss CURRENT
       could name a folder that is not there);
    2. write ``.CURRENT.tmp`` naming ``final`` and fsync it;
    3. rename it over CURRENT (atomic: readers see the old or the new name, never half);
    4. fsync the index folder again, so the switch itself survives a power loss.
    """
    os.replace(tmp, final)
    _fsync(root)
    pointer = root / f".{CURRENT}.tmp"
    pointer.write_text(final.name + "\n", encoding="utf-8")
    _fsync(pointer)
    os.replace(pointer, root / CURRENT)
    _fsync(root)


def pin_generation(generation: Path) -> IO[bytes]:
    """Open a generation's manifest with a shared lock, held while a reader uses it.

    Raises FileNotFoundError when the generation was collected (or is being collected)
    between reading CURRENT and pinning: the caller reads CURRENT again.
    """
    handle = open(generation / "manifest.json", "rb")  # noqa: SIM115 - held by the reader
    try:
        fcntl.flock(handle, fcntl.LOCK_SH)  # waits out a collector's brief exclusive lock
        # The collector renames a generation away while holding the exclusive lock: if the
        # path no longer leads to the file locked, it is gone.
        if os.fstat(handle.fileno()).st_ino != os.stat(generation / "manifest.json").st_ino:
            raise FileNotFoundError(generation)
    except BaseException:
        handle.close()
        raise
    return handle


def collect_garbage(root: Path, live: str) -> list[str]:
    """Remove generations other than ``live`` that no reader holds, the temporary folder a
    killed writer left behind, and trash an interrupted collection left; returns the names of
    the generations removed.

    A generation in use by a reader (``qa serve``, a running ``qa ask``) carries a shared lock
    on its manifest (:func:`pin_generation`) and is skipped; the next ingest collects it. One
    that is free is locked exclusively, renamed to a ``.trash-`` name (atomic: a reader never
    sees a half-removed generation under its own name) and only then deleted.
    """
    removed = []
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p.name == live:
            continue
        if p.name.startswith((".tmp-gen-", ".trash-")):
            shutil.rmtree(p, ignore_errors=True)  # only a dead writer or collector made these
        elif p.name.startswith("gen-") and _trash_unless_pinned(root, p):
            removed.append(p.name)
    _collect_stores(root)
    return removed


def _collect_stores(root: Path) -> None:
    """Delete the chunk-store rows no remaining generation sees, and the store files none
    names. A reader can only pin a generation whose folder remains, so nothing it reads goes."""
    oldest: dict[str, int] = {}
    for generation in root.glob("gen-*"):
        try:
            manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being collected by now
        if not isinstance(manifest, dict):
            continue  # damaged: removed with its folder
        name, number = manifest.get("store"), manifest.get("generation")
        if isinstance(name, str) and isinstance(number, int):
            oldest[name] = min(number, oldest.get(name, number))
    for path in root.glob("store-*.sqlite"):
        if path.name in oldest:
            conn = chunk_store.open_for_write(path)
            try:
                chunk_store.purge(conn, oldest[path.name])
            finally:
                conn.close()
        else:
            for part in root.glob(path.name + "*"):
                part.unlink(missing_ok=True)


def _trash_unless_pinned(root: Path, generation: Path) -> bool:
    trash = root / f".trash-{generation.name}-{os.getpid()}"
    try:
        handle = open(generation / "manifest.json", "rb")  # noqa: SIM115
    except FileNotFoundError:  # no manifest: never complete, nobody can read it
        os.replace(generation, trash)
    else:
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a reader holds it
            os.replace(generation, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return True
