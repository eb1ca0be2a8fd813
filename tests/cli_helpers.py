"""What the CLI tests share: a project config with the fake embedder and small chunks, and
a clean environment with wide consoles."""

from __future__ import annotations

import os

import pytest

import qa.cli

# A project of its own: corpus/ and an index beside it, the fake embedder (no model to load).
SMALL_FAKE_CONFIG = """
[paths]
corpus = "corpus"
index = "idx"

[embedding]
model = "fake"

[chunking]
max_tokens = 60
overlap_tokens = 15

[retrieval]
min_dense_score = 0.0
"""


def clean_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """No QA_* variables from the caller's shell, and consoles wide enough that a message
    naming a long temporary path stays on one line."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(qa.cli.err, "width", 1000)
    monkeypatch.setattr(qa.cli.out, "width", 1000)
