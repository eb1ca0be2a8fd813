"""The bundled GGUF (SmolLM2-135M) through the local client, and through the openai client
against xllamacpp's own OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from llm_helpers import KHRENIN, MUMBAI, make_prompt

from qa.config import LLMSettings, LocalSettings, OpenAISettings, Settings
from qa.llm import create
from qa.llm.local import LocalClient, default_model_path
from qa.llm.openai import OpenAIClient
from qa.types import Completion, QAError

pytestmark = pytest.mark.slow

PROMPT = make_prompt("What did Khrenin say about India?", [KHRENIN, MUMBAI], max_tokens=32)
MODEL = "SmolLM2-135M-Instruct.Q4_1"
# One thread: on a busy 2-core machine (other tests, other processes) llama.cpp's worker
# threads wait on each other at every step and two threads run many times slower than one.
THREADS = 1


@pytest.fixture(scope="module")
def local() -> LocalClient:
    llm = create(
        "local", Settings(llm=LLMSettings(local=LocalSettings(n_ctx=2048, threads=THREADS)))
    )
    assert isinstance(llm, LocalClient)
    return llm


@pytest.fixture(scope="module")
def http_server() -> Iterator[Any]:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(default_model_path())
    params.n_ctx = 2048
    params.cpuparams.n_threads = THREADS
    params.cpuparams_batch.n_threads = THREADS
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # a free port; the address says which
    params.verbosity = 0
    server = xllamacpp.Server(params)
    yield server
    del server


def _check(out: Completion, max_tokens: int = 32) -> None:
    assert out.text.strip()
    assert 0 < out.usage.completion_tokens <= max_tokens
    assert out.usage.prompt_tokens > 100  # system prompt plus two passages


def test_properties_without_loading() -> None:
    llm = LocalClient(Settings())
    assert llm.name == "local" and llm.model == MODEL
    assert llm.context_window == Settings().llm.local.n_ctx
    assert llm._server is None  # constructors are cheap


def test_generate(local: LocalClient) -> None:
    out = local.generate(PROMPT)
    _check(out)
    assert out.model == MODEL


def test_stream(local: LocalClient) -> None:
    out = list(local.stream(PROMPT))
    pieces, final = out[:-1], out[-1]
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert isinstance(final, Completion)
    assert "".join(pieces).strip() == final.text  # type: ignore[arg-type]
    _check(final)


def test_stream_abandoned_then_reused(local: LocalClient) -> None:
    stream = local.stream(PROMPT)
    assert isinstance(next(stream), str)
    stream.close()  # stops generation and releases the model
    _check(local.generate(PROMPT))


def test_concurrent_requests_are_serialised(local: LocalClient) -> None:
    results: list[Completion] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(local.generate(PROMPT))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    for out in results:
        _check(out)


def test_prompt_longer_than_context(local: LocalClient) -> None:
    small = create(
        "local", Settings(llm=LLMSettings(local=LocalSettings(n_ctx=128, threads=THREADS)))
    )
    with pytest.raises(QAError, match=r"llm\.local\.n_ctx"):
        small.generate(PROMPT)


def test_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    llm = create("local", Settings(llm=LLMSettings(local=LocalSettings(model_path=str(missing)))))
    assert llm.model == "nope"
    with pytest.raises(QAError, match=str(missing)):
        llm.generate(PROMPT)


def _openai(http_server: Any, monkeypatch: pytest.MonkeyPatch) -> OpenAIClient:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local server needs no key
    cfg = replace(
        OpenAISettings(), model=MODEL, base_url=http_server.listening_address + "/v1", timeout=60
    )
    llm = create("openai", Settings(llm=LLMSettings(openai=cfg)))
    assert isinstance(llm, OpenAIClient)
    return llm


def test_openai_client_against_llama_cpp_server(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert http_server.listening_address.startswith("http://127.0.0.1:")
    out = _openai(http_server, monkeypatch).generate(PROMPT)
    _check(out)
    assert out.model == MODEL


def test_openai_client_streams_from_llama_cpp_server(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = list(_openai(http_server, monkeypatch).stream(PROMPT))
    pieces, final = out[:-1], out[-1]
    assert len(pieces) > 1 and all(isinstance(p, str) for p in pieces)
    assert isinstance(final, Completion)
    assert "".join(pieces).strip() == final.text  # type: ignore[arg-type]
    _check(final)
