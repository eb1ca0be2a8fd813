"""Read article files into :class:`~qa.types.Document` objects and mark their boilerplate.

Supported formats (by extension, case-insensitive):

* ``.txt``  - first non-empty line is the title, the rest is the body.
* ``.md``   - optional YAML front matter (``title``, ``date``/``published``/``publish_date``,
  ``source``/``outlet``, ``url``); title falls back to the first ``# heading``, then the first
  line.
* ``.json`` - one object or a list of objects; ``.jsonl`` - one object per line. A record needs
  ``text`` (or ``content``/``body``); ``title``, a date, ``url`` and ``source`` are optional.
* ``.html``/``.htm`` - article text and metadata extracted offline by trafilatura.

Folders are walked recursively in sorted order. Hidden files and folders (name starting with
``.``) and files named ``README.*`` are ignored without comment (they are not articles); files
with any other unsupported extension are reported in :attr:`ReadResult.skipped`.

``Document.text`` is the body exactly as stored, never rewritten, because every later offset
(chunks, citations, UI highlights) points into it. Cleaning therefore does not edit text: it
returns the ``[start, end)`` spans worth keeping (:func:`clean`), stored as
``Document.segments``.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email.utils
import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.types import Document, QAError

SUPPORTED_EXTENSIONS = (".txt", ".md", ".json", ".jsonl", ".html", ".htm")

# --------------------------------------------------------------------------------------------
# Cleaning patterns. Each is matched against one line with surrounding whitespace removed; a
# match drops the whole line. They are deliberately anchored to the full line so that a
# sentence that merely mentions "read more" or a date is never dropped.
# --------------------------------------------------------------------------------------------

# Comment widgets and navigation links. "Post a Comment" and "Previous Post Next Post" end the
# Blogger page of corpus 000; the rest are the usual share/related/ad widgets of news sites.
NAVIGATION_LINES = re.compile(
    r"(?:post a comment|leave a comment|add a comment|\d*\s*comments?|"
    r"previous post(?:\s*next post)?|next post|older posts?|newer posts?|"
    r"share(?: this(?: article| story| post)?| on \w+)?|share via\b.*|"
    r"read more|read also|also read|related(?: articles| posts| stories| news)?|"
    r"advertisement|sponsored|subscribe(?: now| to our newsletter)?|"
    r"click here(?: to .*)?|follow us(?: on .*)?|tags?|loading\.*|"
    r"skip to (?:main )?content|back to top)\s*[:.…|»>-]*",
    re.IGNORECASE,
)

# Cross-link teasers: "Also read: <another headline>" (common on Indian news sites).
CROSS_LINK_LINES = re.compile(r"(?:also read|read also|read more|see also)\s*[:|-].*", re.I)

# Image markup. "![]() |" and "Image Source: Raksha Mantri |" are corpus 003; a line that is
# only Markdown images or an <img> tag carries no article text either.
IMAGE_LINES = re.compile(
    r"(?:!\[[^\]]*\]\([^)]*\)\s*[|]?\s*)+"
    r"|<img\b[^>]*>"
    r"|(?:image|photo|picture|pic)(?:\s+(?:source|credit|courtesy))?\s*:.*",
    re.IGNORECASE,
)

# "Source: SCO summit: Rajnath meets Belarus Defence Minister in Qingdao" closes corpus 000:
# the headline of the article it was rewritten from, not content. Only short lines, so that a
# real paragraph that happens to start with "Source:" survives.
SOURCE_LINES = re.compile(r"(?:source|via|courtesy)\s*:.{0,200}", re.IGNORECASE)

# Stray date lines: " date 2025-06-28 " opens corpus 001; a line that is only a date (with an
# optional label such as "Published:") is page furniture, the date is kept as metadata instead.
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"  # names and abbrevs
DATE_LINES = re.compile(
    r"(?:(?:date|dated|published|posted|updated|last updated)(?:\s+on)?\s*:?\s*)?"
    r"(?:\w+day,?\s+)?"  # optional weekday
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?\S*)?"  # 2025-06-28
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 28/06/2025
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"  # June 26, 2025
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}})"  # 26 June 2025
    r"(?:\s*(?:at\s+)?\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?(?:\s*[A-Z]{2,4})?)?",  # optional time
    re.IGNORECASE,
)

# Lines of punctuation only: the "-" bullets that precede each list item of corpus 004, a lone
# "|" left over from a table, "***" rules. Letters or digits anywhere keep the line.
PUNCTUATION_LINES = re.compile(r"[\W_]+")

# "- Country:" followed by "- India" in corpus 004 is a tag box of the page, not the article:
# a bullet holding only a one- or two-word label and a colon, or a known label with its value.
METADATA_LABEL_LINES = re.compile(r"[-•*]\s*[A-Za-z]+(?: [A-Za-z]+)?\s*:")
METADATA_VALUE_LINES = re.compile(
    r"[-•*]\s*(?:country|countries|region|category|categories|tags?|topics?|section|"
    r"language|location)\s*:.*",
    re.IGNORECASE,
)
# The value line under a bare label: one short bullet item without sentence punctuation.
_METADATA_VALUE = re.compile(r"[-•*]\s*[^.!?:;]{1,40}")

# All whole-line patterns, in the order they are tried (the order does not change the result).
DROP_PATTERNS: tuple[re.Pattern[str], ...] = (
    NAVIGATION_LINES,
    CROSS_LINK_LINES,
    IMAGE_LINES,
    SOURCE_LINES,
    DATE_LINES,
    PUNCTUATION_LINES,
    METADATA_LABEL_LINES,
    METADATA_VALUE_LINES,
)

_HEADING_MARK = re.compile(r"^#{1,6}\s+|\s+#+$")


@dataclass(frozen=True)
class Skipped:
    """A file (or record) reported by name and skipped."""

    path: str
    reason: str


@dataclass(frozen=True)
class ReadResult:
    """What :func:`read_paths` found: the articles, what it skipped and why, and the files read."""

    documents: list[Document]
    skipped: list[Skipped]
    files: list[Path]  # every supported file looked at under the roots, in reading order


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------


def _norm(line: str) -> str:
    """Comparison key for titles and repeats: case and runs of whitespace do not count."""
    return " ".join(line.split()).casefold()


def _is_boilerplate(line: str) -> bool:
    return any(p.fullmatch(line) for p in DROP_PATTERNS)


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """``[start, end)`` of every non-blank line of ``text``, whitespace trimmed from the span."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        stripped = raw.strip()
        if stripped:
            start = pos + (len(raw) - len(raw.lstrip()))
            yield start, start + len(stripped)
        pos += len(raw)


