"""The OpenAI client's retry policy, against a real HTTP server on loopback."""

from __future__ import annotations

import email.utils
import itertools
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from llm_fake_openai import ANSWER, FakeOpenAI, Step, completion_body, error_body
from llm_helpers import KHRENIN, make_prompt

from qa.core.config import LLMSettings, OpenAISettings, Settings
from qa.core.service import LOCAL_PLACEHOLDER_KEY
from qa.core.types import Completion, QAError
from qa.llm import create
from qa.llm.openai import NO_KEY_MESSAGE, QUOTA_MESSAGE, OpenAIClient, parse_retry_after

PROMPT = make_prompt("What did Khrenin say about India?", [KHRENIN])


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI()
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def settings(url: str, **openai: object) -> Settings:
    cfg = OpenAISettings(
        model="gpt-test",
        base_url=url,
        timeout=5.0,
        max_retries=2,
        backoff_base=0.2,
        backoff_max=0.4,
    )
    return Settings(llm=LLMSettings(openai=replace(cfg, **openai)))  # type: ignore[arg-type]


def client(server: FakeOpenAI, **openai: object) -> OpenAIClient:
    llm = create("openai", settings(server.url, **openai))
    assert isinstance(llm, OpenAIClient)
    return llm


def gaps(server: FakeOpenAI) -> list[float]:
    times = [r.at for r in server.requests]
    return [b - a for a, b in itertools.pairwise(times)]


def test_success_and_request(server: FakeOpenAI) -> None:
    server.script(Step(body=completion_body()))
    out = client(server).generate(PROMPT)
    assert out == Completion(text=ANSWER, model="gpt-test", usage=out.usage)
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (50, 9)
    [request] = server.requests
    assert request.body["model"] == "gpt-test"
    assert request.body["messages"] == [dict(m) for m in PROMPT.messages]
    assert request.body["max_tokens"] == PROMPT.max_tokens
    assert request.body["temperature"] == 0.0
    assert request.headers["authorization"] == "Bearer sk-test"
    # The openai package's own retries are off: the policy here is the only one.
    assert request.headers.get("x-stainless-retry-count") == "0"


def test_429_with_retry_after_waits_that_long(server: FakeOpenAI) -> None:
    server.script(
        Step(
            429,
            error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
            headers={"Retry-After": "1"},
        ),
        Step(body=completion_body()),
    )
    assert client(server).generate(PROMPT).text == ANSWER
    assert len(server.requests) == 2
    assert 0.95 <= gaps(server)[0] < 2.0  # Retry-After (1 s), not the 0.2 s backoff


def test_429_with_retry_after_ms(server: FakeOpenAI) -> None:
    server.script(
        Step(429, error_body("slow down", "requests"), headers={"retry-after-ms": "700"}),
        Step(body=completion_body()),
    )
    assert client(server).generate(PROMPT).text == ANSWER
    assert len(server.requests) == 2
    assert 0.65 <= gaps(server)[0] < 1.5


def test_429_without_retry_after_uses_backoff(server: FakeOpenAI) -> None:
    server.script(
        Step(429, error_body("Rate limit reached", "requests")),
        Step(429, error_body("Rate limit reached", "requests")),
        Step(body=completion_body()),
    )
    assert client(server, backoff_base=0.2, backoff_max=0.3).generate(PROMPT).text == ANSWER
    assert len(server.requests) == 3
    first, second = gaps(server)
    assert 0.2 <= first < 0.6  # base (+ jitter up to 10%)
    assert 0.3 <= second < 0.7  # doubled to 0.4, capped at backoff_max = 0.3


def test_500_then_success(server: FakeOpenAI) -> None:
    server.script(
        Step(500, error_body("The server had an error", "server_error")),
        Step(body=completion_body()),
    )
    assert client(server).generate(PROMPT).text == ANSWER
    assert len(server.requests) == 2


def test_timeout_then_success(server: FakeOpenAI) -> None:
    server.script(Step(body=completion_body(), delay=1.5), Step(body=completion_body()))
    started = time.monotonic()
    assert client(server, timeout=0.5, backoff_base=0.05).generate(PROMPT).text == ANSWER
    assert len(server.requests) == 2
    assert gaps(server)[0] >= 0.5  # the first attempt was given up after the timeout
    assert time.monotonic() - started < 1.5  # ... and not waited out


def test_insufficient_quota_fails_at_once(server: FakeOpenAI) -> None:
    server.script(
        Step(
            429,
            error_body(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                "insufficient_quota",
            ),
            headers={"Retry-After": "1"},
        )
    )
    with pytest.raises(QAError) as err:
        client(server).generate(PROMPT)
    assert str(err.value) == QUOTA_MESSAGE
    assert len(server.requests) == 1


