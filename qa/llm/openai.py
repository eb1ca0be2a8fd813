"""The OpenAI chat-completions client (also any OpenAI-compatible server via ``base_url``).

Retries follow the one policy of :mod:`qa.core.service` (429, 5xx, timeouts and connection errors
retried with backoff; an exhausted quota and other 4xx not).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from qa.core.service import QUOTA_MESSAGE, UNAVAILABLE, RetryPolicy, api_key, parse_retry_after
from qa.core.types import Completion, Prompt, QAError, UpstreamError, Usage
from qa.llm.base import register
from qa.llm.tokens import count_message_tokens, count_tokens

if TYPE_CHECKING:
    from qa.core.config import Settings
    from qa.embedding.base import Embedder

__all__ = [
    "NO_KEY_MESSAGE",
    "QUOTA_MESSAGE",
    "UNAVAILABLE",
    "OpenAIClient",
    "parse_retry_after",
]

T = TypeVar("T")

NO_KEY_MESSAGE = (
    "No OpenAI key found: set OPENAI_API_KEY "
    "(or set llm.openai.base_url for a local OpenAI-compatible server)"
)


class OpenAIClient:
    """Chat completions through the official ``openai`` package; the client opens on first use."""

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        cfg = settings.llm.openai
        self._model = cfg.model
        self.base_url = cfg.base_url.strip()
        self.timeout = cfg.timeout
        self._context_window = cfg.context_window
        self.max_answer_tokens = settings.llm.max_answer_tokens
        self.temperature = settings.llm.temperature
        self._api_key = api_key(self.base_url, NO_KEY_MESSAGE)
        self._client: Any = None
        self._lock = threading.Lock()
        # Learned per server: some reject stream_options, some want max_completion_tokens.
        self._stream_usage = True
        self._tokens_param = "max_tokens"
        self.retries = RetryPolicy(
            section="llm.openai",
            model=cfg.model,
            where=self.where,
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
            backoff_base=cfg.backoff_base,
            backoff_max=cfg.backoff_max,
        )

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

    # -- retry policy (qa.core.service)

    def backoff(self, attempt: int) -> float:
        return self.retries.backoff(attempt)

    def with_retries(self, call: Callable[[], T]) -> T:
        return self.retries.run(call)

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
