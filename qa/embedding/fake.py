"""A fast fake embedder for tests: no model is loaded."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np


class FakeEmbedder:
    """Deterministic bag-of-words vectors from hashed, lower-cased words.

    Texts that share words get similar vectors, so retrieval tests behave sensibly, and no
    model is loaded. A word is one token, mirroring the real tokenizer closely enough for tests.
    """

    def __init__(self, name: str = "fake-embedder", dim: int = 64, max_tokens: int = 256) -> None:
        self.name = name
        self.dim = dim
        self.max_tokens = max_tokens
        self.identity = f"{name}:{dim}"
        self.calls: list[int] = []  # batch sizes, so tests can check what was (re)embedded

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dim] += 1.0
            norm = float(np.linalg.norm(out[row]))
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(re.findall(r"\w+|[^\w\s]", text)) for text in texts]
