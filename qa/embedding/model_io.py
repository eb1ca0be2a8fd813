"""The model folder and the tensors: its sentence-transformers config, its tokenizer, the
inputs of the exported graph and the pooled vectors out. Shared by the ONNX export and embedder
(onnx.py), the int8 weights (int8.py) and the embeddings client's token counts (remote.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.core.types import QAError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Texts an export (or int8 weights) must reproduce the model on before it is used.
VERIFY_TEXTS = (
    "What did Khrenin say about India?",
    "The ministers met in Qingdao on June 26, 2025, and discussed military cooperation.",
    "short",
    " ".join(["A very long passage that runs past the model's limit."] * 40),
)


def read_model_config(model_dir: Path) -> tuple[int, int]:
    """(dimension, max word pieces) of a mean-pooled sentence-transformers model folder."""
    try:
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text("utf-8"))
        st_config = json.loads((model_dir / "sentence_bert_config.json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise QAError(f"{model_dir} is not a sentence-transformers model folder: {exc}") from None
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
    if modes != ["pooling_mode_mean_tokens"]:
        raise QAError(
            f"the onnx embedding runtime supports mean pooling only; {model_dir} uses "
            f'{", ".join(modes) or "none"}: set embedding.runtime = "torch"'
        )
    return int(pooling["word_embedding_dimension"]), int(st_config["max_seq_length"])


def mean_pool(token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling and Normalize module, in numpy."""
    mask = attention_mask[..., None].astype(np.float32)
    summed = (token_embeddings * mask).sum(axis=1)
    pooled = summed / np.clip(mask.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def load_tokenizer(model_dir: Path, max_tokens: int | None) -> Any:
    """The model's fast tokenizer, not padding, and with ``max_tokens`` truncating there
    (tokenizer.json itself says 128 and fixed padding; the sentence-transformers config of
    the model overrides both)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    if max_tokens is not None:
        tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def encode(tokenizer: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The three int64 inputs of the exported graph for a batch of texts."""
    return pad([e for e in tokenizer.encode_batch(list(texts))])


def pad(encodings: Sequence[Any]) -> dict[str, np.ndarray]:
    """Unpadded encodings as one batch, padded to the longest (id 0, mask 0, type 0)."""
    width = max(len(e.ids) for e in encodings)
    batch = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in INPUTS}
    for row, e in enumerate(encodings):
        n = len(e.ids)
        batch["input_ids"][row, :n] = e.ids
        batch["attention_mask"][row, :n] = e.attention_mask
        batch["token_type_ids"][row, :n] = e.type_ids
    return batch
