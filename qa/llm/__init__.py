"""Model clients behind one protocol, chosen by name."""

from qa.llm.base import LLM, available, create, register

__all__ = ["LLM", "available", "create", "register"]
