"""Running the app on uvicorn with limits for slow and numerous clients.

uvicorn has no timeout for receiving a request: its keep-alive timer only runs between
requests and is reset by every byte, so a client that sends half a request holds its connection
forever (uvicorn issue #157), and ASGI middleware cannot help because it runs only once the
request head is complete. :class:`DeadlineProtocol` adds the two deadlines at the protocol
level, and a cap on open connections:

- the request head must arrive within ``server.header_timeout`` seconds of the connection being
  opened (or of the first byte of the next request on a kept-alive connection);
- the body within ``server.body_timeout`` seconds of the head;
- past ``server.max_connections`` open connections, the one that has been sending its request
  the longest (else the longest idle kept-alive one) is closed to make room; only when every
  connection is being answered is the new one closed;
- one client address may have ``server.max_waiting_per_client`` connections still sending a
  request; past that its oldest are closed (those open for at least ``GRACE``: a new
  connection gets the time to send its head).

So 300 half-sent heads (issue 22) cannot shut out a client that sends its request at once:
it is always the newest, and the oldest go first. A per-address cap alone could not do it on
loopback, where every client is 127.0.0.1. Once a request has been received nothing is timed,
so a long streamed answer is never cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from qa.core.config import ServerSettings
from qa.core.types import QAError
from qa.serving.waiting import Waiting

log = logging.getLogger("qa.serving.app")


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with request-receipt deadlines and connection limits."""

    limits = ServerSettings()  # replaced per server by :func:`protocol_for`
    waiting = Waiting()  # likewise: one server's connections waiting on their clients

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "head" or "body" while a deadline is armed

    @property
    def address(self) -> str:
        """The client's address (without the port): what the per-client cap counts by."""
        return self.client[0] if self.client else ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            victim = self.waiting.oldest()
            if victim is None:  # every connection is being answered: nothing to take back
                self.waiting.note_cut("new connections refused, all being answered")
                transport.close()
                return
            self.waiting.note_cut("server.max_connections reached")
            victim.cut()
        self.waiting.receiving(self)
        self._arm("head", self.limits.header_timeout)
        self.waiting.check_client(self, self.limits.max_waiting_per_client)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE and self._waiting_for is None and not self.transport.is_closing():
            self.waiting.receiving(self)  # a next request has begun
            self._arm("head", self.limits.header_timeout)
        elif state is h11.SEND_BODY and self._waiting_for != "body":
            self._arm("body", self.limits.body_timeout)
        elif state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request is in (or the connection is done)
            self.waiting.forget(self)

    def on_response_complete(self) -> None:
        self._disarm()
        super().on_response_complete()
        if not self.transport.is_closing():
            self.waiting.idle(self)  # kept alive: may be closed to make room

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.waiting.forget(self)
        super().connection_lost(exc)

    def cut(self) -> None:
        """Close the connection to make room for others."""
        self._disarm()
        self.waiting.forget(self)
        if not self.transport.is_closing():
            self.transport.close()

    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._waiting_for = what
        self._deadline = self.loop.call_later(seconds, self._expired, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._waiting_for = None

    def _expired(self, what: str, seconds: float) -> None:
        self._deadline = None
        self._waiting_for = None
        self.waiting.forget(self)
        if not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.warning("closing %s: request %s not received within %gs", client, what, seconds)
            self.transport.close()


def protocol_for(limits: ServerSettings) -> type[DeadlineProtocol]:
    """A protocol class bound to one server's limits (uvicorn instantiates it per connection)."""
    return type("QADeadlineProtocol", (DeadlineProtocol,), {"limits": limits, "waiting": Waiting()})


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`QAError` naming the port and ``--port`` when ``host:port`` cannot be
    bound, before uvicorn tries: its own failure is a page of log lines and exit code 3 with
    no hint. Bound as uvicorn binds (SO_REUSEADDR), so a port in TIME_WAIT is not refused."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise QAError(f"cannot listen on {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise QAError(
                f"port {port} on {host} is already in use (another `qa serve`?): "
                f"stop it, or choose another port with --port"
            ) from None
        raise QAError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def uvicorn_config(
    app: ASGIApp, limits: ServerSettings, host: str, port: int, **options: Any
) -> uvicorn.Config:
    """The one uvicorn configuration, for `qa serve` and for the tests and benchmarks."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_for(limits),
        timeout_keep_alive=5,  # idle time allowed between requests on one connection
        **options,
    )


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: ServerSettings | None = None,
) -> Iterator[str]:
    """Run ``app`` on uvicorn in a background thread; yields its base URL (tests, benchmarks).
    ``port=0`` picks a free port."""
    # The lifespan runs as under `qa serve`: /mcp's session manager lives in it.
    config = uvicorn_config(app, limits or ServerSettings(), host, port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="qa-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{host}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
