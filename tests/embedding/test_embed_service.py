"""The embeddings client against a real `qa serve` on loopback with the bundled model: the same
vectors as in-process, a whole `qa ingest` + `qa ask` with ``embedding.backend = "openai"``,
the retry rule on 429 and 5xx (a wrapper fails the first requests), a rejected key not retried,
and an index of another dimension refused with the usual clear error."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS
from server_helpers import HEADLINE, SECRET
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner

import qa.cli
from qa.answering.assistant import Assistant
from qa.cli import app as cli_app
from qa.core.config import EmbeddingServiceSettings, Settings
from qa.core.types import QAError, UpstreamError
from qa.embedding import create_embedder
from qa.embedding.base import Embedder, embedder_identity
from qa.embedding.fake import FakeEmbedder
from qa.embedding.remote import RemoteEmbedder
from qa.index import sync
from qa.ingest import read_paths
from qa.llm.fake import FakeLLM
from qa.serving.app import create_app, serve_in_thread

pytestmark = pytest.mark.slow  # the real embedding model
MODEL = Settings().embedding.model


class Flaky:
    """`qa serve`'s app, failing the first requests to /v1/embeddings with the statuses given
    (a rate limit, a server error), and counting the requests that reach it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.failures: list[int] = []
        self.requests = 0
        self.url = ""  # where it is served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/embeddings":
            self.requests += 1
            if self.failures:
                status = self.failures.pop(0)
                body = json.dumps({"error": {"message": f"scripted {status}", "type": "x"}})
                headers = [(b"content-type", b"application/json")]
                if status == 429:
                    headers.append((b"retry-after", b"0"))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def local() -> Embedder:
    return create_embedder(Settings().embedding)


def server_settings(root: Path) -> Settings:
    base = Settings()
    return replace(base, paths=replace(base.paths, index=root / "server-index"))


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory, local: Embedder) -> Iterator[Flaky]:
    assistant = Assistant(
        server_settings(tmp_path_factory.mktemp("srv")), embedder=local, llm=FakeLLM()
    )
    wrapper = Flaky(create_app(assistant))
    with serve_in_thread(wrapper) as base:
        wrapper.url = base
        yield wrapper


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(qa.cli.err, "width", 1000)


def remote(*urls: str, **service: Any) -> RemoteEmbedder:
    base = Settings().embedding
    cfg = replace(
        EmbeddingServiceSettings(base_urls=urls, batch_size=8, concurrency=2, backoff_base=0.05),
        **service,
    )
    return RemoteEmbedder(replace(base, backend="openai", openai=cfg))


def passages(n: int) -> list[str]:
    docs = read_paths([CORPUS]).documents
    sentences = [s.strip() for d in docs for s in d.text.split(". ") if len(s.strip()) > 20]
    return sentences[:n]


def test_vectors_equal_the_local_embedders(flaky: Flaky, local: Embedder) -> None:
    texts = passages(40)
    assert len(texts) == 40
    emb = remote(f"{flaky.url}/v1")
    got = emb.embed(texts)
    want = local.embed(texts)
    assert got.shape == want.shape == (40, 384)
    assert float((got * want).sum(axis=1).min()) >= 0.9999
    # The weights' fingerprint comes back from the server: an index built either way is the
    # same to the other.
    assert emb.identity == embedder_identity(local) != ""
    assert emb.dim == local.dim == 384


def test_429_and_5xx_are_retried_then_succeed(flaky: Flaky, local: Embedder) -> None:
    flaky.failures, flaky.requests = [429, 503, 500], 0
    emb = remote(f"{flaky.url}/v1", concurrency=1)
    got = emb.embed(["What did Khrenin say about India?"])
    assert flaky.requests == 4 and not flaky.failures
    assert float(got[0] @ local.embed(["What did Khrenin say about India?"])[0]) >= 0.9999

    flaky.failures, flaky.requests = [502] * 3, 0
    with pytest.raises(UpstreamError, match=r"failed after 2 attempts: server error \(502\)"):
        remote(f"{flaky.url}/v1", max_retries=1).embed(["a question"])
    assert flaky.requests == 2
    flaky.failures = []


