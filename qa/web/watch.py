"""`qa watch`: poll feeds on an interval and keep the index fresh while `qa serve` answers.

Each feed has its own schedule. A poll is a conditional GET (ETag / Last-Modified, kept in
``<corpus>/web/.feeds.json``), so an unchanged feed costs one 304. A feed that fails (down,
not a feed, robots.txt unreachable) is retried after ``interval * 2**failures`` seconds, at
most ``fetch.max_backoff``; a success resets it. After a cycle that stored articles the index
is synced, writing a new generation that a running server opens on its next question.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qa import index as index_mod
from qa.core.config import Settings
from qa.core.types import QAError
from qa.embedding.base import Embedder
from qa.web.feed_state import FeedState
from qa.web.feeds import FAILED, STORED, Outcome, collect, read_corpus, reindex
from qa.web.fetch import Fetcher
from qa.web.pages import Catalog


@dataclass
class Schedule:
    """When one feed is next polled, and how many polls in a row have failed."""

    url: str
    due: float = 0.0
    failures: int = 0

    def done(self, now: float, ok: bool, interval: float, max_backoff: float) -> None:
        self.failures = 0 if ok else self.failures + 1
        self.due = now + min(interval * 2**self.failures, max_backoff)


@dataclass
class Cycle:
    """What one cycle did: the outcomes of the feeds due, and the index sync (or its error)."""

    number: int
    outcomes: list[Outcome] = field(default_factory=list)
    sync: index_mod.SyncReport | None = None
    error: str = ""  # the index could not be synced this time (retried next cycle)


def watch(
    feeds: Sequence[str],
    settings: Settings,
    embedder: Embedder,
    *,
    interval: float | None = None,
    cycles: int | None = None,
    stop: threading.Event | None = None,
    on_cycle: Callable[[Cycle], None] | None = None,
    fetcher: Fetcher | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Schedule]:
    """Poll ``feeds`` until ``stop`` is set (or ``cycles`` cycles have run); returns the
    schedules, so a caller can see the backoff state."""
    every = settings.fetch.interval if interval is None else interval
    stop = stop or threading.Event()
    schedules = [Schedule(url) for url in dict.fromkeys(feeds)]
    state = FeedState.for_corpus(settings.corpus_dir)
    catalog = Catalog.of_corpus(settings.corpus_dir, read_corpus(settings).documents)
    client = fetcher or Fetcher(settings.fetch)
    pending = False  # articles stored but not yet indexed (a sync failed)
    number = 0
    try:
        while not stop.is_set() and (cycles is None or number < cycles):
            number += 1
            cycle = Cycle(number)
            for schedule in schedules:
                if schedule.due > clock():
                    continue
                outcomes = collect(
                    [],
                    settings,
                    feeds=[schedule.url],
                    fetcher=client,
                    catalog=catalog,
                    state=state,
                )
                feed_failed = any(o.status == FAILED and not o.feed for o in outcomes)
                schedule.done(clock(), not feed_failed, every, settings.fetch.max_backoff)
                cycle.outcomes += outcomes
            if pending or any(o.status == STORED for o in cycle.outcomes):
                try:
                    corpus = read_corpus(settings)
                    cycle.sync = reindex(settings, embedder, corpus)
                    catalog = Catalog.of_corpus(settings.corpus_dir, corpus.documents)
                    pending = False
                except QAError as exc:
                    cycle.error, pending = str(exc), True
            if on_cycle:
                on_cycle(cycle)
            if cycles is not None and number >= cycles:
                break
            wait = min(s.due for s in schedules) - clock() if schedules else every
            stop.wait(max(wait, 0.0))
    finally:
        if fetcher is None:
            client.close()
    return schedules
