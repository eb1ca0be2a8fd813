"""all-MiniLM-L6-v2 run by ONNX Runtime and the `tokenizers` library: the vectors of
sentence-transformers without importing torch, so `qa ask` starts in about a second.

The ONNX file is exported from the sentence-transformers model folder once (torch is needed
only then: at `qa ingest`, or at the first question if no ingest ran since the model changed)
into a cache folder named by a fingerprint of the model's files (names, sizes, modification
times) and ``EXPORT_VERSION``: a changed model gets a new export and a stale one is never read.
The export is checked against the torch model on sample texts before it is published, and is
written under a temporary name and renamed, so a reader never sees half a file. ONNX Runtime's
optimised graph is saved beside it the same way (see :func:`ensure_optimized`).

Pooling follows the model's ``1_Pooling/config.json`` as sentence-transformers does: the mean
of the token embeddings over real (unpadded) tokens, then L2 normalisation. Inputs are cut at
``max_seq_length`` word pieces (``sentence_bert_config.json``), special tokens included.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.core.cache import cache_dir
from qa.core.cores import free_cores
from qa.core.extras import require
from qa.core.locks import folder_lock
from qa.core.types import QAError
from qa.embedding.base import bundled_model_path, model_fingerprint, precision_identity
from qa.embedding.model_io import (
    INPUTS,
    VERIFY_TEXTS,
    encode,
    load_tokenizer,
    mean_pool,
    pad,
    read_model_config,
)

if TYPE_CHECKING:
    from qa.core.config import EmbeddingSettings

# Bump when the export itself changes (inputs, opset, attention kernel): old files are ignored.
EXPORT_VERSION = 1
OPSET = 17
# The export is refused unless it reproduces the torch model this closely on VERIFY_TEXTS.
VERIFY_COSINE = 0.9999
# How long the load watches what other processes use before choosing its threads: it runs in a
# thread of its own while a cold `qa ask` imports the rest (see qa.embedding.load_in_background).
LOAD_SAMPLE_S = 0.1
# Padded word pieces per batch (see ``batches``); measured on a question's sentences and on chunks.
TOKEN_BUDGET = 512
# Files whose change changes the vectors; the weights file is whichever of these exists.
MODEL_FILES = (
    "config.json",
    "tokenizer.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
    "model.safetensors",
    "pytorch_model.bin",
)


def cache_root() -> Path:
    """Where exports live: ``$QA_CACHE_DIR``, else ``$XDG_CACHE_HOME/qa``, else ``~/.cache/qa``."""
    return cache_dir("", "QA_CACHE_DIR")


def fingerprint(model_dir: Path) -> str:
    """A key that changes whenever a file the vectors depend on changes (cheap: stat only)."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION} {model_dir.resolve()}".encode())
    for name in MODEL_FILES:
        path = model_dir / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"|{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def ensure_export(model_dir: Path) -> Path:
    """The ONNX file of ``model_dir``, exported now if the cache has no current one."""
    folder = cache_root() / "onnx" / fingerprint(model_dir)
    target = folder / "model.onnx"
    if target.is_file():
        return target
    try:
        # Two processes starting at once (a server and a CLI) must not both export.
        with folder_lock(folder):
            if not target.is_file():  # another process may have finished it meanwhile
                export(model_dir, target)
    except OSError as exc:
        raise QAError(f"cannot write the ONNX export to {folder}: {exc}") from None
    return target


def ensure_optimized(onnx_file: Path, model_dir: Path) -> Path:
    """``onnx_file`` optimised by ONNX Runtime and saved beside it once, its weights in a file
    of their own that ONNX Runtime maps into memory instead of copying: a session is then made
    in a third of the time, and peaks ~35 MB lower. "Extended" optimisations only, which do not
    depend on the CPU they ran on; the files are named by the ONNX Runtime version, whose fused
    operators they hold. Built with ONNX Runtime alone (no torch), checked against the plain
    graph on VERIFY_TEXTS, the graph published last (atomically). When that fails (a graph
    that differs, a folder that cannot be written), the plain graph is used as before."""
    import onnxruntime as ort

    target = onnx_file.with_name(f"model.opt-ort{ort.__version__}.onnx")
    if target.is_file():
        return target
    try:
        with folder_lock(onnx_file.parent):
            if not target.is_file():
                _optimize(onnx_file, model_dir, target)
    except (OSError, QAError) as exc:
        logging.getLogger("qa").warning("using the plain ONNX graph: %s", exc)
        return onnx_file
    return target


def _optimize(onnx_file: Path, model_dir: Path, target: Path) -> None:
    import onnxruntime as ort

    _, max_tokens = read_model_config(model_dir)
    sample = encode(load_tokenizer(model_dir, max_tokens), VERIFY_TEXTS)
    plain = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    expected = mean_pool(plain.run(None, sample)[0], sample["attention_mask"])
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    weights = target.with_suffix(".data")  # the graph names it
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(partial)
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", weights.name
        )
        ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        optimized = ort.InferenceSession(str(partial), options, providers=["CPUExecutionProvider"])
        got = mean_pool(optimized.run(None, sample)[0], sample["attention_mask"])
        worst = float((got * expected).sum(axis=1).min())
        if worst < VERIFY_COSINE:
            raise QAError(f"the optimised ONNX graph differs from {onnx_file} (cosine {worst:.6f})")
        for path in (weights, partial):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        if not target.is_file():
            weights.unlink(missing_ok=True)