def test_a_rejected_key_is_not_retried(
    tmp_path: Path, local: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assistant = Assistant(server_settings(tmp_path), embedder=local, llm=FakeLLM())
    guarded = Flaky(create_app(assistant, api_key=SECRET))
    with serve_in_thread(guarded) as base:
        monkeypatch.setenv("OPENAI_API_KEY", "wrong")
        with pytest.raises(UpstreamError, match=r"rejected the API key \(401\)"):
            remote(f"{base}/v1").embed(["a question"])
        assert guarded.requests == 1
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        assert remote(f"{base}/v1").embed(["a question"]).shape == (1, 384)
        # Chat's key for OpenAI, the servers' own key for embeddings.
        monkeypatch.setenv("OPENAI_API_KEY", "sk-for-chat")
        monkeypatch.setenv("QA_EMBEDDING_API_KEY", SECRET)
        assert remote(f"{base}/v1").embed(["a question"]).shape == (1, 384)


def write_config(folder: Path, url: str) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f"""
[paths]
index = "idx"

[embedding]
backend = "openai"

[embedding.openai]
base_urls = ["{url}/v1"]
concurrency = 2
batch_size = 16
backoff_base = 0.05
""",
        encoding="utf-8",
    )
    return path


def run(*args: Any) -> Any:
    return CliRunner().invoke(cli_app, [str(a) for a in args])


def test_ingest_and_ask_through_the_service(
    flaky: Flaky, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path, flaky.url)
    flaky.requests = 0
    ingest = run("ingest", CORPUS, "--config", cfg, "--json")
    assert ingest.exit_code == 0, ingest.output
    report = json.loads(ingest.stdout)
    assert report["added"] == 5 and report["chunks_embedded"] == report["chunks"] > 5
    assert flaky.requests >= report["chunks"] / 16  # the chunks went to the server

    status = json.loads(run("status", "--config", cfg, "--json").stdout)
    assert status["build"]["embedding_model"] == MODEL
    assert status["build"]["dim"] == 384
    assert status["build"]["model_fingerprint"] == embedder_identity(
        create_embedder(Settings().embedding)
    )

    before = flaky.requests
    asked = run("ask", HEADLINE, "--config", cfg, "--json")
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout)
    assert answer["answered"] and answer["citations"]
    assert "Khrenin" in answer["answer"] or "India" in answer["answer"]
    assert flaky.requests > before  # the question was embedded by the service too

    # The same index read with the model in-process: same vectors, same passages.
    monkeypatch.setenv("QA_EMBEDDING_BACKEND", "local")
    local_answer = json.loads(run("ask", HEADLINE, "--config", cfg, "--json").stdout)
    assert [c["chunk_id"] for c in local_answer["citations"]] == [
        c["chunk_id"] for c in answer["citations"]
    ]


def test_an_index_of_another_dimension_is_refused(flaky: Flaky, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, flaky.url)
    settings = replace(Settings(), paths=replace(Settings().paths, index=tmp_path / "idx"))
    other = FakeEmbedder(name=MODEL, dim=64)  # same name, 64 dimensions
    sync(settings.index_dir, read_paths([CORPUS]).documents, other, settings)
    for args in (["ingest", CORPUS], ["ask", HEADLINE], ["search", HEADLINE]):
        result = run(*args, "--config", cfg)
        assert result.exit_code == 1, result.output
        message = " ".join(result.stderr.split())
        assert "dim: index has 64, settings say 384" in message
        assert "qa ingest --rebuild" in message
        assert "Traceback" not in result.output


def test_a_model_the_server_does_not_have_is_a_clear_error(flaky: Flaky) -> None:
    base = Settings().embedding
    cfg = EmbeddingServiceSettings(base_urls=(f"{flaky.url}/v1",))
    emb = RemoteEmbedder(
        replace(base, backend="openai", model="text-embedding-3-small", openai=cfg)
    )
    with pytest.raises(QAError, match=r"could not find it \(404\).*embedding\.model"):
        emb.embed(["a question"])
