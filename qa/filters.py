"""Filters from user input: the as-of date (today by default), date bounds and sources.

One place turns the strings the CLI, the HTTP API and the page receive into a typed
:class:`qa.types.Filters`, with one set of error messages; every layer below takes the typed
value and never re-parses dates.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from qa.types import Filters, QAError


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
