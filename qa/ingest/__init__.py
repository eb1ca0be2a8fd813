"""Read article files into :class:`~qa.core.types.Document` objects and mark their boilerplate.

One module per concern: :mod:`qa.ingest.decode` (bytes -> text), :mod:`qa.ingest.readers`
(formats), :mod:`qa.ingest.clean` (boilerplate spans); this module walks the folders.

The walk, in sorted order:

* Hidden files and folders (name starting with ``.``) and files named ``README.*`` are ignored
  without comment (they are not articles); files with any other unsupported extension are
  reported in :attr:`ReadResult.skipped`.
* Symbolic links are followed (a corpus may link in a folder kept elsewhere), but every real
  folder is walked once, recognised by (device, inode): a link back to an ancestor (a cycle)
  or a second link to a folder already walked is reported and skipped, and a file reached
  twice is read once.
* A file larger than ``max_file_bytes`` is skipped with a message naming the file and the cap.

Ids are the path relative to the folder given, without extension and with ``/`` separators (a
file given directly uses its stem); records of ``.json``/``.jsonl`` files get
``#<id|url|position>`` appended. Two different files may share an id (``a/x.md`` and
``b/x.md``): the index decides, with one rule for one run or several (see
:func:`qa.index.sync`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.core.types import Document, QAError
from qa.ingest.clean import DROP_PATTERNS, clean
from qa.ingest.decode import Skip, decode
from qa.ingest.readers import (
    Article,
    from_record,
    normalize_date,
    read_html,
    read_json,
    read_jsonl,
    read_md,
    read_txt,
)

__all__ = [
    "DROP_PATTERNS",
    "SUPPORTED_EXTENSIONS",
    "Decoded",
    "ReadResult",
    "Skipped",
    "clean",
    "normalize_date",
    "read_paths",
]

SUPPORTED_EXTENSIONS = (".txt", ".md", ".json", ".jsonl", ".html", ".htm")
DEFAULT_MAX_FILE_BYTES = 20_000_000

ReadProgress = Callable[[int, int, Path], None]  # (files read so far, files found, next file)


@dataclass(frozen=True)
class Skipped:
    """A file (or record) reported by name and skipped."""

    path: str
    reason: str


@dataclass(frozen=True)
class Decoded:
    """A file that was not UTF-8, and the encoding it was read with; or a UTF-8 file with a
    few invalid bytes, replaced by U+FFFD (how many, and on which lines)."""

    path: str
    encoding: str
    replaced: int = 0
    lines: tuple[int, ...] = ()

    def describe(self) -> str:
        """One line for the ingest report, without the path."""
        if not self.replaced:
            return f"read as {self.encoding} (not UTF-8)"
        s = "s" if self.replaced > 1 else ""
        where = ", ".join(map(str, self.lines))
        where = f" (line{'s' if len(self.lines) > 1 else ''} {where})" if where else ""
        return (
            f"read as UTF-8 with {self.replaced} invalid byte sequence{s} replaced by U+FFFD{where}"
        )


@dataclass(frozen=True)
class ReadResult:
    """What :func:`read_paths` found: the articles, what it skipped and why, and the files read."""

    documents: list[Document]
    skipped: list[Skipped]
    files: list[Path]  # every supported file looked at under the roots, in reading order
    decoded: list[Decoded] = field(default_factory=list)  # files read with another encoding


def _is_readme(path: Path) -> bool:
    return path.name.split(".", 1)[0].upper() == "README"


def _walk(
    folder: Path, exclude: frozenset[Path], seen: dict[tuple[int, int], Path], out: _Collector
) -> Iterator[Path]:
    """Files under ``folder`` in sorted order, skipping hidden entries, README files, the
    ``exclude``d folders and any real folder already walked (``seen``, by device and inode)."""
    try:
        children = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        out.skip(str(folder), f"cannot list folder: {exc.strerror or exc}")
        return
    for child in children:
        if child.name.startswith("."):
            continue
        if child.is_dir():
            if child.resolve() in exclude:
                continue
            key = _identity(child)
            if key in seen:
                first = seen[key]
                loop = first in child.parents or first == folder
                what = "folder cycle: links back to" if loop else "folder already read as"
                out.skip(str(child), f"{what} {first}")
                continue
            seen[key] = child
            yield from _walk(child, exclude, seen, out)
        elif child.is_file() and not _is_readme(child):
            yield child


def _identity(folder: Path) -> tuple[int, int]:
    info = folder.stat()  # follows links: the real folder
    return info.st_dev, info.st_ino


class _Collector:
    """Accumulates documents, reading each file and each record once (first one wins)."""

    def __init__(self) -> None:
        self.documents: list[Document] = []
        self.skipped: list[Skipped] = []
        self.decoded: list[Decoded] = []
        self.read: set[str] = set()  # paths (file or file#record) already read

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append(Skipped(path=path, reason=reason))

    def add(self, doc_id: str, path: str, article: Article) -> None:
        if path in self.read:
            self.skip(path, "duplicate: already read (a record with the same id or url)")
            return
        segments = clean(article.text, title=article.title if article.title_in_text else "")
        if not segments:
            self.skip(path, "empty: no text left after removing boilerplate")
            return
        self.read.add(path)
        self.documents.append(
            Document(
                id=doc_id,
                title=article.title or doc_id,
                text=article.text,
                segments=segments,
                published=article.published,
                source=article.source,
                url=article.url,
                path=path,
            )
        )


def _read_file(path: Path, doc_id: str, out: _Collector, max_bytes: int) -> None:
    resolved = str(path.resolve())
    ext = path.suffix.lower()
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise Skip(
                f"too large: {size:,} bytes, over the cap of {max_bytes:,} "
                "(setting ingest.max_file_bytes)"
            )
        decoded = decode(path.read_bytes())
        if decoded.encoding not in ("utf-8", "utf-16") or decoded.replaced:
            out.decoded.append(Decoded(resolved, decoded.encoding, decoded.replaced, decoded.lines))
        text = decoded.text
        if ext in (".json", ".jsonl"):
            records = read_json(text) if ext == ".json" else read_jsonl(text)
            for key, record in records:
                rec_id = doc_id if key is None else f"{doc_id}#{key}"
                rec_path = resolved if key is None else f"{resolved}#{key}"
                if isinstance(record, Skip):
                    out.skip(rec_path, str(record))
                    continue
                try:
                    out.add(rec_id, rec_path, from_record(record))
                except Skip as exc:
                    out.skip(rec_path, str(exc))
            return
        reader = {".txt": read_txt, ".md": read_md}.get(ext, read_html)
        out.add(doc_id, resolved, reader(text))
    except Skip as exc:
        out.skip(resolved, str(exc))
    except OSError as exc:
        out.skip(resolved, f"cannot read: {exc.strerror or exc}")
    except RecursionError:  # a reader met nesting the format checks did not catch
        out.skip(resolved, "nested too deeply to read")
    except MemoryError:  # what it built is dropped with the frame: the next file has the memory
        out.skip(resolved, "too large to read in memory")


def read_paths(
    paths: Sequence[Path],
    exclude: Sequence[Path] = (),
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    progress: ReadProgress | None = None,
) -> ReadResult:
    """Read every article under ``paths`` (files or folders), never descending into the
    ``exclude``d folders (the index itself may live inside the corpus folder).

    Raises :class:`QAError` when a path does not exist. Problems with single files or records
    never raise: they are listed in ``skipped``. ``progress`` is told about each file before
    it is read.
    """
    out = _Collector()
    skip = frozenset(Path(p).resolve() for p in exclude)
    seen: dict[tuple[int, int], Path] = {}
    found: list[tuple[Path, str]] = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise QAError(f"no such file or folder: {root}")
        if root.is_dir():
            key = _identity(root)
            if key in seen:
                out.skip(str(root), f"folder already read as {seen[key]}")
                continue
            seen[key] = root
            walked = _walk(root, skip, seen, out)
            found += [(p, p.relative_to(root).with_suffix("").as_posix()) for p in walked]
        else:
            found.append((root, root.stem))
    files: list[Path] = []
    read: set[Path] = set()
    for done, (path, doc_id) in enumerate(found):
        real = path.resolve()
        if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
            out.skip(str(real), f"unsupported file type {path.suffix or '(none)'}")
            continue
        if real in read:  # one file reached twice (a link, or a file inside a folder given)
            continue
        read.add(real)
        files.append(real)
        if progress:
            progress(done, len(found), path)
        _read_file(path, doc_id, out, max_file_bytes)
    return ReadResult(
        documents=out.documents, skipped=out.skipped, files=files, decoded=out.decoded
    )
