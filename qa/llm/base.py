"""The model-client protocol and the registry that picks a client by name.

A client turns a ``Prompt`` (numbered passages plus chat messages) into a ``Completion``.
The pipeline never trusts what comes back: citations are checked in ``qa.answering.check``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from qa.core.types import Completion, Prompt, QAError

if TYPE_CHECKING:
    from qa.core.config import Settings
    from qa.embedding.base import Embedder


@runtime_checkable
class LLM(Protocol):
    """A model client. Constructors are cheap; models and connections open on first use."""

    name: str  # registry name: "openai", "local", "extractive", "fake"

    @property
    def model(self) -> str:
        """The model identifier reported in answers."""
        ...

    @property
    def context_window(self) -> int:
        """Tokens the model reads at most (prompt plus answer)."""
        ...

    def generate(self, prompt: Prompt) -> Completion:
        """The whole completion at once."""
        ...

    def stream(self, prompt: Prompt) -> Iterator[str | Completion]:
        """Text pieces as they come, then one final ``Completion`` (with usage)."""
        ...


# A factory gets the settings and, when one is loaded already, the embedder (the extractive
# client scores sentences with it instead of loading a second model).
Factory = Callable[["Settings", "Embedder | None"], LLM]
_REGISTRY: dict[str, Factory] = {}
# The clients that come with qa, by registry name, and the module that registers each.
BUILTIN = {
    "extractive": "qa.llm.extractive",
    "fake": "qa.llm.fake",
    "local": "qa.llm.local",
    "openai": "qa.llm.openai",
}


def register(name: str) -> Callable[[Factory], Factory]:
    """Decorator: make a client constructible by name (``--llm NAME`` / ``llm.client``)."""

    def wrap(factory: Factory) -> Factory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def available() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create(name: str, settings: Settings, embedder: Embedder | None = None) -> LLM:
    """Build the client registered under ``name``; unknown names get a clear error."""
    if name in BUILTIN:
        # Only the module asked for: a cold extractive ask does not import the openai or
        # llama.cpp clients' modules (an unknown name lists them all, through available()).
        importlib.import_module(BUILTIN[name])
    if name not in _REGISTRY:
        raise QAError(f"unknown model client {name!r}; choose one of: {', '.join(available())}")
    return _REGISTRY[name](settings, embedder)


def _load_builtin() -> None:
    # Imported lazily so that `qa search` never pays for openai or llama.cpp imports.
    for module in BUILTIN.values():
        importlib.import_module(module)
