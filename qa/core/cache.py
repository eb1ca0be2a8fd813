"""Where qa keeps what it makes once and reuses (the ONNX export, the verified GGUF model,
tiktoken's encodings): one rule for every cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(name: str, override: str) -> Path:
    """``$<override>`` when set, else ``$XDG_CACHE_HOME/qa/<name>`` (``~/.cache/qa/<name>``);
    ``name`` "" is qa's cache folder itself."""
    explicit = os.environ.get(override)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa" / name if name else Path(base) / "qa"
