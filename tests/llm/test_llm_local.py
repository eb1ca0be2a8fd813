"""The mechanics of the local client with the tiny SmolLM2-135M (in process, one model per
process, no TCP port, streaming, the reply begun with the answer label), and the openai client
against xllamacpp's own OpenAI-compatible HTTP server on loopback. The 1.5B model's quality
and speed are measured by bench/bench_llm.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from llm_helpers import KHRENIN, MUMBAI, make_prompt

from qa.core.config import LLMSettings, LocalSettings, OpenAISettings, Settings
from qa.core.types import Completion, QAError
from qa.llm import create
from qa.llm.local import SMOLLM2, LocalClient, default_model_path
from qa.llm.openai import OpenAIClient
from qa.llm.prompts import SHORT_ANSWER_LABEL

pytestmark = pytest.mark.slow

PROMPT = make_prompt("What did Khrenin say about India?", [KHRENIN, MUMBAI], max_tokens=32)
MODEL = "SmolLM2-135M-Instruct.Q4_1"
# One thread: on a busy 2-core machine (other tests, other processes) llama.cpp's worker
# threads wait on each other at every step and two threads run many times slower than one.
THREADS = 1


@pytest.fixture(scope="module")
def local() -> LocalClient:
    llm = create("local", Settings(llm=LLMSettings(local=_small(n_ctx=2048, threads=THREADS))))
    assert isinstance(llm, LocalClient)
    return llm


def _small(**kwargs: Any) -> LocalSettings:
    return LocalSettings(model=SMOLLM2, **kwargs)


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
    llm = LocalClient(Settings(llm=LLMSettings(local=_small())))
    assert llm.name == "local" and llm.model == MODEL
    assert llm.context_window == Settings().llm.local.n_ctx
    assert llm._loaded is None  # constructors are cheap
    default = LocalClient(Settings())
    assert default.model == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert default.passage_budget == Settings().llm.local.passage_tokens
    with pytest.raises(QAError, match="unknown local model 'nope'"):
        LocalClient(Settings(llm=LLMSettings(local=LocalSettings(model="nope"))))


def test_one_model_per_process_and_no_tcp_port(local: LocalClient) -> None:
    """llama.cpp's HTTP server (always started by xllamacpp) listens on a Unix socket in a
    private folder, with an API key: no TCP port is opened by the local client."""
    import os
    import stat

    loaded = local.loaded()
    twin = create("local", Settings(llm=LLMSettings(local=_small(n_ctx=2048, threads=THREADS))))
    assert isinstance(twin, LocalClient) and twin.loaded() is loaded  # not loaded again
    address = loaded.server.listening_address
    assert address.startswith("unix://")
    folder = os.path.dirname(address.removeprefix("unix://"))
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert _listening_tcp_sockets() == []


def _listening_tcp_sockets() -> list[str]:
    """This process's listening TCP sockets (Linux: /proc/net/tcp* rows whose inode is one of
    our file descriptors; state 0A is LISTEN)."""
    import os

    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            ours.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                port = int(cols[1].rsplit(":", 1)[1], 16)
                if cols[3] == "0A" and cols[9] in ours and port not in _milvus_lite_ports():
                    found.append(cols[1])
    return found


def _milvus_lite_ports() -> set[int]:
    """Loopback ports of the Milvus Lite servers the Milvus-backed tests run in this process
    (pymilvus reaches an embedded Milvus Lite over gRPC on 127.0.0.1)."""
    import sys

    manager = sys.modules.get("milvus_lite.server_manager")
    if manager is None:
        return set()
    return {port for _, _, port in manager.server_manager_instance._servers.values()}


def test_generate(local: LocalClient) -> None:
    out = local.generate(PROMPT)
    _check(out)
    assert out.model == MODEL
    assert out.text.startswith(SHORT_ANSWER_LABEL)  # the reply is begun for the model


def test_stream(local: LocalClient) -> None:
    out = list(local.stream(PROMPT))
    pieces, final = out[:-1], out[-1]
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert isinstance(final, Completion)
    assert "".join(pieces).strip() == final.text  # type: ignore[arg-type]
    assert pieces[0].startswith(SHORT_ANSWER_LABEL) and len(pieces[0]) > len(SHORT_ANSWER_LABEL)
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
    small = create("local", Settings(llm=LLMSettings(local=_small(n_ctx=128, threads=THREADS))))
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


def test_the_system_prompt_is_read_once(local: LocalClient) -> None:
    """llama.cpp keeps the KV cache of the last prompt: a new question over other passages
    reuses at least the system prompt's tokens instead of reading them again."""
    other = make_prompt("Why were schools closed in Mumbai?", [MUMBAI], max_tokens=8)
    server = local.server()
    with local.loaded().lock:
        server.handle_chat_completions(local._request(PROMPT, stream=False))
        reply = server.handle_chat_completions(local._request(other, stream=False))
    cached = reply["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 100 and cached < reply["usage"]["prompt_tokens"]


def test_avoided_words_are_barred_in_the_request() -> None:
    llm = LocalClient(Settings(llm=LLMSettings(local=_small())))
    plain = llm._request(PROMPT, stream=False)
    assert "logit_bias" not in plain
    barred = llm._request(replace(PROMPT, avoid=("India", "X")), stream=True)
    assert barred["logit_bias"] == [
        [word, False] for word in ("India", " India", "india", " india", "X", " X", "x", " x")
    ]
    assert barred["messages"] == plain["messages"]  # the same prompt: its KV cache is reused


def test_avoided_words_are_not_written(local: LocalClient) -> None:
    """Whatever word the model answers with first (greedy: it would write it again), barred, it
    writes something else."""
    prompt = make_prompt("Which country is a priority for Moscow?", [KHRENIN], max_tokens=24)
    first = local.generate(prompt).text.removeprefix(SHORT_ANSWER_LABEL).split()[0].strip(".,[]")
    assert first.isalpha()
    again = local.generate(replace(prompt, avoid=(first,)))
    answer = again.text.removeprefix(SHORT_ANSWER_LABEL)
    assert answer.strip() and first.lower() not in answer.lower()
