"""Cleaning rules: which lines of an article are boilerplate.

``Document.text`` is the body exactly as stored, never rewritten, because every later offset
(chunks, citations, UI highlights) points into it. Cleaning therefore does not edit text: it
returns the ``[start, end)`` spans worth keeping (:func:`clean`), stored as
``Document.segments``.

Subheadings stay, but they are not sentences: a page's "Indo-Russian Relations in Focus" over
"During the meeting, ..." was read as one sentence and quoted so. :func:`heading_segments` says
which kept lines are headings, and chunking ends a sentence (and a block) after each.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Each pattern is matched against one line with surrounding whitespace removed; a
# match drops the whole line. They are deliberately anchored to the full line so that a
# sentence that merely mentions "read more" or a date is never dropped.

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


# A subheading: a Markdown "#" line, or a short line that does not end like a sentence and is
# followed by a paragraph that starts like one. Hard-wrapped prose does not pass: its lines
# are longer, or the next one goes on in lower case, or the line ends in punctuation.
HEADING_MAX_WORDS = 14
_ENDS_SENTENCE = re.compile(r"[.!?…:;,\"”’'»)\]]$")
_STARTS_SENTENCE = re.compile(r"[\"“‘'«(]?[A-Z0-9\u00c0-\u024f]")


def is_heading(line: str, following: str) -> bool:
    """Whether ``line`` (a kept line) heads the paragraph ``following`` ("" at the end)."""
    line = line.strip()
    if _HEADING_MARK.match(line):
        return True
    if not following or len(line.split()) > HEADING_MAX_WORDS or _ENDS_SENTENCE.search(line):
        return False
    following = following.strip()
    paragraph = len(following.split()) > HEADING_MAX_WORDS or bool(_ENDS_SENTENCE.search(following))
    return paragraph and bool(_STARTS_SENTENCE.match(following))


def heading_segments(
    text: str, segments: tuple[tuple[int, int], ...]
) -> frozenset[tuple[int, int]]:
    """The segments of ``text`` that are headings (see :func:`is_heading`)."""
    found = set()
    for i, (start, end) in enumerate(segments):
        following = text[segments[i + 1][0] : segments[i + 1][1]] if i + 1 < len(segments) else ""
        if is_heading(text[start:end], following):
            found.add((start, end))
    return frozenset(found)
