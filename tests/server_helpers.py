"""Shared pieces of the server tests: an index of the corpus, request helpers, scripted
model clients."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.answering.assistant import Assistant
from qa.core.config import Settings, load_settings
from qa.core.types import Completion, Prompt, QAError
from qa.embedding import create_embedder
from qa.embedding.fake import FakeEmbedder
from qa.index import sync
from qa.ingest import read_paths
from qa.llm.fake import FakeLLM
from qa.web.feeds import reindex

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
HEADLINE = "What did Khrenin say about India?"
CITATION_KEYS = {"n", "chunk_id", "doc_id", "title", "published", "quote", "start", "end"}
SECRET = "s3cret-token"


def build_index(root: Path, **overrides: Any) -> Settings:
    settings = load_settings(overrides={"paths.index": str(root), **overrides})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        embedder = create_embedder(settings.embedding)
        sync(settings.index_dir, read_paths([CORPUS]).documents, embedder, settings)
    return settings


@contextmanager
def qa_serve(
    project: Path,
    overrides: dict[str, Any] | None = None,
    *,
    api_key: str | None = SECRET,
    llm: FakeLLM | None = None,
) -> Iterator[str]:
    """A `qa serve` of a project folder (its corpus indexed first, fake embedder) on
    loopback; its base URL."""
    from qa.serving.app import create_app, serve_in_thread  # late: server_helpers is imported early

    settings = load_settings(project / "config.toml", overrides, env={})
    embedder = FakeEmbedder(name="fake")
    reindex(settings, embedder)
    assistant = Assistant(settings, embedder=embedder, llm=llm)
    with serve_in_thread(create_app(assistant, api_key)) as base:
        yield base


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str)
    if param is not None:
        assert error["param"] == param
    return error


def sse_chunks(response: httpx.Response) -> list[dict[str, Any]]:
    events = [e for e in response.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)
    return [json.loads(e[len("data: ") :]) for e in events[:-1]]


class FailingLLM(FakeLLM):
    """Writes two pieces, then fails the way a model client reports errors."""

    def stream(self, prompt: Prompt) -> Iterator[str | Completion]:
        yield "Khrenin said "
        yield "India "
        raise QAError("the model server went away")


class SlowLLM(FakeLLM):
    def generate(self, prompt: Prompt) -> Completion:
        time.sleep(1.5)
        return super().generate(prompt)