def clean(text: str, *, title: str = "") -> tuple[tuple[int, int], ...]:
    """The spans of ``text`` worth indexing, one per non-blank line, in order.

    A line is dropped when it matches one of :data:`DROP_PATTERNS`, when it equals ``title``
    (ignoring case, whitespace and Markdown ``#`` marks), or when it repeats an earlier kept
    line (same comparison). Each kept span is trimmed of surrounding whitespace, so
    ``text[start:end]`` is the line's content exactly as stored.
    """
    title_key = _norm(_HEADING_MARK.sub("", title.strip())) if title.strip() else ""
    seen: set[str] = set()
    kept: list[tuple[int, int]] = []
    after_label = False  # the previous line was a bare "- Country:" style label
    for start, end in _lines(text):
        line = text[start:end]
        if after_label and _METADATA_VALUE.fullmatch(line):
            after_label = False
            continue
        after_label = bool(METADATA_LABEL_LINES.fullmatch(line))
        if after_label or _is_boilerplate(line):
            continue
        key = _norm(_HEADING_MARK.sub("", line))
        if key == title_key or key in seen:
            continue
        seen.add(key)
        kept.append((start, end))
    return tuple(kept)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


class _Skip(Exception):
    """Raised inside the readers; becomes a :class:`Skipped` entry for the file or record."""


def _decode(data: bytes) -> str:
    """Text of a file: UTF-8 (BOM allowed), UTF-16 with a BOM, or a confident guess."""
    if not data.strip():
        raise _Skip("empty file")
    text = _decode_bytes(data)
    if not text.strip():
        raise _Skip("empty file")
    return text


