"""The OpenAI chat-completions client (also any OpenAI-compatible server via ``base_url``).

The ``openai`` package's own retries are switched off (``max_retries=0``) and the policy is
spelled out here: rate limits (429), server errors (5xx), timeouts and connection errors are
retried with exponential backoff, honouring ``Retry-After``; a 429 for an exhausted quota and
every other 4xx fail at once with the server's message.
"""

from __future__ import annotations

import email.utils
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from qa.llm.base import register
from qa.tokens import count_message_tokens, count_tokens
from qa.types import Completion, Prompt, QAError, UpstreamError, Usage

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embed import Embedder

T = TypeVar("T")

# A server asking us to wait longer than this is not worth waiting for inside one request.
MAX_RETRY_AFTER = 120.0
LOCAL_PLACEHOLDER_KEY = "sk-no-key-needed"

NO_KEY_MESSAGE = (
    "No OpenAI key found: set OPENAI_API_KEY "
    "(or set llm.openai.base_url for a local OpenAI-compatible server)"
)
QUOTA_MESSAGE = "OpenAI quota exhausted (insufficient_quota): check your plan and billing"
UNAVAILABLE = "the model service is unavailable: try again later"


@dataclass(frozen=True)
class _Failure:
    """What went wrong with one attempt, and whether another attempt may help."""

    retry: bool
    message: str
    retry_after: float | None = None
    # What a server tells its own remote callers when this is the last failure.
    status: int = 502
    public: str = "the model service rejected the request"


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            ms = float(value)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
        return max(0.0, seconds)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    elif isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return str(getattr(exc, "message", "") or exc)


