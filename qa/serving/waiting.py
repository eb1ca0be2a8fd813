"""Which connections of `qa serve` are waiting on their clients, oldest first, and which to
close when there are too many (:mod:`qa.serving.server`).

A connection is *receiving* from when it opens (or the next request's first byte arrives on
a kept-alive one) until its request is in, and *idle* between a response and the next
request. A connection being answered is in neither list and is never closed here. When the
server is full the oldest receiving connection goes first: a client that sends its request at
once is the newest and is never the one closed, however many slow ones keep coming. Past
``server.max_waiting_per_client`` receiving connections of one address, that address's oldest
go, so one slow client cannot crowd out the slow-but-honest ones of other addresses.

Everything here runs on the server's event loop: no locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

log = logging.getLogger("qa.serving.app")

# Seconds a new connection has to send its request before the per-client cap may close it:
# a client that writes its request at once is never caught between connecting and sending.
GRACE = 0.25
# Seconds between two log lines about connections closed to make room (an attack would
# otherwise write one line per connection).
LOG_EVERY = 10.0


class Waiter(Protocol):
    @property
    def address(self) -> str: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    def cut(self) -> None: ...


class Waiting:
    """One server's receiving and idle connections, each in the order it began waiting."""

    def __init__(self) -> None:
        self._receiving: dict[Waiter, float] = {}  # insertion order is age order
        self._idle: dict[Waiter, float] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._cuts: dict[str, int] = {}  # why -> connections closed since the last log line
        self._logged = 0.0

    def receiving(self, conn: Waiter) -> None:
        """``conn`` began sending a request (kept from when it began if already counted)."""
        self._idle.pop(conn, None)
        self._receiving.setdefault(conn, time.monotonic())

    def idle(self, conn: Waiter) -> None:
        self._receiving.pop(conn, None)
        self._idle.pop(conn, None)
        self._idle[conn] = time.monotonic()

    def forget(self, conn: Waiter) -> None:
        """``conn``'s request is in, or it is closed."""
        self._receiving.pop(conn, None)
        self._idle.pop(conn, None)

    def oldest(self) -> Waiter | None:
        """The connection to close to make room: the one sending its request the longest,
        else the one idle the longest; None when every connection is being answered."""
        return next(iter(self._receiving), None) or next(iter(self._idle), None)

    def check_client(self, conn: Waiter, cap: int) -> None:
        """Past ``cap`` receiving connections of ``conn``'s address, close its oldest soon
        (after GRACE, so the newest have had the time to send their requests)."""
        if self._sweep is None and self.count(conn.address) > cap:
            self._sweep = conn.loop.call_later(GRACE, self._trim, conn.loop, cap)

    def count(self, address: str) -> int:
        return sum(c.address == address for c in self._receiving)

    def _trim(self, loop: asyncio.AbstractEventLoop, cap: int) -> None:
        self._sweep = None
        by_address: dict[str, list[Waiter]] = {}
        for conn in self._receiving:  # oldest first
            by_address.setdefault(conn.address, []).append(conn)
        cutoff = time.monotonic() - GRACE
        again = False
        for conns in by_address.values():
            for conn in conns[: max(0, len(conns) - cap)]:
                if self._receiving.get(conn, 0.0) > cutoff:
                    again = True  # too new to judge yet
                    break
                self.note_cut("server.max_waiting_per_client reached")
                conn.cut()
        if again:
            self._sweep = loop.call_later(GRACE, self._trim, loop, cap)

    def note_cut(self, why: str) -> None:
        """Count a connection closed to make room; log the counts every LOG_EVERY seconds."""
        self._cuts[why] = self._cuts.get(why, 0) + 1
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY:
            said = "; ".join(f"{n} ({why})" for why, n in self._cuts.items())
            log.warning("too many connections waiting on their clients: closed %s", said)
            self._cuts.clear()
            self._logged = now
