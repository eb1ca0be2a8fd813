"""Is the local index whole? What is damaged, said in one line, at three costs:

* :func:`read_manifest` (every command): the manifest is an object with the keys and types
  this ``qa`` writes, or it says which is wrong; a newer schema is named as a newer ``qa``'s
  (a rebuild would discard it);
* :func:`check_sizes` (every open): every file the manifest records is there with its
  recorded size, so a deleted or truncated file is named before a search trips on it;
* :func:`qa.index.verify.check_all` (`qa status --check`, and `qa ingest` before it decides there
is nothing
  to do): every recorded checksum, every part loaded and counted against the others, and
  SQLite's own ``quick_check`` of the chunk store.

A generation records the size and sha256 of each of its files (``files`` in the manifest,
:func:`record_files`); a segment kept by the next generation keeps its record, so only new
files are hashed. Generations written before ``files`` existed are checked by loading.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from qa.core.types import QAError
from qa.index.build import BuildSettings

_T = TypeVar("_T")

# The manifest keys a reader needs, with their types (schema 2).
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": int,
    "generation": int,
    "build": dict,
    "vector_index": dict,
    "counts": dict,
    "next_row": int,
    "store": str,
    "segments": list,
    "docs": dict,
}
# Names the manifest may point at: never a path out of the index folder.
_SEGMENT = re.compile(r"seg-\d{6}")
_STORE = re.compile(r"store-\d{6}\.sqlite")
GENERATION = re.compile(r"gen-\d{6}")
# What a part that does not load raises: numpy (ValueError: truncated, not an .npy), FAISS
# (RuntimeError), json (ValueError), SQLite (DatabaseError), a missing or unreadable file.
LOAD_ERRORS = (OSError, ValueError, RuntimeError, EOFError, KeyError, sqlite3.DatabaseError)


class IndexDamaged(QAError):
    """A file of the index is missing, truncated or corrupt (``what``); `qa ingest` rebuilds
    it."""

    def __init__(self, root: Path, what: str) -> None:
        super().__init__(
            f"the index at {root} is damaged: {what}; run `qa ingest` to rebuild it "
            "(`qa status --check` checks every file)"
        )
        self.what = what


def damaged(root: Path, what: str) -> IndexDamaged:
    return IndexDamaged(root, what)


def newer_schema(root: Path, schema: object, supported: int) -> QAError:
    # Not "run --rebuild": that would throw away an index a newer qa can still read.
    return QAError(
        f"the index at {root} was written by a newer qa (schema {schema}; this qa reads "
        f"schema {supported} and older): upgrade qa to use it, or give another --index"
    )


def current_name(root: Path, raw: bytes) -> str:
    """The generation named by CURRENT's bytes, or :class:`IndexDamaged`."""
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise damaged(root, "CURRENT is not text") from None
    if not GENERATION.fullmatch(name):
        raise damaged(root, f"CURRENT names {name[:40]!r}, not a generation")
    return name


def read_manifest(root: Path, generation: Path, raw: bytes, supported: int) -> dict[str, Any]:
    """The manifest of ``generation`` from its bytes, checked; schema 1 is returned as it is
    (the writer converts it), a newer schema or a damaged manifest raises."""
    where = f"{generation.name}/manifest.json"
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise damaged(root, f"{where} is not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise damaged(root, f"{where} holds {type(manifest).__name__}, not an object")
    schema = manifest.get("schema")
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > supported:
        raise newer_schema(root, schema, supported)
    if schema == 1:
        return manifest
    problem = manifest_problem(manifest)
    if problem:
        raise damaged(root, f"{where} {problem}")
    if schema != supported:
        raise damaged(root, f"{where} has schema {schema!r}")
    return manifest


def pinned_manifest(
    root: Path, generation: Path, pin: IO[bytes], supported: int, verify: bool
) -> dict[str, Any]:
    """The manifest of a generation a reader pinned (:func:`read_manifest`), its files' sizes
    checked when ``verify``; the pin is released when it raises."""
    try:
        manifest = read_manifest(root, generation, pin.read(), supported)
        if manifest["schema"] == 1:
            raise QAError(
                f"index at {root} has the schema-1 layout: run `qa ingest` once to convert it "
                "(nothing is embedded again)"
            )
        if verify:
            check_sizes(root, generation, manifest)
    except BaseException as exc:
        pin.close()
        if isinstance(exc, OSError):
            what = f"{generation.name}/manifest.json is unreadable ({exc.strerror or exc})"
            raise damaged(root, what) from None
        raise
    return manifest


def manifest_problem(manifest: dict[str, Any]) -> str:
    for key, kind in REQUIRED.items():
        value = manifest.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"lacks {key!r}" if key not in manifest else f"has a bad {key!r}"
    try:
        BuildSettings(**manifest["build"])
    except TypeError:
        return "has a bad 'build'"
    counts = manifest["counts"]
    if not all(isinstance(counts.get(k), int) for k in ("articles", "chunks")):
        return "has a bad 'counts'"
    if not all(isinstance(s, str) and _SEGMENT.fullmatch(s) for s in manifest["segments"]):
        return "has a bad 'segments'"
    if not _STORE.fullmatch(manifest["store"]):
        return "has a bad 'store'"
    for doc in manifest["docs"].values():
        if not (
            isinstance(doc, dict)
            and isinstance(doc.get("hash"), str)
            and isinstance(doc.get("path"), str)
            and isinstance(doc.get("chunks"), int)
        ):
            return "has a bad entry in 'docs'"
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(
        isinstance(v, list) and len(v) == 2 for v in files.values()
    ):
        return "has a bad 'files'"
    return ""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def record_files(folder: Path, known: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Size and sha256 of every file of a generation folder being written (its manifest
    aside); a file ``known`` records with the same size (a segment linked from the previous
    generation) keeps its record rather than being read again."""
    files: dict[str, list[Any]] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name == "manifest.json":
            continue
        name = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        old = known.get(name)
        files[name] = old if old is not None and old[0] == size else [size, sha256(path)]
    return files


def check_sizes(root: Path, generation: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest records is there with its size; the store and the deleted
    rows are there. Raises :class:`IndexDamaged` naming the first that is not."""
    store = root / manifest["store"]
    if not store.is_file():
        raise damaged(root, f"the chunk store {store.name} is missing")
    files: dict[str, list[Any]] = manifest.get("files", {})
    expected = files or {"deleted.npy": [None, ""]}
    for name in manifest["segments"]:
        if not (generation / name).is_dir():
            raise damaged(root, f"segment {generation.name}/{name} is missing")
    for name, (size, _) in expected.items():
        try:
            actual = (generation / name).stat().st_size
        except FileNotFoundError:
            raise damaged(root, f"{generation.name}/{name} is missing") from None
        if size is not None and actual != size:
            raise damaged(root, f"{generation.name}/{name} has {actual} bytes, {size} were written")


def reason(exc: BaseException) -> str:
    """Why a part did not load, short: a file's name rather than its whole path."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{Path(str(exc.filename)).name}: {exc.strerror or exc}"
    # FAISS prefixes the C++ function and source line: keep what it says.
    text = re.sub(r"^Error in .*? at \S+:\d+: ", "", str(exc).strip().splitlines()[0])
    return f"{type(exc).__name__}: {text[:160]}"


def part(root: Path, what: str, load: Callable[[], _T]) -> _T:
    """``load()``, its failure told as damage to ``what``."""
    try:
        return load()
    except LOAD_ERRORS as exc:
        raise damaged(root, f"{what} does not load ({reason(exc)})") from None
