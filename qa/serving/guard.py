"""The HTTP layer's guard and error shape: OpenAI-style error bodies, and the checks every
request passes before routing.

Outermost first: the Host header must name this server (Starlette's TrustedHostMiddleware:
the bound address, the localhost names and ``server.allowed_hosts``), so a DNS-rebinding page
cannot read the API under its own name; CORS answers, only when ``server.cors_origins`` is set;
then :class:`GuardMiddleware` refuses cross-site requests (an ``Origin`` that is not the
server's own, 403), checks the bearer token (401), requires ``Content-Type: application/json``
on request bodies (415: a web page can POST ``text/plain`` anywhere without asking) and reads
the body with the ``server.max_body_bytes`` cap (413; ``/v1/embeddings``, whose batches are
larger, has ``server.max_embedding_body_bytes``). :class:`Slots` bounds the model calls running
at once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.core.config import ServerSettings
from qa.core.types import QAError, UpstreamError

log = logging.getLogger("qa.serving.app")

# Reachable without the API key: the page and what it loads, and the health check.
OPEN_PATHS = frozenset({"/", "/index.html", "/healthz", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_STATUS_CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    502: "upstream_error",
    503: "no_index",
}


# --------------------------------------------------------------------------- errors


class APIError(Exception):
    """An error returned as an OpenAI-style body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.message = message
        self.type = type
        self.param = param
        self.code = code or _STATUS_CODES.get(status)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers())


def from_qa_error(exc: QAError, param: str | None = None) -> APIError:
    """A QAError is the caller's fault (400) unless the model behind the assistant failed
    (502/503/429 with a message for remote callers; the detail, which may name local paths
    and settings, goes to the log only) or it says the index must be (re)built (503)."""
    message = str(exc)
    if isinstance(exc, UpstreamError):
        log.warning("model call failed (%d to the caller): %s", exc.status, message)
        code = "upstream_unavailable" if exc.status == 503 else None
        return APIError(
            exc.status, exc.public, type="server_error", code=code, retry_after=exc.retry_after
        )
    if "qa ingest" in message:
        return APIError(503, message, type="server_error", code="no_index")
    return APIError(400, message, param=param)


async def _send_error(send: Send, error: APIError) -> None:
    body = json.dumps(error.body()).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
    if error.status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# --------------------------------------------------------------------------- middleware


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _origin(value: str) -> str:
    """An origin compared loosely: lower case, no trailing slash, no default port."""
    value = value.strip().lower().rstrip("/")
    port = DEFAULT_PORTS.get(value.partition("://")[0])
    return value.removesuffix(port) if port else value


class GuardMiddleware:
    """Same-origin check, bearer token, JSON content type, then the body read in full with a
    size cap.

    Runs before routing, so refused requests are answered without reading their body, and no
    route ever sees more than ``max_body`` bytes (chunked bodies included).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None,
        max_body: int,
        cors_origins: Sequence[str] = (),
        body_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body = max_body
        # Paths whose bodies have their own cap (the batches of /v1/embeddings).
        self.body_limits = dict(body_limits or {})
        self.cors_origins = frozenset(_origin(o) for o in cors_origins)

    def _limit(self, scope: Scope) -> int:
        return self.body_limits.get(scope["path"], self.max_body)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> APIError | None:
        origin = headers.get("origin")
        if origin is not None:
            own = _origin(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")
            if _origin(origin) not in (own, *self.cors_origins):
                return APIError(
                    403,
                    f"cross-site request refused: Origin {origin!r} is not this server "
                    "(list trusted web origins in server.cors_origins)",
                    code="cross_site_request",
                )
        if self.api_key and not _is_open(scope["path"]):
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), self.api_key.encode()
            ):
                reason = (
                    "invalid API key"
                    if token.strip()
                    else "missing API key: send the header 'Authorization: Bearer <QA_API_KEY>'"
                )
                return APIError(401, reason)
        if scope["method"] in BODY_METHODS:
            kind = headers.get("content-type", "").partition(";")[0].strip().lower()
            if kind != "application/json":
                got = f"{kind!r}" if kind else "none"
                return APIError(
                    415,
                    f"send the body as JSON with 'Content-Type: application/json' (got {got})",
                )
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                return APIError(400, "invalid Content-Length header")
            if int(length) > self._limit(scope):
                return too_large(self._limit(scope), scope["path"])
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _send_error(send, refusal)
            return

        limit = self._limit(scope)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before sending its request
            body += message.get("body", b"")
            if len(body) > limit:
                await _send_error(send, too_large(limit, scope["path"]))
                return
            if not message.get("more_body", False):
                break

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as usual

        await self.app(scope, replay, send)


def too_large(limit: int, path: str = "") -> APIError:
    setting = BODY_LIMIT_SETTINGS.get(path, "server.max_body_bytes")
    return APIError(413, f"the request body is larger than {limit} bytes ({setting})")


# Paths with their own body cap, and the setting that sets it.
BODY_LIMIT_SETTINGS = {"/v1/embeddings": "server.max_embedding_body_bytes"}


class Slots:
    """At most ``size`` calls of one kind running at once (model answers, embeddings, ingests).
    A caller waits on the event loop, holding no worker thread, up to ``wait`` seconds (none
    when ``wait`` is 0), then gets 503 with Retry-After (``retry_after``, else half the wait):
    a client backs off instead of piling up threads."""

    def __init__(self, size: int, wait: float, busy: str, retry_after: float = 0.0) -> None:
        self.semaphore = asyncio.Semaphore(size)
        self.wait = wait
        self.busy = busy
        self.retry_after = retry_after or max(1.0, wait / 2)

    async def acquire(self) -> None:
        try:
            if self.wait <= 0:
                if self.semaphore.locked():
                    raise TimeoutError  # no waiting: refused at once
                await self.semaphore.acquire()  # free: returns without suspending
            else:
                await asyncio.wait_for(self.semaphore.acquire(), timeout=self.wait)
        except TimeoutError:
            raise APIError(
                503,
                f"the server is busy {self.busy}: try again later",
                type="server_error",
                code="server_busy",
                retry_after=self.retry_after,
            ) from None

    def release(self) -> None:
        self.semaphore.release()


def trusted_hosts(server: ServerSettings) -> list[str]:
    """Host names the server answers to: the bound address (unless a wildcard), the localhost
    names, and ``server.allowed_hosts``."""
    names = list(LOCAL_NAMES)
    host = server.host.strip().lower()
    if host not in WILDCARD_HOSTS:
        names.append(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    names.extend(h.strip().lower() for h in server.allowed_hosts)
    return list(dict.fromkeys(names))


def add_guards(app: FastAPI, server: ServerSettings, api_key: str | None) -> None:
    """Install the checks of the module docstring, outermost last (Starlette's order)."""
    app.add_middleware(
        GuardMiddleware,
        api_key=api_key or None,
        max_body=server.max_body_bytes,
        cors_origins=server.cors_origins,
        body_limits={"/v1/embeddings": server.max_embedding_body_bytes},
    )
    if server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(server.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    hosts = trusted_hosts(server)
    try:  # Starlette checks the wildcard patterns with assert, when the stack is built
        TrustedHostMiddleware(app, allowed_hosts=hosts)
    except AssertionError as exc:
        raise QAError(f"server.allowed_hosts: {exc} (got {hosts})") from None
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)
