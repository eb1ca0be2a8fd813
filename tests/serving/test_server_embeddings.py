"""``POST /v1/embeddings`` of `qa serve` on loopback: the OpenAI shape (float and base64), the
input limits, the guards every /v1 route has, and the bounded worker slots. The fast fake
embedder stands in for the model here; test_embed_service.py runs the real one."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from server_helpers import SECRET, assert_error

from qa.answering.assistant import Assistant
from qa.core.config import Settings
from qa.embedding.fake import FakeEmbedder
from qa.llm.fake import FakeLLM
from qa.serving.app import create_app, serve_in_thread

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class SlowEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__(name=MODEL)
        self.delay = 0.0

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        time.sleep(self.delay)
        return super().embed(texts)


def settings(root: Path, **server: Any) -> Settings:
    base = Settings()
    limits = {
        "max_embedding_inputs": 4,
        "max_embedding_chars": 50,
        "max_embedding_body_bytes": 2000,
        "max_concurrent_answers": 1,
        **server,
    }
    return replace(
        base,
        paths=replace(base.paths, index=root / "no-index"),
        server=replace(base.server, **limits),
    )


@pytest.fixture(scope="module")
def embedder() -> SlowEmbedder:
    return SlowEmbedder()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, embedder: SlowEmbedder) -> Iterator[str]:
    assistant = Assistant(
        settings(tmp_path_factory.mktemp("emb")), embedder=embedder, llm=FakeLLM()
    )
    with serve_in_thread(create_app(assistant, answer_wait=0.3)) as base:
        yield base


def post(url: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json=body, headers=headers, timeout=30)


def test_float_and_base64_shapes(url: str, embedder: SlowEmbedder) -> None:
    texts = ["Khrenin spoke about India", "a second text"]
    plain = post(url, {"input": texts, "model": MODEL})
    assert plain.status_code == 200, plain.text
    body = plain.json()
    assert body["object"] == "list" and body["model"] == MODEL
    assert body["system_fingerprint"] == embedder.identity
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == 7
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    expected = embedder.embed(texts)
    got = np.asarray([d["embedding"] for d in body["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-6)

    packed = post(url, {"input": texts[0], "encoding_format": "base64"}).json()
    [row] = packed["data"]
    decoded = np.frombuffer(base64.b64decode(row["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, expected[0])


def test_the_openai_client_reads_it(url: str, embedder: SlowEmbedder) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    response = client.embeddings.create(model=MODEL, input=["one text", "two texts"])
    got = np.asarray([d.embedding for d in response.data], dtype=np.float32)
    np.testing.assert_allclose(got, embedder.embed(["one text", "two texts"]), atol=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"input": ["a"] * 5}, 400, "input", "at most 4 per request"),
        ({"input": ["ok", "x" * 51]}, 400, "input[1]", "at most 50 (server.max_embedding_chars)"),
        ({"input": ["ok", "  "]}, 400, "input[1]", "is empty"),
        ({"input": []}, 400, "input", "send at least one text"),
        ({"input": [[1, 2, 3]]}, 400, "input", "token arrays are not read"),
        ({"input": 5}, 400, "input", "must be a string or a list of strings"),
        ({}, 400, "input", "missing required parameter"),
        ({"input": "a", "encoding_format": "int8"}, 400, "encoding_format", "float"),
        ({"input": "a", "model": "text-embedding-3-small"}, 404, "model", MODEL),
        ({"input": "a", "dimensions": 32}, 400, "dimensions", "must be 64"),
        ({"input": ["x" * 40] * 60}, 413, None, "server.max_embedding_body_bytes"),
    ],
)
def test_bad_requests_get_clear_errors(
    url: str, body: Any, status: int, param: str | None, words: str
) -> None:
    error = assert_error(post(url, body), status, param)
    assert words in error["message"]


def test_same_guards_as_other_routes(tmp_path: Path, embedder: SlowEmbedder) -> None:
    assistant = Assistant(settings(tmp_path), embedder=embedder, llm=FakeLLM())
    with serve_in_thread(create_app(assistant, api_key=SECRET)) as base:
        assert_error(post(base, {"input": "a"}), 401)
        assert post(base, {"input": "a"}, Authorization=f"Bearer {SECRET}").status_code == 200
        auth = {"Authorization": f"Bearer {SECRET}"}
        assert_error(post(base, {"input": "a"}, Origin="https://evil.example", **auth), 403)
        raw = httpx.post(
            f"{base}/v1/embeddings",
            content=b'{"input": "a"}',
            headers={"Content-Type": "text/plain", **auth},
        )
        assert_error(raw, 415)
        rebound = httpx.post(
            f"{base}/v1/embeddings", json={"input": "a"}, headers={"Host": "evil.example", **auth}
        )
        assert rebound.status_code == 400


def test_work_runs_off_the_event_loop_and_is_bounded(url: str, embedder: SlowEmbedder) -> None:
    """One slot (server.max_concurrent_answers = 1): a second request waits up to 0.3 s, then
    gets 503 with Retry-After, which clients retry; the loop keeps answering meanwhile."""
    embedder.delay = 1.0
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(post(url, {"input": "slow"})))
    try:
        first.start()
        time.sleep(0.2)
        started = time.monotonic()
        health = httpx.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 503  # no index: answered, and at once
        assert time.monotonic() - started < 0.5
        busy = post(url, {"input": "second"})
        error = assert_error(busy, 503)
        assert error["code"] == "server_busy" and busy.headers["retry-after"] == "1"
        first.join()
    finally:
        embedder.delay = 0.0
    assert results[0].status_code == 200
