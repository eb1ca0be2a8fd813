"""Embeddings from a service: any OpenAI-compatible ``/v1/embeddings`` (OpenAI, `qa serve`,
Text Embeddings Inference, vLLM, Ollama, llama.cpp) through the official ``openai`` client,
for ``embedding.backend = "openai"``.

Texts go in batches of ``embedding.openai.batch_size``, with up to ``concurrency`` requests in
flight (threads: the work is waiting on sockets), round-robin over ``base_urls`` (a retry goes
to the next URL); the rows come back in the order of the texts, L2-normalised. Failed requests
follow the chat client's retry rule (:mod:`qa.core.service`).

What the index records is what the service said, never what the settings assume: the dimension
of the first response, and as identity the ``system_fingerprint`` a `qa serve` sends (the
fingerprint of its weights, so an index built in-process and one built through `qa serve` with
the same model are interchangeable), else ``openai:<model the service named>``. A service that
answers with another model or dimension than before is an error.

Chunk budgets are counted with the tokenizer of the local model folder (``embedding.path``, the
bundled model by default): exact for a service running that model, an estimate for others.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.core.service import RetryPolicy, api_key
from qa.core.types import QAError
from qa.embedding.base import bundled_model_path, identity_precision

if TYPE_CHECKING:
    import httpx2  # the HTTP library of this openai package

    from qa.core.config import EmbeddingSettings

NO_KEY_MESSAGE = (
    "No OpenAI key found for the embeddings service: set QA_EMBEDDING_API_KEY or OPENAI_API_KEY "
    "(or list your server in embedding.openai.base_urls)"
)
PROBE = "dimension probe"


class RemoteEmbedder:
    """The :class:`qa.embedding.base.Embedder` of an embeddings service; connects on first use.
    Thread-safe: one client per URL, shared by the request threads."""

    def __init__(
        self, settings: EmbeddingSettings, *, http_client: httpx2.Client | None = None
    ) -> None:
        cfg = settings.openai
        for key in ("concurrency", "batch_size"):
            value = getattr(cfg, key)
            if value < 1:
                raise QAError(f"embedding.openai.{key} must be at least 1 (got {value})")
        self.name = settings.model
        self.precision = settings.precision
        self.base_urls = tuple(u.strip().rstrip("/") for u in cfg.base_urls if u.strip())
        self.concurrency = cfg.concurrency
        self.batch_size = cfg.batch_size
        self.timeout = cfg.timeout
        # Its own key when chat (OPENAI_API_KEY) goes to another service, e.g. `qa serve`s
        # expecting their QA_API_KEY.
        own = os.environ.get("QA_EMBEDDING_API_KEY", "").strip()
        self._api_key = own or api_key(",".join(self.base_urls), NO_KEY_MESSAGE)
        self.retries = RetryPolicy(
            section="embedding.openai",
            model=settings.model,
            where=", ".join(self.base_urls) or "api.openai.com",
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
            backoff_base=cfg.backoff_base,
            backoff_max=cfg.backoff_max,
            model_setting="embedding.model",
            url_setting="embedding.openai.base_urls",
        )
        self._http_client = http_client
        self._tokenizer_dir = settings.path
        self._lock = threading.Lock()
        self._clients: list[Any] = []
        self._tokenizer: Any = None
        self._max_tokens = 0
        # Learned from the first response (see the module docstring).
        self._dim = 0
        self._identity = ""
        self._first_answer = ""
        # Where the next call's first batch goes: calls of one text each (questions) are
        # spread over the URLs too.
        self._turns = itertools.count()

    # -- what the index records

    @property
    def dim(self) -> int:
        if not self._dim:
            self.embed([PROBE])
        return self._dim

    @property
    def identity(self) -> str:
        if not self._identity:
            self.embed([PROBE])
        return self._identity

    # -- token budgets, with the local tokenizer

    def _load_tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                from qa.embedding.model_io import load_tokenizer, read_model_config

                folder = Path(self._tokenizer_dir or bundled_model_path())
                if not (folder / "tokenizer.json").is_file():
                    raise QAError(
                        f"no tokenizer.json in {folder}: embedding.path must be a model folder "
                        "whose tokenizer budgets the chunks"
                    )
                _, self._max_tokens = read_model_config(folder)
                self._tokenizer = load_tokenizer(folder, None)
        return self._tokenizer

    @property
    def max_tokens(self) -> int:
        self._load_tokenizer()
        return self._max_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self._load_tokenizer().encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encoded]

    # -- embedding

    def clients(self) -> list[Any]:
        with self._lock:
            if not self._clients:
                import openai

                self._clients = [
                    openai.OpenAI(
                        api_key=self._api_key,
                        base_url=url,
                        timeout=self.timeout,
                        max_retries=0,  # the policy of qa.core.service is the only one
                        http_client=self._http_client,
                    )
                    for url in (self.base_urls or (None,))
                ]
        return self._clients

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = self.batch_size
        batches = [list(texts[i : i + size]) for i in range(0, len(texts), size)]
        first = next(self._turns) * len(batches)
        if len(batches) == 1:
            parts = [self._embed_batch(first, batches[0])]
        else:
            parts = self._embed_concurrently(batches, first)
        return np.vstack(parts)

    def _embed_concurrently(self, batches: list[list[str]], first: int) -> list[np.ndarray]:
        workers = min(self.concurrency, len(batches))
        failed = threading.Event()  # after one failure, batches not yet sent are dropped

        def one(number: int, batch: list[str]) -> np.ndarray | None:
            if failed.is_set():
                return None
            try:
                return self._embed_batch(number, batch)
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(workers, thread_name_prefix="qa-embed") as executor:
            futures = [executor.submit(one, first + i, batch) for i, batch in enumerate(batches)]
            wait(futures, return_when=FIRST_EXCEPTION)
            errors = [f for f in futures if f.done() and f.exception() is not None]
            if errors:
                errors[0].result()  # raises its error (those in flight finish first)
            parts = [future.result() for future in futures]
        return [part for part in parts if part is not None]

    def _embed_batch(self, number: int, texts: list[str]) -> np.ndarray:
        clients = self.clients()
        attempts = itertools.count()

        def call() -> Any:
            # Batches go to the URLs in turn, and each retry to the next URL: a server that
            # is down or overloaded does not hold the batch.
            client = clients[(number + next(attempts)) % len(clients)]
            return client.embeddings.create(model=self.name, input=texts)

        response = self.retries.run(call)
        return self._vectors(response, len(texts))

    def _vectors(self, response: Any, expected: int) -> np.ndarray:
        """The normalised rows of one response, after checking it answers what was asked."""
        data = sorted(getattr(response, "data", None) or [], key=lambda d: d.index)
        if [d.index for d in data] != list(range(expected)):
            raise QAError(
                f"the embeddings service at {self.retries.where} answered {len(data)} vectors "
                f"for {expected} texts"
            )
        try:
            rows = np.asarray([d.embedding for d in data], dtype=np.float32)
        except ValueError:
            raise QAError(
                f"the embeddings service at {self.retries.where} answered vectors of "
                "different lengths in one response"
            ) from None
        if rows.ndim != 2 or rows.shape[1] == 0 or not np.isfinite(rows).all():
            raise QAError(f"the embeddings service at {self.retries.where} answered bad vectors")
        served = str(getattr(response, "model", "") or self.name)
        fingerprint = (getattr(response, "model_extra", None) or {}).get("system_fingerprint")
        identity = str(fingerprint) if fingerprint else f"openai:{served}"
        answer = f"model {served!r} (identity {identity}, dimension {rows.shape[1]})"
        precision = identity_precision(identity)
        if precision and precision != self.precision:  # a `qa serve` says what it runs
            raise QAError(
                f"the embeddings service at {self.retries.where} runs the model at {precision} "
                f"precision, embedding.precision here is {self.precision}: set the same "
                "embedding.precision on both sides"
            )
        with self._lock:
            if not self._dim:
                self._dim, self._identity, self._first_answer = rows.shape[1], identity, answer
            elif (rows.shape[1], identity) != (self._dim, self._identity):
                raise QAError(
                    f"the embeddings service changed model: it answered with {answer}, earlier "
                    f"with {self._first_answer}; every URL of embedding.openai.base_urls must "
                    "serve the same model"
                )
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return (rows / np.clip(norms, 1e-12, None)).astype(np.float32)
