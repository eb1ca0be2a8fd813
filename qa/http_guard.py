"""The HTTP layer's guard and error shape: OpenAI-style error bodies, the bearer-token check
and the request-body cap, applied before routing so that no route sees an unauthenticated
request or more than ``server.max_body_bytes`` of body."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.types import QAError

# Reachable without the API key: the page and what it loads, and the health check.
OPEN_PATHS = frozenset({"/", "/index.html", "/healthz", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
_STATUS_CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
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
    ) -> None:
        super().__init__(message)
        self.status = status
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

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def from_qa_error(exc: QAError, param: str | None = None) -> APIError:
    """A QAError is the caller's fault (400) unless it says the index must be (re)built."""
    message = str(exc)
    if "qa ingest" in message:
        return APIError(503, message, type="server_error", code="no_index")
    return APIError(400, message, param=param)


async def _send_error(send: Send, error: APIError) -> None:
    body = json.dumps(error.body()).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if error.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if error.status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# --------------------------------------------------------------------------- middleware


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class GuardMiddleware:
    """Bearer-token check, then the request body read in full with a size cap.

    Runs before routing, so unauthenticated requests are refused without reading their body,
    and no route ever sees more than ``max_body`` bytes (chunked bodies included).
    """

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body: int) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
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
                await _send_error(send, APIError(401, reason))
                return

        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _send_error(send, APIError(400, "invalid Content-Length header"))
                return
            if int(length) > self.max_body:
                await _send_error(send, too_large(self.max_body))
                return

        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before sending its request
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _send_error(send, too_large(self.max_body))
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


def too_large(limit: int) -> APIError:
    return APIError(413, f"the request body is larger than {limit} bytes (server.max_body_bytes)")
