"""Calls to an OpenAI-compatible service (chat in qa/llm/openai.py, embeddings in
qa/embedding/remote.py): the key rule and the retry policy, one copy of each.

The ``openai`` package's own retries are switched off (``max_retries=0``) and the policy is
spelled out here: rate limits (429), server errors (5xx), timeouts and connection errors are
retried with exponential backoff, honouring ``Retry-After``; a 429 for an exhausted quota and
every other 4xx (a rejected key: 401) fail at once with the server's message.
"""

from __future__ import annotations

import email.utils
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from qa.core.types import QAError, UpstreamError

T = TypeVar("T")

# A server asking us to wait longer than this is not worth waiting for inside one request.
MAX_RETRY_AFTER = 120.0
QUOTA_MESSAGE = "OpenAI quota exhausted (insufficient_quota): check your plan and billing"
UNAVAILABLE = "the model service is unavailable: try again later"
LOCAL_PLACEHOLDER_KEY = "sk-no-key-needed"


def api_key(base_url: str, no_key_message: str) -> str:
    """The key from ``OPENAI_API_KEY`` (never from a file); a local server (``base_url`` set)
    may need none, and gets a placeholder the openai package accepts."""
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if not key and not base_url:
        raise QAError(no_key_message)
    return key or LOCAL_PLACEHOLDER_KEY


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


class RetryPolicy:
    """Runs calls to one service with the rule of the module docstring. ``section`` names the
    settings the messages point at (``llm.openai``, ``embedding.openai``), ``model`` the model
    asked for and ``where`` the server."""

    def __init__(
        self,
        *,
        section: str,
        model: str,
        where: str,
        timeout: float,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        model_setting: str = "",
        url_setting: str = "",
    ) -> None:
        self.section = section
        self.model = model
        self.where = where
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.model_setting = model_setting or f"{section}.model"
        self.url_setting = url_setting or f"{section}.base_url"
        self._rng = random.Random()
        self.sleep: Callable[[float], None] = time.sleep  # replaceable in tests

    def classify(self, exc: Exception, where: str | None = None) -> _Failure | None:
        """How to treat an exception from the openai package; None: not an API error."""
        import openai

        where = where or self.where
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
                f"could not connect to {where} ({exc.__cause__ or exc})",
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
                    f"Check {self.model_setting} ({self.model!r}) and {self.url_setting}.",
                )
            return _Failure(False, f"OpenAI rejected the request ({status}): {message}")
        if isinstance(exc, openai.APIError):
            return _Failure(False, f"OpenAI request failed: {exc}")
        return None

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt + 1``: base doubling, capped, plus <=10% jitter."""
        delay = min(self.backoff_max, self.backoff_base * (2.0**attempt))
        return max(0.0, delay * (1.0 + 0.1 * self._rng.random()))

    def run(self, call: Callable[[], T], where: str | None = None) -> T:
        """Run ``call``; retry transient failures up to ``max_retries`` times. ``where`` names
        the server in the final message when it is not ``self.where``."""
        where = where or self.where
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                return call()
            except Exception as exc:
                failure = self.classify(exc, where)
                if failure is None:
                    raise
                status, public = failure.status, failure.public
                if not failure.retry:
                    raise UpstreamError(failure.message, status=status, public=public) from exc
                if attempt + 1 >= attempts:
                    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                    raise UpstreamError(
                        f"OpenAI request to {where} failed after {tries}: {failure.message}. "
                        f"Try again later, or raise {self.section}.max_retries / "
                        f"{self.section}.timeout.",
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