def test_401_fails_at_once_with_server_message(server: FakeOpenAI) -> None:
    server.script(
        Step(
            401,
            error_body(
                "Incorrect API key provided: sk-test.", "invalid_request_error", "invalid_api_key"
            ),
        )
    )
    with pytest.raises(QAError) as err:
        client(server).generate(PROMPT)
    message = str(err.value)
    assert "401" in message and "Incorrect API key provided" in message
    assert "OPENAI_API_KEY" in message
    assert len(server.requests) == 1


def test_404_unknown_model_fails_at_once(server: FakeOpenAI) -> None:
    server.script(
        Step(
            404,
            error_body(
                "The model `gpt-test` does not exist", "invalid_request_error", "model_not_found"
            ),
        )
    )
    with pytest.raises(QAError) as err:
        client(server).generate(PROMPT)
    assert "does not exist" in str(err.value) and "llm.openai.model" in str(err.value)
    assert len(server.requests) == 1


def test_retries_exhausted(server: FakeOpenAI) -> None:
    server.script(Step(503, error_body("Service unavailable", "server_error")))
    with pytest.raises(QAError) as err:
        client(server, max_retries=2, backoff_base=0.05).generate(PROMPT)
    assert len(server.requests) == 3
    message = str(err.value)
    assert "failed after 3 attempts" in message
    assert "503" in message and "Service unavailable" in message


def test_no_retries_configured(server: FakeOpenAI) -> None:
    server.script(Step(500, error_body("boom", "server_error")))
    with pytest.raises(QAError, match="after 1 attempt"):
        client(server, max_retries=0).generate(PROMPT)
    assert len(server.requests) == 1


def test_stream_pieces_and_usage(server: FakeOpenAI) -> None:
    pieces = ["Khrenin said ", "India is ", "a priority [1]."]
    server.script(Step(sse=pieces, sse_usage=(40, 7)))
    out = list(client(server).stream(PROMPT))
    assert out[:-1] == pieces
    final = out[-1]
    assert isinstance(final, Completion)
    assert final.text == ANSWER
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (40, 7)
    [request] = server.requests
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}


def test_stream_start_is_retried(server: FakeOpenAI) -> None:
    server.script(
        Step(429, error_body("Rate limit reached", "requests"), headers={"Retry-After": "0.3"}),
        Step(sse=["Khrenin said India is a priority [1]."]),
    )
    out = list(client(server).stream(PROMPT))
    assert out[0] == ANSWER and isinstance(out[-1], Completion)
    assert len(server.requests) == 2


def test_stream_without_stream_options_support(server: FakeOpenAI) -> None:
    server.script(
        Step(sse=["Khrenin said ", "India is a priority [1]."], reject_stream_options=True)
    )
    llm = client(server)
    out = list(llm.stream(PROMPT))
    final = out[-1]
    assert isinstance(final, Completion) and final.text == ANSWER
    # Usage counted with tiktoken when the server sends none.
    assert final.usage.completion_tokens > 5 and final.usage.prompt_tokens > 100
    assert ["stream_options" in r.body for r in server.requests] == [True, False]
    list(llm.stream(PROMPT))  # remembered: the next stream does not ask again
    assert "stream_options" not in server.requests[-1].body


def test_stream_server_ignoring_stream_options(server: FakeOpenAI) -> None:
    server.script(Step(sse=["Khrenin said India is a priority [1]."], sse_usage=None))
    final = list(client(server).stream(PROMPT))[-1]
    assert isinstance(final, Completion) and final.usage.completion_tokens > 5


def test_max_completion_tokens_fallback(server: FakeOpenAI) -> None:
    server.script(
        Step(
            400,
            error_body(
                "Unsupported parameter: 'max_tokens' is not supported with this "
                "model. Use 'max_completion_tokens' instead.",
                "invalid_request_error",
            ),
        ),
        Step(body=completion_body()),
    )
    assert client(server).generate(PROMPT).text == ANSWER
    assert "max_tokens" in server.requests[0].body
    assert server.requests[1].body.get("max_completion_tokens") == PROMPT.max_tokens


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(QAError) as err:
        create("openai", settings(""))
    assert str(err.value) == NO_KEY_MESSAGE


def test_base_url_without_key_uses_placeholder(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.script(Step(body=completion_body()))
    assert client(server).generate(PROMPT).text == ANSWER
    assert server.requests[0].headers["authorization"] == f"Bearer {LOCAL_PLACEHOLDER_KEY}"


def test_connection_refused_is_retried_then_explained() -> None:
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = create("openai", settings(f"http://127.0.0.1:{port}/v1", backoff_base=0.01))
    with pytest.raises(QAError, match="failed after 3 attempts: could not connect"):
        llm.generate(PROMPT)


def test_parse_retry_after() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= (parse_retry_after({"retry-after": future}) or 0) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_backoff_doubles_and_caps() -> None:
    llm = OpenAIClient(settings("http://127.0.0.1:9/v1", backoff_base=1.0, backoff_max=5.0))
    for attempt, base in enumerate([1.0, 2.0, 4.0, 5.0, 5.0]):
        assert base <= llm.backoff(attempt) <= base * 1.1