def _decode_bytes(data: bytes) -> str:
    """Decode non-empty bytes; raise :class:`_Skip` for binary or undecodable data."""
    # UTF-16 is full of NUL bytes, so its BOM must be honoured before the binary test.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return _check_text(data.decode("utf-16"))
        except UnicodeDecodeError:
            raise _Skip("not valid UTF-16 despite its byte order mark") from None
    if b"\x00" in data:
        raise _Skip("binary file")
    try:
        return _check_text(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # imported late: only legacy files need it

    best = from_bytes(data).best()
    # Accept the guess only when the decoded text looks like language (coherence) and has
    # little mojibake (chaos); otherwise a wrong guess would index garbage.
    if (
        best is None
        or best.encoding.startswith(("utf_16", "utf_32"))  # no BOM: a guess, never trusted
        or best.percent_chaos > 10.0
        or best.percent_coherence < 10.0
    ):
        raise _Skip("undecodable: not UTF-8 and the encoding could not be determined")
    return _check_text(str(best))


def _check_text(text: str) -> str:
    """Refuse decoded text that is mostly control characters (a binary file that happened to
    decode)."""
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f\v")
    if controls > max(2, len(text) // 20):
        raise _Skip("binary file")
    return text


# --------------------------------------------------------------------------------------------
# Metadata helpers
# --------------------------------------------------------------------------------------------

_DATE_FORMATS = (
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%d %b %Y",
    "%d %B, %Y",
    "%d %b, %Y",
)


def normalize_date(value: Any) -> str:
    """``YYYY-MM-DD`` for a date given as a date object, ISO string, "June 26, 2025",
    "26 Jun 2025" or an RFC 2822 string; ``""`` when it cannot be read unambiguously."""
    if isinstance(value, dt.datetime | dt.date):
        return value.strftime("%Y-%m-%d")
    if not isinstance(value, str) or not value.strip():
        return ""
    s = " ".join(value.split()).replace("Sept ", "Sep ")
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).strftime("%Y-%m-%d")
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(s, fmt).strftime("%Y-%m-%d")
        except ValueError:
            continue
    try:  # RSS and e-mail style: "Thu, 26 Jun 2025 10:00:00 +0000"
        return email.utils.parsedate_to_datetime(s).strftime("%Y-%m-%d")
    except (TypeError, ValueError, IndexError):
        return ""  # e.g. "06/07/2025" is ambiguous (day/month) and is not guessed


def _first(meta: dict[str, Any], *keys: str) -> Any:
    """The first present, non-empty value among ``keys``."""
    for key in keys:
        value = meta.get(key)
        if value not in (None, ""):
            return value
    return None


def _str(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


@dataclass(frozen=True)
class _Article:
    """What a reader extracts before ids and cleaning are applied."""

    title: str
    text: str
    published: str = ""
    source: str = ""
    url: str = ""
    title_in_text: bool = True  # whether a line equal to the title is a repeat to drop


# --------------------------------------------------------------------------------------------
# Format readers
# --------------------------------------------------------------------------------------------


def _split_title(text: str) -> tuple[str, str]:
    """First non-empty line and the verbatim remainder after its line break."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        pos += len(raw)
        if raw.strip():
            return raw.strip(), text[pos:]
    return "", ""


def _read_txt(text: str) -> _Article:
    title, body = _split_title(text)
    return _Article(title=title, text=body)


_FRONT_MATTER_END = re.compile(r"^-{3,}[ \t]*\r?$", re.MULTILINE)
_MD_H1 = re.compile(r"^#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)


def _read_md(text: str) -> _Article:
    meta: dict[str, Any] = {}
    body = text
    first_line = text.split("\n", 1)[0]
    if first_line.rstrip() == "---":
        # python-frontmatter's own split strips the body; find the closing fence here so the
        # body stays byte for byte, and let its YAML handler parse the metadata.
        end = _FRONT_MATTER_END.search(text, len(first_line) + 1)
        if end is None:
            raise _Skip("front matter is not closed by a '---' line")
        import yaml
        from frontmatter.default_handlers import YAMLHandler

        try:
            loaded = YAMLHandler().load(text[len(first_line) + 1 : end.start()])
        except yaml.YAMLError as exc:
            raise _Skip(f"invalid YAML front matter: {exc}".splitlines()[0]) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise _Skip("front matter is not a mapping of keys to values")
        meta = loaded or {}
        newline = text.find("\n", end.end())
        body = "" if newline < 0 else text[newline + 1 :]
    title = _str(meta.get("title"))
    if not title:
        heading = _MD_H1.search(body)
        title = heading.group(1).strip() if heading else _split_title(body)[0]
    return _Article(
        title=title,
        text=body,
        published=normalize_date(_first(meta, "date", "published", "publish_date")),
        source=_str(_first(meta, "source", "outlet")),
        url=_str(meta.get("url")),
    )


def _from_record(record: Any) -> _Article:
    """A JSON record: needs ``text``/``content``/``body``; other fields are optional."""
    if not isinstance(record, dict):
        raise _Skip(f"record is a JSON {type(record).__name__}, not an object")
    text = _first(record, "text", "content", "body")
    if text is None:
        raise _Skip("record has no 'text' (or 'content'/'body') field")
    if not isinstance(text, str):
        raise _Skip("record's text field is not a string")
    title = _str(record.get("title"))
    return _Article(
        # No title: show the opening of the text, but do not drop that line as a repeat.
        title=title or _shorten(_split_title(text)[0]),
        text=text,
        published=normalize_date(_first(record, "date", "published", "publish_date")),
        source=_str(_first(record, "source", "outlet")),
        url=_str(record.get("url")),
        title_in_text=bool(title),
    )


def _shorten(line: str, limit: int = 80) -> str:
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _record_key(record: Any, fallback: int) -> str:
    """The part after ``#`` in a record's id: its own id, else its url, else its position."""
    if isinstance(record, dict):
        for field in ("id", "url"):
            value = record.get(field)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value).strip()
    return str(fallback)


def _read_json(text: str) -> Iterator[tuple[str | None, Any]]:
    """``(key, record)`` pairs; key ``None`` for a file holding a single object."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Skip(f"invalid JSON: {exc}") from None
    if isinstance(data, list):
        for i, record in enumerate(data, 1):
            yield _record_key(record, i), record
    else:
        yield None, data


def _read_jsonl(text: str) -> Iterator[tuple[str, Any]]:
    """``(key, record)`` pairs; a line that is not JSON yields a :class:`_Skip` as record."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield str(lineno), _Skip(f"line {lineno}: invalid JSON: {exc.msg}")
            continue
        yield _record_key(record, lineno), record


def _read_html(text: str) -> _Article:
    # Imported late: trafilatura pulls in lxml and friends, and only HTML files need it.
    import trafilatura

    # bare_extraction works on the string we already read; nothing is fetched. Comment
    # sections are not article text.
    doc = trafilatura.bare_extraction(text, with_metadata=True, include_comments=False)
    if doc is None or isinstance(doc, dict) or not (doc.text or "").strip():
        raise _Skip("no article text found in the HTML")
    return _Article(
        title=_str(doc.title),
        text=doc.text or "",
        published=normalize_date(doc.date),
        source=_str(doc.sitename),
        url=_str(doc.url),
    )


# --------------------------------------------------------------------------------------------
# Walking and assembling
# --------------------------------------------------------------------------------------------


def _is_readme(path: Path) -> bool:
    return path.name.split(".", 1)[0].upper() == "README"


def _walk(root: Path, exclude: frozenset[Path] = frozenset()) -> Iterator[Path]:
    """Files under ``root`` in sorted order, skipping hidden entries, README files and the
    ``exclude``d folders."""
    for child in sorted(root.iterdir(), key=lambda p: p.name):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            if child.resolve() not in exclude:
                yield from _walk(child, exclude)
        elif child.is_file() and not _is_readme(child):
            yield child


class _Collector:
    """Accumulates documents, enforcing unique ids (first one wins)."""

    def __init__(self) -> None:
        self.documents: list[Document] = []
        self.skipped: list[Skipped] = []
        self.where: dict[str, str] = {}

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append(Skipped(path=path, reason=reason))

    def add(self, doc_id: str, path: str, article: _Article) -> None:
        if doc_id in self.where:
            self.skip(path, f"duplicate id {doc_id!r} (already read from {self.where[doc_id]})")
            return
        segments = clean(article.text, title=article.title if article.title_in_text else "")
        if not segments:
            self.skip(path, "empty: no text left after removing boilerplate")
            return
        self.where[doc_id] = path
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


def _read_file(path: Path, doc_id: str, out: _Collector) -> None:
    resolved = str(path.resolve())
    ext = path.suffix.lower()
    try:
        text = _decode(path.read_bytes())
        if ext in (".json", ".jsonl"):
            records = _read_json(text) if ext == ".json" else _read_jsonl(text)
            for key, record in records:
                rec_id = doc_id if key is None else f"{doc_id}#{key}"
                rec_path = resolved if key is None else f"{resolved}#{key}"
                if isinstance(record, _Skip):
                    out.skip(rec_path, str(record))
                    continue
                try:
                    out.add(rec_id, rec_path, _from_record(record))
                except _Skip as exc:
                    out.skip(rec_path, str(exc))
            return
        reader = {".txt": _read_txt, ".md": _read_md}.get(ext, _read_html)
        out.add(doc_id, resolved, reader(text))
    except _Skip as exc:
        out.skip(resolved, str(exc))
    except OSError as exc:
        out.skip(resolved, f"cannot read: {exc.strerror or exc}")


def read_paths(paths: Sequence[Path], exclude: Sequence[Path] = ()) -> ReadResult:
    """Read every article under ``paths`` (files or folders), never descending into the
    ``exclude``d folders (the index itself may live inside the corpus folder).

    Ids are the path relative to the folder given, without extension and with ``/``
    separators (a file given directly uses its stem); records of ``.json``/``.jsonl`` files get
    ``#<id|url|position>`` appended. Raises :class:`QAError` when a path does not exist.
    Problems with single files or records never raise: they are listed in ``skipped``.
    """
    out = _Collector()
    files: list[Path] = []
    skip = frozenset(Path(p).resolve() for p in exclude)
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise QAError(f"no such file or folder: {root}")
        if root.is_dir():
            found = [(p, p.relative_to(root).with_suffix("").as_posix()) for p in _walk(root, skip)]
        else:
            found = [(root, root.stem)]
        for path, doc_id in found:
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                out.skip(str(path.resolve()), f"unsupported file type {path.suffix or '(none)'}")
                continue
            files.append(path.resolve())
            _read_file(path, doc_id, out)
    return ReadResult(documents=out.documents, skipped=out.skipped, files=files)
