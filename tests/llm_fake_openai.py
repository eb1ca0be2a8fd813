"""A scripted OpenAI-compatible HTTP server on 127.0.0.1 for the retry and streaming tests.

Each request takes the next step of the script (the last one repeats), and every request is
recorded with its arrival time, headers and JSON body.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = "Khrenin said India is a priority [1]."


def completion_body(text: str = ANSWER, usage: tuple[int, int] = (50, 9)) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        },
    }


def error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


@dataclass
class Step:
    """One scripted answer: a JSON reply, an SSE stream, or either after a delay."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to sleep before answering (to trigger client timeouts)
    sse: list[str] | None = None  # text pieces to stream as chat.completion.chunk events
    sse_usage: tuple[int, int] | None = (40, 7)  # usage chunk, when the request asks for it
    reject_stream_options: bool = False  # 400 when the request carries stream_options


@dataclass
class Request:
    at: float
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    def __init__(self) -> None:
        self.steps: list[Step] = [Step(body=completion_body())]
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                step = owner._take(
                    Request(time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body)
                )
                # The client may have given up already (the timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    owner._answer(self, step, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *steps: Step) -> None:
        with self._lock:
            self.steps = list(steps)
            self.requests = []

    def _take(self, request: Request) -> Step:
        with self._lock:
            self.requests.append(request)
            return self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]

    def _answer(self, handler: BaseHTTPRequestHandler, step: Step, request: dict[str, Any]) -> None:
        if step.delay:
            time.sleep(step.delay)
        if step.reject_stream_options and "stream_options" in request:
            self._json(
                handler,
                400,
                error_body(
                    "Unrecognized request argument: stream_options", "invalid_request_error"
                ),
                {},
            )
            return
        if step.sse is not None and request.get("stream"):
            self._sse(handler, step, request)
            return
        self._json(handler, step.status, step.body or completion_body(), step.headers)

    @staticmethod
    def _json(
        handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], headers: dict[str, str]
    ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _sse(handler: BaseHTTPRequestHandler, step: Step, request: dict[str, Any]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> None:
            event = {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": "gpt-test",
                "choices": choices,
                **extra,
            }
            handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            handler.wfile.flush()

        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
        for piece in step.sse or []:
            chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        wants_usage = (request.get("stream_options") or {}).get("include_usage")
        if wants_usage and step.sse_usage is not None:
            prompt, completion = step.sse_usage
            chunk(
                [],
                usage={
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            )
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
