"""The embedding model run by sentence-transformers on torch (``embedding.runtime = "torch"``);
questions and ingest use ONNX Runtime by default (qa/embedding/onnx.py)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.core.extras import require
from qa.core.types import QAError
from qa.embedding.base import bundled_model_path, model_fingerprint

if TYPE_CHECKING:
    from qa.core.config import EmbeddingSettings


class SentenceTransformerEmbedder:
    """sentence-transformers on the CPU; the model loads on first use, once, thread-safely."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.name = settings.model
        self.path = settings.path or ""
        self.batch_size = settings.batch_size
        self.device = settings.device
        self._dim = 0
        self._max_tokens = 0
        self._identity = ""
        self._model: Any = None
        self._lock = threading.Lock()

    # What the index records and checks is what was loaded, not what the settings say: a
    # 768-dimensional model (or other weights under the same name) must never mix with an index
    # of another model. Reading these loads the model.

    @property
    def dim(self) -> int:
        self.model  # noqa: B018
        return self._dim

    @property
    def max_tokens(self) -> int:
        self.model  # noqa: B018
        return self._max_tokens

    @property
    def identity(self) -> str:
        """A fingerprint of the loaded weights (see :func:`model_fingerprint`)."""
        self.model  # noqa: B018
        return self._identity

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                require("export", 'embedding.runtime = "torch"')
                import transformers
                from sentence_transformers import SentenceTransformer

                # The weight-loading bar would clutter every `qa ask`.
                transformers.utils.logging.disable_progress_bar()

                path = self.path or bundled_model_path()
                if not os.path.isdir(path):
                    raise QAError(f"embedding model folder not found: {path}")
                self._model = SentenceTransformer(path, device=self.device)
                self._dim = int(self._model.get_embedding_dimension())
                self._max_tokens = int(self._model.max_seq_length)
                self._identity = model_fingerprint(path)
        return self._model

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        # verbose=False: counting a long sentence (before the chunker cuts it) is not an error.
        encoded = self.model.tokenizer(list(texts), add_special_tokens=False, verbose=False)[
            "input_ids"
        ]
        return [len(ids) for ids in encoded]
