"""The embeddings client (qa.embedding.remote) over a fake HTTP transport: batching, order,
requests in flight, round-robin, the retry rule and the checks of what comes back. The same
client against a real `qa serve` is in test_embed_service.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx2
import numpy as np
import pytest

from qa.core.config import EmbeddingServiceSettings, EmbeddingSettings, load_settings
from qa.core.types import QAError, UpstreamError
from qa.embedding import create_embedder
from qa.embedding.remote import RemoteEmbedder

DIM = 8
Handler = Callable[[httpx2.Request], httpx2.Response]


def vector_of(text: str) -> list[float]:
    """A vector that says which text it belongs to (not normalised: the client must)."""
    last = text.split()[-1]
    n = int(last) if last.isdigit() else 0
    out = [0.0] * DIM
    out[n % DIM] = 3.0
    out[(n // DIM) % DIM] += 1.0
    return out


def reply(texts: list[str], *, model: str = "m", dim: int = DIM, **extra: Any) -> httpx2.Response:
    data = [
        {"object": "embedding", "index": i, "embedding": vector_of(t)[:dim] + [0.0] * (dim - DIM)}
        for i, t in enumerate(texts)
    ]
    data.reverse()  # the client must order by index, not by position
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
    return httpx2.Response(200, json={**body, **extra})


def error(
    status: int, code: str | None = None, headers: dict[str, str] | None = None
) -> httpx2.Response:
    body = {
        "error": {
            "message": f"scripted {status}",
            "type": code or "error",
            "param": None,
            "code": code,
        }
    }
    return httpx2.Response(status, json=body, headers=headers or {})


class FakeService:
    """Answers with ``reply`` unless a scripted failure is next; records every request."""

    def __init__(self, failures: list[httpx2.Response] | None = None, delay: float = 0.0) -> None:
        self.failures = list(failures or [])
        self.delay = delay
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        with self.lock:
            self.requests.append((str(request.url.host), body))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            failure = self.failures.pop(0) if self.failures else None
        try:
            time.sleep(self.delay)
            return failure or reply(body["input"])
        finally:
            with self.lock:
                self.in_flight -= 1


def embedder(
    handler: Handler, *, urls: tuple[str, ...] = ("http://a.test/v1",), **service: Any
) -> RemoteEmbedder:
    cfg = replace(
        EmbeddingServiceSettings(base_urls=urls, batch_size=3, concurrency=2, max_retries=2),
        **service,
    )
    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    out = RemoteEmbedder(
        EmbeddingSettings(backend="openai", model="m", openai=cfg), http_client=client
    )
    out.retries.sleep = lambda seconds: None  # the waits themselves are tested with chat
    return out


def texts(n: int) -> list[str]:
    return [f"text {i}" for i in range(n)]


def expected(n: int) -> np.ndarray:
    rows = np.asarray([vector_of(t) for t in texts(n)], dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_batches_keep_order_and_rows_are_normalised() -> None:
    service = FakeService(delay=0.02)
    emb = embedder(service)
    out = emb.embed(texts(10))
    assert out.dtype == np.float32 and out.shape == (10, DIM)
    np.testing.assert_allclose(out, expected(10), atol=1e-6)
    sizes = sorted(len(body["input"]) for _, body in service.requests)
    assert sizes == [1, 3, 3, 3]
    assert all(body["model"] == "m" for _, body in service.requests)
    # The client asks for base64 (the openai package's default) and decodes it.
    assert {body.get("encoding_format") for _, body in service.requests} == {"base64"}
    assert (emb.dim, emb.identity) == (DIM, "openai:m")


def test_requests_in_flight_are_bounded_by_concurrency() -> None:
    service = FakeService(delay=0.15)
    started = time.monotonic()
    embedder(service, concurrency=3).embed(texts(18))  # 6 batches
    assert service.most_in_flight == 3
    assert time.monotonic() - started < 6 * 0.15  # not one after another

    serial = FakeService(delay=0.02)
    embedder(serial, concurrency=1).embed(texts(9))
    assert serial.most_in_flight == 1


def test_round_robin_over_base_urls_and_a_retry_goes_to_the_next() -> None:
    service = FakeService()
    urls = ("http://a.test/v1", "http://b.test/v1")
    embedder(service, urls=urls).embed(texts(12))
    hosts = [host for host, _ in service.requests]
    assert sorted(hosts) == ["a.test"] * 2 + ["b.test"] * 2

    single = FakeService()
    emb = embedder(single, urls=urls)
    for i in range(4):  # one text per call, as questions are
        emb.embed([f"text {i}"])
    assert [host for host, _ in single.requests] == ["a.test", "b.test"] * 2

    flaky = FakeService(failures=[error(503)])
    np.testing.assert_allclose(embedder(flaky, urls=urls).embed(texts(2)), expected(2), atol=1e-6)
    assert [host for host, _ in flaky.requests] == ["a.test", "b.test"]


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_429_and_5xx_are_retried_then_succeed(status: int) -> None:
    service = FakeService(failures=[error(status), error(status)])
    out = embedder(service).embed(texts(2))
    np.testing.assert_allclose(out, expected(2), atol=1e-6)
    assert len(service.requests) == 3


def test_retries_run_out_with_a_clear_error() -> None:
    service = FakeService(failures=[error(500) for _ in range(5)])
    with pytest.raises(
        UpstreamError, match=r"failed after 3 attempts: server error \(500\)"
    ) as info:
        embedder(service).embed(texts(2))
    assert "embedding.openai.max_retries" in str(info.value)
    assert len(service.requests) == 3


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ((401, "invalid_api_key"), "rejected the API key \\(401\\)"),
        ((429, "insufficient_quota"), "quota exhausted"),
        ((400, "bad"), "rejected the request \\(400\\)"),
        (
            (404, "model_not_found"),
            "Check embedding.model \\('m'\\) and embedding.openai.base_urls",
        ),
    ],
)
def test_401_quota_and_other_4xx_are_not_retried(failure: tuple[int, str], message: str) -> None:
    service = FakeService(failures=[error(*failure)])
    with pytest.raises(UpstreamError, match=message):
        embedder(service).embed(texts(2))
    assert len(service.requests) == 1
    # The first failure stops a run: batches not yet sent are dropped.
    serial = FakeService(failures=[error(*failure)])
    with pytest.raises(UpstreamError, match=message):
        embedder(serial, concurrency=1).embed(texts(9))
    assert len(serial.requests) == 1


def test_a_service_that_changes_model_or_dimension_is_an_error() -> None:
    calls = iter([reply(texts(3)), reply(["text 3", "text 4", "text 5"], dim=16)])

    def two_dims(request: httpx2.Request) -> httpx2.Response:
        return next(calls)

    with pytest.raises(QAError, match=r"changed model: .*dimension 16.*earlier.*dimension 8"):
        embedder(two_dims, concurrency=1).embed(texts(6))

    answers = iter(["m", "other"])

    def two_models(request: httpx2.Request) -> httpx2.Response:
        return reply(json.loads(request.content)["input"], model=next(answers))

    with pytest.raises(QAError, match=r"'other'.*earlier with model 'm'"):
        embedder(two_models, concurrency=1).embed(texts(6))


def test_wrong_count_or_bad_vectors_are_errors() -> None:
    def short(request: httpx2.Request) -> httpx2.Response:
        return reply(json.loads(request.content)["input"][:-1])

    with pytest.raises(QAError, match="answered 1 vectors for 2 texts"):
        embedder(short).embed(texts(2))

    def empty(request: httpx2.Request) -> httpx2.Response:
        body = {"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        return httpx2.Response(
            200, json={**body, "data": [{"object": "embedding", "index": 0, "embedding": []}]}
        )

    with pytest.raises(QAError, match="bad vectors"):
        embedder(empty).embed(texts(1))


def test_dimension_comes_from_the_service_and_fingerprint_is_the_identity() -> None:
    def wide(request: httpx2.Request) -> httpx2.Response:
        return reply(json.loads(request.content)["input"], dim=12, system_fingerprint="abc123")

    emb = embedder(wide)
    assert emb.dim == 12  # one probe request: nothing assumed
    assert emb.identity == "abc123"
    assert emb.embed([]).shape == (0, 12)


def test_settings_select_and_validate_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    env = {
        "QA_EMBEDDING_BACKEND": "openai",
        "QA_EMBEDDING_OPENAI_BASE_URLS": "http://a:8000/v1, http://b:8000/v1/",
        "QA_EMBEDDING_OPENAI_CONCURRENCY": "8",
    }
    settings = load_settings(path=None, env=env)
    emb = create_embedder(settings.embedding)
    assert isinstance(emb, RemoteEmbedder)
    assert emb.base_urls == ("http://a:8000/v1", "http://b:8000/v1")
    assert emb.concurrency == 8 and emb.batch_size == 64

    with pytest.raises(
        QAError, match=r"embedding\.backend = 'remote' is not one of: local, openai"
    ):
        load_settings(path=None, env={"QA_EMBEDDING_BACKEND": "remote"})
    bad = replace(settings.embedding, openai=replace(settings.embedding.openai, concurrency=0))
    with pytest.raises(QAError, match=r"embedding\.openai\.concurrency must be at least 1"):
        create_embedder(bad)
    monkeypatch.delenv("OPENAI_API_KEY")
    no_urls = replace(settings.embedding, openai=EmbeddingServiceSettings())
    with pytest.raises(QAError, match="No OpenAI key found for the embeddings service"):
        create_embedder(no_urls)


def test_chunk_budgets_use_the_local_tokenizer() -> None:
    emb = embedder(FakeService())
    assert emb.max_tokens == 256
    assert emb.count_tokens(["What did Khrenin say about India?"]) == [9]
