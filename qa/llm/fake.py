"""A scripted client for tests: canned replies in order, every prompt recorded."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from qa.core.types import Completion, Prompt, Usage
from qa.llm.base import register

if TYPE_CHECKING:
    from qa.core.config import Settings
    from qa.embedding.base import Embedder

DEFAULT_REPLY = "Khrenin said India is a priority [1]."


def _words(text: str) -> int:
    return len(text.split())


class FakeLLM:
    """Returns ``replies`` in order (repeating the last one); ``calls`` holds every prompt."""

    name = "fake"

    def __init__(
        self,
        replies: Sequence[str] = (DEFAULT_REPLY,),
        *,
        model: str = "fake",
        context_window: int = 8192,
    ) -> None:
        if isinstance(replies, str):
            replies = (replies,)
        self.replies = list(replies) or [DEFAULT_REPLY]
        self.calls: list[Prompt] = []
        self._model = model
        self._context_window = context_window
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self._model

    @property
    def context_window(self) -> int:
        return self._context_window

    def _next(self, prompt: Prompt) -> Completion:
        with self._lock:
            self.calls.append(prompt)
            text = self.replies[min(len(self.calls), len(self.replies)) - 1]
        prompt_words = sum(_words(m.get("content", "")) for m in prompt.messages)
        return Completion(text=text, model=self._model, usage=Usage(prompt_words, _words(text)))

    def generate(self, prompt: Prompt) -> Completion:
        return self._next(prompt)

    def stream(self, prompt: Prompt) -> Iterator[str | Completion]:
        completion = self._next(prompt)
        # Word by word, each piece with the spaces that follow it: the pieces join to the text.
        yield from re.findall(r"\s*\S+\s*", completion.text)
        yield completion


@register("fake")
def create_fake(settings: Settings, embedder: Embedder | None = None) -> FakeLLM:
    return FakeLLM()
