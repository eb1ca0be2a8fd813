"""Filters from user input: the as-of date (today by default), date bounds and sources.

One place turns the strings the CLI, the HTTP API and the page receive into a typed
:class:`qa.core.types.Filters`, with one set of error messages; every layer below takes the typed
value and never re-parses dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from qa.core.types import Filters, QAError


def parse_day(value: str | date | None, name: str) -> date | None:
    """``YYYY-MM-DD`` (or a date) -> date; None or "" -> None; anything else a clear error."""
    if value is None or isinstance(value, date):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise QAError(f"{name} must be a date as YYYY-MM-DD, got {value!r}") from None


def build_filters(
    as_of: str | date | None = None,
    since: str | date | None = None,
    until: str | date | None = None,
    sources: Iterable[str] = (),
    *,
    today: date | None = None,
) -> Filters:
    """Validated filters; ``as_of`` defaults to ``today`` (the real today when not given):
    a question is asked on a day, and news published after it does not exist yet."""
    as_of_day = parse_day(as_of, "as_of") or today or date.today()
    since_day = parse_day(since, "since")
    until_day = parse_day(until, "until")
    if since_day and until_day and since_day > until_day:
        raise QAError(f"since ({since_day}) is after until ({until_day})")
    if since_day and since_day > as_of_day:
        raise QAError(f"since ({since_day}) is after the as-of date ({as_of_day})")
    cleaned: list[str] = []
    for source in sources:
        name = source.strip().lower()
        if not name:
            raise QAError("a source filter is empty")
        if name not in cleaned:
            cleaned.append(name)
    return Filters(as_of=as_of_day, since=since_day, until=until_day, sources=tuple(cleaned))


# ---------------------------------------------------------------- relative time in a question

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_COUNT = r"(?:\d+|a|one|two|three|four|five|six|seven|eight|nine|ten)"
# Phrases that name a period relative to the day the question is asked. Each alternative's
# group name says the granularity of the period; dateparser resolves the anchor day.
TIME_PHRASE = re.compile(
    r"\b(?:"
    r"(?P<day>today|yesterday|(?:on|last|this(?:\s+past)?)\s+(?:"
    + _WEEKDAYS
    + r")|"
    + _COUNT
    + r"\s+days?\s+ago)"
    r"|(?P<week>(?:this|last|past)\s+week(?:end)?|" + _COUNT + r"\s+weeks?\s+ago)"
    r"|(?P<month>(?:this|last|past)\s+month|in\s+(?:" + _MONTHS + r")(?:\s+\d{4})?)"
    r"|(?P<year>(?:this|last|past)\s+year|in\s+(?:19|20)\d{2})"
    r")\b",
    re.IGNORECASE,
)


def question_window(question: str, as_of: date) -> tuple[date, date] | None:
    """The publication window a relative time phrase in ``question`` names, resolved against
    ``as_of`` ("this week" asked on 2024-01-12 -> 2024-01-06..2024-01-12); None when the
    question names no period. The window never ends after ``as_of``."""
    match = TIME_PHRASE.search(question)
    if match is None:
        return None
    phrase = " ".join(match.group(0).lower().split())
    unit = match.lastgroup or "day"
    anchor = _anchor(phrase, as_of)
    if anchor is None:
        return None
    if unit == "day":
        # News of a day is often published the day after.
        start, end = anchor, anchor + timedelta(days=1)
    elif unit == "week":
        this = phrase.startswith(("this", "past"))
        start, end = (
            (as_of - timedelta(days=6), as_of)
            if this
            else (anchor - timedelta(days=3), anchor + timedelta(days=3))
        )
    elif unit == "month":
        start = anchor.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    else:
        start, end = date(anchor.year, 1, 1), date(anchor.year, 12, 31)
    return start, min(end, as_of)


def _anchor(phrase: str, as_of: date) -> date | None:
    """The day ``phrase`` points at, seen from ``as_of`` (dateparser, past preferred)."""
    import dateparser  # imported only when a question names a period (~0.5 s)

    text = re.sub(r"^(?:on|in)\s+", "", phrase)
    text = re.sub(r"^this\s+past\s+", "last ", text).replace("weekend", "week")
    if re.fullmatch(r"(?:19|20)\d{2}", text):
        return date(int(text), 1, 1)
    base = datetime(as_of.year, as_of.month, as_of.day, 12)
    settings: dict[str, Any] = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past"}
    if text.startswith("this "):
        text = "today" if text.endswith(("week", "weekend", "month", "year")) else text[5:]
    found = dateparser.parse(text, languages=["en"], settings=settings)
    if found is None:
        return None
    day = found.date()
    return min(day, as_of)
