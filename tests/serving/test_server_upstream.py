"""Model failures behind `qa serve`: the real OpenAI client against a scripted OpenAI server on
loopback, and a missing local model file. The caller gets 502/503/429 with a message fit for a
remote caller (no local paths, no configuration hints); the detail goes to the server log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from llm_fake_openai import FakeOpenAI, Step, error_body
from server_helpers import HEADLINE, assert_error, build_index, user

from qa.answering.assistant import Assistant
from qa.core.config import Settings
from qa.llm import create
from qa.serving.app import create_app, serve_in_thread

QUOTA = "insufficient_quota"
HINTS = ("llm.", "OPENAI_API_KEY", "qa model", "/", "gguf", "check your plan")


@pytest.fixture(scope="module")
def fake_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_index(tmp_path_factory.mktemp("upstream-index"), **{"embedding.model": "fake"})


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI()
    yield srv
    srv.close()


def openai_settings(settings: Settings, url: str) -> Settings:
    cfg = replace(
        settings.llm.openai,
        model="gpt-test",
        base_url=url,
        timeout=5.0,
        max_retries=1,
        backoff_base=0.05,
        backoff_max=0.1,
    )
    return replace(settings, llm=replace(settings.llm, openai=cfg))


def ask_all(settings: Settings, llm_name: str) -> list[httpx.Response]:
    """/api/ask, then chat completions plain and streamed, against one server."""
    assistant = Assistant(settings, llm=create(llm_name, settings))
    with serve_in_thread(create_app(assistant)) as base:
        return [
            httpx.post(f"{base}/api/ask", json={"question": HEADLINE}, timeout=60),
            *(
                httpx.post(
                    f"{base}/v1/chat/completions",
                    json={"messages": user(HEADLINE), "stream": stream},
                    timeout=60,
                )
                for stream in (False, True)
            ),
        ]


def assert_public(response: httpx.Response, status: int) -> dict:
    error = assert_error(response, status)
    assert error["type"] == "server_error"
    assert not any(hint in error["message"] for hint in HINTS), error["message"]
    return error


@pytest.mark.parametrize(
    ("step", "status", "logged"),
    [
        (
            Step(429, error_body("You exceeded your quota", "insufficient_quota", QUOTA)),
            503,
            "insufficient_quota",
        ),
        (Step(401, error_body("Incorrect API key provided", "invalid_request_error")), 502, "401"),
        (Step(500, error_body("boom", "server_error")), 503, "failed after 2 attempts"),
        (
            Step(429, error_body("slow down", "rate_limit_error"), headers={"retry-after": "1"}),
            429,
            "rate limited",
        ),
    ],
)
def test_openai_failures_are_not_the_callers_fault(
    fake_settings: Settings,
    upstream: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    step: Step,
    status: int,
    logged: str,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    upstream.script(step)
    with caplog.at_level(logging.WARNING, logger="qa.serving.app"):
        responses = ask_all(openai_settings(fake_settings, upstream.url), "openai")
    for response in responses:
        assert_public(response, status)
    if status == 429:
        assert all(r.headers["retry-after"] == "1" for r in responses)
    assert logged in caplog.text  # the detail is in the server's log


def test_missing_local_model_is_503(
    fake_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "secret-dir" / "model.gguf"
    local = replace(fake_settings.llm.local, model_path=str(missing))
    settings = replace(fake_settings, llm=replace(fake_settings.llm, local=local))
    with caplog.at_level(logging.WARNING, logger="qa.serving.app"):
        responses = ask_all(settings, "local")
    for response in responses:
        error = assert_public(response, 503)
        assert "secret-dir" not in error["message"]
    assert str(missing) in caplog.text
