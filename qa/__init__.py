"""qa: question answering over news articles, with checked citations.

from qa import Assistant
assistant = Assistant.from_config()
answer = assistant.ask("What did Khrenin say about India?")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa.answering.assistant import Assistant
    from qa.core.types import Answer, Citation, Hit

__all__ = ["Answer", "Assistant", "Citation", "Hit"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `import qa` (and so `qa --help`) must not pay for faiss and torch.
    if name == "Assistant":
        from qa.answering.assistant import Assistant

        return Assistant
    if name in ("Answer", "Citation", "Hit"):
        from qa.core import types

        return getattr(types, name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
