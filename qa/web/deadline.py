"""A deadline for a whole fetch, enforced on every socket operation.

httpx's timeouts bound each operation (connecting, one read), so a server sending a byte a
second resets the read timeout with each byte and holds a fetch for as long as it likes. The
fetcher sets one deadline for a whole fetch (:func:`deadline`, ``fetch.total_timeout``) and
every connect, TLS handshake, write and read made in that thread meanwhile gets at most the
time left: past the deadline the next operation fails at once as a timeout
(:class:`DeadlineStream`, opened by :mod:`qa.web.guard`'s backend). It works below content
decoding, so a compressed body that decodes to nothing for a long time is cut too.

The deadline lives in a context variable: each thread (each request of the server) has its
own, and a pooled connection reused by a later fetch obeys that fetch's deadline.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import httpcore

_deadline: ContextVar[float | None] = ContextVar("qa_fetch_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Socket operations in the block end within ``seconds`` from now (nested deadlines:
    the earlier one wins)."""
    ends = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(ends if outer is None else min(outer, ends))
    try:
        yield
    finally:
        _deadline.reset(token)


def past_deadline() -> bool:
    """True when the current fetch's deadline has passed."""
    ends = _deadline.get()
    return ends is not None and time.monotonic() >= ends


def bounded(timeout: float | None) -> float | None:
    """``timeout`` cut to the time left before the deadline; raises
    :class:`httpcore.ReadTimeout` when none is left (httpx reports it as a timeout)."""
    ends = _deadline.get()
    if ends is None:
        return timeout
    left = ends - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the fetch's total deadline has passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation obeys the current deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, bounded(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)
