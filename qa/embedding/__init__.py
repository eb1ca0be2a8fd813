"""Embedders by name: the settings pick the backend, imported only when chosen, so that
importing ``qa.embedding.base`` (the protocol every stage uses) stays cheap.

Backends: ONNX Runtime on an export of the bundled model (qa/embedding/onnx.py, the default),
sentence-transformers on torch (qa/embedding/sentence_transformer.py), an embeddings service
(qa/embedding/remote.py, ``embedding.backend = "openai"``) and a fake for tests.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from qa.embedding.base import Embedder

if TYPE_CHECKING:
    from qa.core.config import EmbeddingSettings

__all__ = ["Embedder", "create_embedder", "load_in_background"]


def create_embedder(settings: EmbeddingSettings) -> Embedder:
    """The embedder named by the settings: an embeddings service with ``backend = "openai"``
    (qa.embedding.remote); else ``fake`` selects the test embedder, and the model runs here by ONNX
    Runtime or by sentence-transformers as ``runtime`` says."""
    if settings.backend == "openai":
        from qa.embedding.remote import RemoteEmbedder

        return RemoteEmbedder(settings)
    if settings.model == "fake":
        from qa.embedding.fake import FakeEmbedder

        return FakeEmbedder(name="fake")
    if settings.runtime == "onnx":
        from qa.embedding.onnx import OnnxEmbedder

        return OnnxEmbedder(settings)
    from qa.embedding.sentence_transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings)


def load_in_background(settings: EmbeddingSettings) -> Embedder:
    """The embedder of ``settings``, its model already loading in a thread of its own, so that
    a cold `qa ask` or `qa search` imports the rest of qa meanwhile (ONNX Runtime builds its
    session without holding the GIL). Its first use waits for the load and raises the load's
    error, if any (a failed load is not kept). A service's embedder is returned as it is: its
    first call is a request, made when needed."""
    embedder = create_embedder(settings)
    if settings.backend == "local" and settings.model != "fake":

        def load() -> None:
            with contextlib.suppress(Exception):  # raised again where the embedder is used
                embedder.dim  # noqa: B018 - reading it loads the model

        # Not a daemon: every question needs the model, and a thread stopped inside ONNX
        # Runtime's C++ at exit could abort the process.
        threading.Thread(target=load, name="qa-embedder-load").start()
    return embedder