class OpenAIClient:
    """Chat completions through the official ``openai`` package; the client opens on first use."""

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        cfg = settings.llm.openai
        self._model = cfg.model
        self.base_url = cfg.base_url.strip()
        self.timeout = cfg.timeout
        self.max_retries = max(0, cfg.max_retries)
        self.backoff_base = cfg.backoff_base
        self.backoff_max = cfg.backoff_max
        self._context_window = cfg.context_window
        self.max_answer_tokens = settings.llm.max_answer_tokens
        self.temperature = settings.llm.temperature
        key = os.environ.get("OPENAI_API_KEY", "").strip()
        if not key and not self.base_url:
            raise QAError(NO_KEY_MESSAGE)
        self._api_key = key or LOCAL_PLACEHOLDER_KEY
        self._client: Any = None
        self._lock = threading.Lock()
        # Learned per server: some reject stream_options, some want max_completion_tokens.
        self._stream_usage = True
        self._tokens_param = "max_tokens"
        self._rng = random.Random()
        self.sleep: Callable[[float], None] = time.sleep  # replaceable in tests

    @property
    def model(self) -> str:
        return self._model

    @property
    def context_window(self) -> int:
        return self._context_window

    @property
    def where(self) -> str:
        return self.base_url or "api.openai.com"

    # -- connection ---------------------------------------------------------------------------

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    api_key=self._api_key,
                    base_url=self.base_url or None,
                    timeout=self.timeout,
                    max_retries=0,
                )
        return self._client

    # -- retry policy -------------------------------------------------------------------------

    def _classify(self, exc: Exception) -> _Failure | None:
        """How to treat an exception from the openai package; None: not an API error."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return _Failure(
                True,
                f"the request timed out after {self.timeout:g} s",
                status=503,
                public=UNAVAILABLE,
            )
        if isinstance(exc, openai.APIConnectionError):
            return _Failure(
                True,
                f"could not connect to {self.where} ({exc.__cause__ or exc})",
                status=503,
                public=UNAVAILABLE,
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = _server_message(exc)
            if status == 429:
                if "insufficient_quota" in (str(exc.code), str(exc.type)):
                    return _Failure(False, QUOTA_MESSAGE, status=503, public=UNAVAILABLE)
                retry_after = parse_retry_after(exc.response.headers)
                return _Failure(
                    True,
                    f"rate limited (429): {message}",
                    retry_after,
                    status=429,
                    public="the model service is busy: try again later",
                )
            if status >= 500:
                retry_after = parse_retry_after(exc.response.headers)
                return _Failure(
                    True,
                    f"server error ({status}): {message}",
                    retry_after,
                    status=503,
                    public=UNAVAILABLE,
                )
            if status == 401:
                return _Failure(
                    False,
                    f"OpenAI rejected the API key (401): {message}. "
                    "Check OPENAI_API_KEY (or the key your server expects).",
                )
            if status == 403:
                return _Failure(False, f"OpenAI refused the request (403): {message}")
            if status == 404:
                return _Failure(
                    False,
                    f"OpenAI could not find it (404): {message}. "
                    f"Check llm.openai.model ({self._model!r}) and llm.openai.base_url.",
                )
            return _Failure(False, f"OpenAI rejected the request ({status}): {message}")
        if isinstance(exc, openai.APIError):
            return _Failure(False, f"OpenAI request failed: {exc}")
        return None

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt + 1``: base doubling, capped, plus <=10% jitter."""
        delay = min(self.backoff_max, self.backoff_base * (2.0**attempt))
        return max(0.0, delay * (1.0 + 0.1 * self._rng.random()))

    def with_retries(self, call: Callable[[], T]) -> T:
        """Run ``call``; retry transient failures up to ``max_retries`` times."""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                return call()
            except Exception as exc:
                failure = self._classify(exc)
                if failure is None:
                    raise
                status, public = failure.status, failure.public
                if not failure.retry:
                    raise UpstreamError(failure.message, status=status, public=public) from exc
                if attempt + 1 >= attempts:
                    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                    raise UpstreamError(
                        f"OpenAI request to {self.where} failed after {tries}: {failure.message}. "
                        "Try again later, or raise llm.openai.max_retries / llm.openai.timeout.",
                        retry_after=failure.retry_after,
                        status=status,
                        public=public,
                    ) from exc
                if failure.retry_after is not None:
                    if failure.retry_after > MAX_RETRY_AFTER:
                        raise UpstreamError(
                            f"OpenAI asked to wait {failure.retry_after:.0f} s before retrying "
                            f"({failure.message}); try again later",
                            retry_after=failure.retry_after,
                            status=status,
                        public=public,
                        ) from exc
                    delay = failure.retry_after
                else:
                    delay = self.backoff(attempt)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- requests -----------------------------------------------------------------------------

    def _request(self, prompt: Prompt) -> dict[str, Any]:
        max_tokens = prompt.max_tokens or self.max_answer_tokens
        return {
            "model": self._model,
            "messages": [dict(m) for m in prompt.messages],
            "temperature": self.temperature,
            self._tokens_param: max_tokens,
        }

    def _create(self, prompt: Prompt, **extra: Any) -> Any:
        """One create call; switches to ``max_completion_tokens`` when a model demands it."""
        import openai

        client = self.client()
        try:
            return client.chat.completions.create(**self._request(prompt), **extra)
        except openai.BadRequestError as exc:
            if self._tokens_param == "max_tokens" and "max_completion_tokens" in str(exc):
                self._tokens_param = "max_completion_tokens"
                return client.chat.completions.create(**self._request(prompt), **extra)
            raise

    def _usage(self, prompt: Prompt, text: str, usage: Any) -> Usage:
        if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
            return Usage(int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0))
        return Usage(
            count_message_tokens(prompt.messages, self._model), count_tokens(text, self._model)
        )

    def generate(self, prompt: Prompt) -> Completion:
        response = self.with_retries(lambda: self._create(prompt))
        choices = getattr(response, "choices", None) or []
        text = (choices[0].message.content or "") if choices else ""
        return Completion(
            text=text.strip(),
            model=self._model,
            usage=self._usage(prompt, text, getattr(response, "usage", None)),
        )

    def _start_stream(self, prompt: Prompt) -> Any:
        import openai

        if not self._stream_usage:
            return self._create(prompt, stream=True)
        try:
            return self._create(prompt, stream=True, stream_options={"include_usage": True})
        except (openai.BadRequestError, openai.UnprocessableEntityError):
            # Perhaps a server that does not know stream_options: ask again without it and
            # count the usage ourselves. If this fails too, its error is the one reported.
            stream = self._create(prompt, stream=True)
            self._stream_usage = False
            return stream

    def stream(self, prompt: Prompt) -> Iterator[str | Completion]:
        # Retries cover the start of the stream only; a stream that breaks off mid-way fails.
        stream = self.with_retries(lambda: self._start_stream(prompt))
        parts: list[str] = []
        usage: Any = None
        try:
            for chunk in stream:
                if getattr(chunk, "usage", None) is not None:
                    usage = chunk.usage
                for choice in getattr(chunk, "choices", None) or []:
                    delta = getattr(choice, "delta", None)
                    piece = getattr(delta, "content", None) if delta is not None else None
                    if piece:
                        parts.append(piece)
                        yield piece
        except QAError:
            raise
        except Exception as exc:
            raise UpstreamError(
                f"the answer stream from {self.where} broke off "
                f"after {sum(map(len, parts))} characters: {exc}",
                public="the model service broke off its answer",
            ) from exc
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        text = "".join(parts)
        yield Completion(
            text=text.strip(), model=self._model, usage=self._usage(prompt, text, usage)
        )


@register("openai")
def create_openai(settings: Settings, embedder: Embedder | None = None) -> OpenAIClient:
    return OpenAIClient(settings)
