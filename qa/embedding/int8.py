"""int8 weights for the ONNX embedder (``embedding.precision = "int8"``).

Made from the fp32 export of the same model (qa.embedding.onnx) by ONNX Runtime's dynamic
quantisation, with ONNX Runtime alone (no torch), once, into the same cache folder; checked
against the fp32 graph on sample texts before it is published (written under a temporary name
and renamed). Its size and sha256 are recorded beside it (``<file>.json``) and checked before
a process first uses it: the full hash only when the file's size or modification time changed
since it was recorded (hashing 23 MB on every cold `qa ask` would cost ~40 ms), as
qa.llm.gguf does for the GGUF files.

The recipe was chosen by retrieval on the gold set (bench/bench_precision.py), not by cosine:
per-channel int8 weights of every MatMul and of the word-embedding table (Gather). Per-tensor
weights lose far more (cosine ~0.92 on news passages against ~0.99 per channel).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from qa.core.locks import folder_lock
from qa.core.types import QAError

# name -> quantize_dynamic keyword arguments; RECIPE is the one used. The file is named by the
# recipe, so a changed recipe makes a new file and an old one is never read.
RECIPES: dict[str, dict[str, Any]] = {
    "pc-all": {"per_channel": True},  # MatMul and Gather, per channel: 23 MB
    "pc-matmul": {"per_channel": True, "op_types_to_quantize": ["MatMul"]},  # 59 MB
    "pt-matmul": {"per_channel": False, "op_types_to_quantize": ["MatMul"]},
}
RECIPE = "pc-all"
# The int8 graph is refused unless each sample text's vector is at least this close to the
# fp32 one. Measured: 0.9906 the lowest over 16 news passages and the sample texts with
# "pc-all"; per-tensor weights give ~0.92 and are caught by it.
INT8_COSINE = 0.98
CHUNK = 1 << 20


def int8_path(plain: Path, recipe: str | None = None) -> Path:
    return plain.with_name(f"model.int8-{recipe or RECIPE}.onnx")


def ensure_int8(plain: Path, model_dir: Path, recipe: str | None = None) -> Path:
    """The int8 graph made from the fp32 export ``plain`` with ``recipe`` (default RECIPE,
    read at the call), made now if missing; its checksum verified (see the module's
    docstring)."""
    recipe = recipe or RECIPE
    target = int8_path(plain, recipe)
    try:
        if not target.is_file():
            with folder_lock(plain.parent):  # one maker at a time (a server and a CLI)
                if not target.is_file():
                    _quantize(plain, model_dir, target, recipe)
        verify(target)
    except OSError as exc:
        raise QAError(f"cannot make the int8 model in {plain.parent}: {exc}") from None
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _record_path(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def verify(target: Path) -> None:
    """Raise QAError when ``target`` is not the file its record describes."""
    try:
        record = json.loads(_record_path(target).read_text("utf-8"))
        wanted, size = str(record["sha256"]), int(record["size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QAError(
            f"the int8 model {target} has no valid record ({exc}): delete {target} to remake it"
        ) from None
    stat = target.stat()
    if stat.st_size == size and stat.st_mtime_ns == record.get("mtime_ns"):
        return
    got = _sha256(target)
    if stat.st_size != size or got != wanted:
        raise QAError(
            f"the int8 model {target} changed since it was made (sha256 {got}, recorded "
            f"{wanted}): delete it to remake it"
        )
    record["mtime_ns"] = stat.st_mtime_ns  # same bytes, touched: hash once, not every start
    _write_record(target, record)


def _write_record(target: Path, record: dict[str, Any]) -> None:
    partial = _record_path(target).with_name(f".{target.name}.json.{os.getpid()}.tmp")
    partial.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(partial, _record_path(target))


def _quantize(plain: Path, model_dir: Path, target: Path, recipe: str) -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from qa.embedding.model_io import (
        VERIFY_TEXTS,
        encode,
        load_tokenizer,
        mean_pool,
        read_model_config,
    )

    if recipe not in RECIPES:
        raise QAError(f"unknown int8 recipe {recipe!r}; one of: {', '.join(RECIPES)}")
    _, max_tokens = read_model_config(model_dir)
    sample = encode(load_tokenizer(model_dir, max_tokens), VERIFY_TEXTS)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        # "Please consider pre-processing" is printed on every call: it is about shape
        # inference, which the exported graph already has.
        logging.getLogger().disabled, was = True, logging.getLogger().disabled
        try:
            quantize_dynamic(
                str(plain), str(partial), weight_type=QuantType.QInt8, **RECIPES[recipe]
            )
        finally:
            logging.getLogger().disabled = was
        sessions = [
            ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
            for p in (plain, partial)
        ]
        fp32, int8 = (mean_pool(s.run(None, sample)[0], sample["attention_mask"]) for s in sessions)
        worst = float((fp32 * int8).sum(axis=1).min())
        if worst < INT8_COSINE or not np.isfinite(worst):
            raise QAError(
                f"the int8 model differs too much from fp32 (cosine {worst:.4f} < "
                f'{INT8_COSINE}): set embedding.precision = "fp32"'
            )
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        stat = partial.stat()
        _write_record(
            target,
            {
                "sha256": _sha256(partial),
                "size": stat.st_size,
                "recipe": recipe,
                "onnxruntime": ort.__version__,
                "cosine_min": round(worst, 6),
                "made_from": plain.name,
            },
        )
        os.replace(partial, target)  # the mtime survives the rename
        record = json.loads(_record_path(target).read_text("utf-8"))
        record["mtime_ns"] = target.stat().st_mtime_ns
        _write_record(target, record)
    finally:
        partial.unlink(missing_ok=True)