def export(model_dir: Path, target: Path) -> None:
    """Export the transformer of ``model_dir`` to ``target`` (fp32, dynamic batch and length),
    check it against torch, then publish it atomically."""
    import warnings

    require("export", "exporting the embedding model to ONNX (once, then cached)")
    try:
        import onnx  # noqa: F401 - torch.onnx writes the file with it
    except ImportError:
        raise QAError("exporting the model to ONNX needs onnx: pip install onnx") from None
    import onnxruntime as ort
    import torch
    import transformers
    from transformers import AutoModel

    _, max_tokens = read_model_config(model_dir)
    transformers.utils.logging.disable_progress_bar()
    # Eager attention exports as plain MatMul/Softmax, which ONNX Runtime fuses.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    tokenizer = load_tokenizer(model_dir, max_tokens)
    sample = encode(tokenizer, VERIFY_TEXTS)
    args = tuple(torch.from_numpy(sample[name]) for name in INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "token_embeddings")}
    wrapped = TokenEmbeddings(model)
    with torch.no_grad():
        # Before exporting: after tracing, this transformers version's eager forward pass
        # returns other values (the exported graph is right; tests compare it with
        # sentence-transformers).
        expected = mean_pool(wrapped(*args).numpy(), sample["attention_mask"])
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                wrapped,
                args,
                str(partial),
                dynamo=False,  # the dynamo exporter needs onnxscript, which is not installed
                input_names=list(INPUTS),
                output_names=["token_embeddings"],
                dynamic_axes=axes,
                opset_version=OPSET,
            )
        session = ort.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
        got = mean_pool(session.run(None, sample)[0], sample["attention_mask"])
        worst = float((got * expected).sum(axis=1).min())
        if worst < VERIFY_COSINE:
            raise QAError(
                f"the ONNX export of {model_dir} differs from torch (cosine {worst:.6f}); "
                'set embedding.runtime = "torch"'
            )
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def batches(order: Sequence[int], lengths: Sequence[int], size: int) -> Iterator[list[int]]:
    """``order`` (longest first) cut into batches of at most ``size`` texts whose padded size
    stays within TOKEN_BUDGET: every text costs as much as the longest of its batch, so a
    question's two dozen sentences go in several small batches rather than one wide one."""
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) == size or (len(batch) + 1) * lengths[batch[0]] > TOKEN_BUDGET):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


class OnnxEmbedder:
    """The sentence-transformers model through ONNX Runtime; same name, dimension and vectors
    (cosine >= 0.9999, see tests/embedding/test_embed_onnx.py), so either runtime reads the
    other's index. Loads on first use, once, thread-safely."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.name = settings.model
        self.path = settings.path or ""
        self.batch_size = settings.batch_size
        self.precision = settings.precision  # "fp32" or "int8" (qa.embedding.int8)
        # Read from the model when it loads: what the index records is what was loaded.
        self._dim = 0
        self._max_tokens = 0
        self._identity = ""
        self._model_dir = Path()
        self.graph = Path()  # the ONNX file loaded (optimised, or the plain export)
        # 0: the cores other processes leave free when the model loads. A question on an idle
        # 2-core machine: 7.6 ms with one thread, 4.9 ms with two; on a busy one a second
        # thread waits for a core and slows every step. Concurrent server requests still run
        # in parallel (a session may run in many threads).
        self.threads = settings.threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._counter: Any = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime as ort
                except ImportError:
                    raise QAError(
                        "the onnx embedding runtime needs onnxruntime: pip install onnxruntime "
                        '(or set embedding.runtime = "torch")'
                    ) from None

                model_dir = Path(self.path or bundled_model_path())
                if not model_dir.is_dir():
                    raise QAError(f"embedding model folder not found: {model_dir}")
                self._dim, self._max_tokens = read_model_config(model_dir)
                self._model_dir = model_dir
                plain = ensure_export(model_dir)
                if self.precision == "int8":
                    from qa.embedding.int8 import ensure_int8

                    self.graph = ensure_int8(plain, model_dir)
                else:
                    self.graph = ensure_optimized(plain, model_dir)
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads or free_cores(LOAD_SAMPLE_S)
                options.inter_op_num_threads = 1
                if self.graph.name.startswith("model.opt-"):  # optimising it again: start-up time
                    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                self._tokenizer = load_tokenizer(model_dir, self._max_tokens)
                self._session = ort.InferenceSession(
                    str(self.graph), options, providers=["CPUExecutionProvider"]
                )
        return self._session, self._tokenizer

    @property
    def dim(self) -> int:
        self._load()
        return self._dim

    @property
    def max_tokens(self) -> int:
        self._load()
        return self._max_tokens

    @property
    def identity(self) -> str:
        """A fingerprint of the model folder's weights (see
        :func:`qa.embedding.base.model_fingerprint`),
        the same as the torch runtime's, so either reads the other's index; int8 weights add
        ``+int8`` (other vectors: an index of one is refused by the other). Computed when asked
        (by a writer), not on every load: it reads the weight files."""
        self._load()
        if not self._identity:
            self._identity = precision_identity(
                model_fingerprint(str(self._model_dir)), self.precision
            )
        return self._identity

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        session, tokenizer = self._load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        for rows in batches(order, [len(e.ids) for e in encodings], self.batch_size):
            inputs = pad([encodings[i] for i in rows])
            (tokens,) = session.run(None, inputs)
            out[rows] = mean_pool(tokens, inputs["attention_mask"])
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        self._load()
        with self._lock:
            if self._counter is None:  # only ingests count: not loaded for a question
                self._counter = load_tokenizer(self._model_dir, None)
        return [
            len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)
        ]
