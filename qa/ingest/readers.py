"""Format readers: decoded text of one file -> the article(s) it holds, before ids and cleaning.

* ``.txt``  - first non-empty line is the title, the rest is the body.
* ``.md``   - optional YAML front matter (``title``, ``date``/``published``/``publish_date``,
  ``source``/``outlet``, ``url``); title falls back to the first ``# heading``, then the first
  line.
* ``.json`` - one object or a list of objects; ``.jsonl`` - one object per line. A record needs
  ``text`` (or ``content``/``body``); ``title``, a date, ``url`` and ``source`` are optional.
* ``.html``/``.htm`` - article text and metadata extracted offline by trafilatura.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from qa.ingest.decode import Skip
from qa.ingest.front_matter import load_front_matter

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
class Article:
    """What a reader extracts before ids and cleaning are applied."""

    title: str
    text: str
    published: str = ""
    source: str = ""
    url: str = ""
    title_in_text: bool = True  # whether a line equal to the title is a repeat to drop


def _split_title(text: str) -> tuple[str, str]:
    """First non-empty line and the verbatim remainder after its line break."""
    pos = 0
    for raw in text.splitlines(keepends=True):
        pos += len(raw)
        if raw.strip():
            return raw.strip(), text[pos:]
    return "", ""


def read_txt(text: str) -> Article:
    title, body = _split_title(text)
    return Article(title=title, text=body)


_FRONT_MATTER_END = re.compile(r"^-{3,}[ \t]*\r?$", re.MULTILINE)
_MD_H1 = re.compile(r"^#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)


def read_md(text: str) -> Article:
    meta: dict[str, Any] = {}
    body = text
    first_line = text.split("\n", 1)[0]
    if first_line.rstrip() == "---":
        # python-frontmatter's own split strips the body; find the closing fence here so the
        # body stays byte for byte, and let its YAML handler parse the metadata (safely).
        end = _FRONT_MATTER_END.search(text, len(first_line) + 1)
        if end is None:
            raise Skip("front matter is not closed by a '---' line")
        meta = load_front_matter(text[len(first_line) + 1 : end.start()])
        newline = text.find("\n", end.end())
        body = "" if newline < 0 else text[newline + 1 :]
    title = _str(meta.get("title"))
    if not title:
        heading = _MD_H1.search(body)
        title = heading.group(1).strip() if heading else _split_title(body)[0]
    return Article(
        title=title,
        text=body,
        published=normalize_date(_first(meta, "date", "published", "publish_date")),
        source=_str(_first(meta, "source", "outlet")),
        url=_str(meta.get("url")),
    )


def from_record(record: Any) -> Article:
    """A JSON record: needs ``text``/``content``/``body``; other fields are optional."""
    if not isinstance(record, dict):
        raise Skip(f"record is a JSON {type(record).__name__}, not an object")
    text = _first(record, "text", "content", "body")
    if text is None:
        raise Skip("record has no 'text' (or 'content'/'body') field")
    if not isinstance(text, str):
        raise Skip("record's text field is not a string")
    title = _str(record.get("title"))
    return Article(
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


def read_json(text: str) -> Iterator[tuple[str | None, Any]]:
    """``(key, record)`` pairs; key ``None`` for a file holding a single object."""
    data = _parse_json(text, "")
    if isinstance(data, list):
        for i, record in enumerate(data, 1):
            yield _record_key(record, i), record
    else:
        yield None, data


def read_jsonl(text: str) -> Iterator[tuple[str, Any]]:
    """``(key, record)`` pairs; a line that is not JSON yields a :class:`Skip` as record."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = _parse_json(line, f"line {lineno}: ")
        except Skip as exc:
            yield str(lineno), exc
            continue
        yield _record_key(record, lineno), record


def _parse_json(text: str, where: str) -> Any:
    """``json.loads``, with every way it fails on hostile input as a :class:`Skip`: nesting
    deeper than the parser recurses ("[" * 100_000) raises RecursionError, an integer of more
    than 4,300 digits ValueError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # One JSONL line is always line 1 of itself: its message alone, not the position.
        raise Skip(f"{where}invalid JSON: {exc.msg if where else exc}") from None
    except RecursionError:
        raise Skip(f"{where}invalid JSON: nested too deeply") from None
    except ValueError as exc:
        raise Skip(f"{where}invalid JSON: {exc}".splitlines()[0]) from None


def read_html(text: str) -> Article:
    # Imported late: trafilatura pulls in lxml and friends, and only HTML files need it.
    import trafilatura

    # bare_extraction works on the string we already read; nothing is fetched. Comment
    # sections are not article text.
    doc = trafilatura.bare_extraction(text, with_metadata=True, include_comments=False)
    if doc is None or isinstance(doc, dict) or not (doc.text or "").strip():
        raise Skip("no article text found in the HTML")
    return Article(
        title=_str(doc.title),
        text=doc.text or "",
        published=normalize_date(doc.date),
        source=_str(doc.sitename),
        url=_str(doc.url),
    )
