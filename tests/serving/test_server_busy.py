"""Bounded work in `qa serve`: at most server.max_concurrent_answers model calls at once; a
request over the limit waits up to a bound, then gets 503 with Retry-After. Real server on
loopback, a slow scripted model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pytest
from server_helpers import HEADLINE, SlowLLM, assert_error, build_index, user

from qa.answering.assistant import Assistant
from qa.core.config import Settings
from qa.core.types import Completion, Prompt, QAError
from qa.llm.fake import FakeLLM
from qa.serving.app import create_app, serve_in_thread


class CountingLLM(FakeLLM):
    """Slow, and records the most calls it saw running at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.peak = 0
        self.count_lock = threading.Lock()

    def generate(self, prompt: Prompt) -> Completion:
        with self.count_lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.4)
        with self.count_lock:
            self.running -= 1
        return super().generate(prompt)


@pytest.fixture(scope="module")
def fake_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_index(tmp_path_factory.mktemp("busy-index"), **{"embedding.model": "fake"})


def limited(settings: Settings, n: int) -> Settings:
    return replace(settings, server=replace(settings.server, max_concurrent_answers=n))


def test_default_limit_is_four() -> None:
    assert Settings().server.max_concurrent_answers == 4


def test_limit_bounds_concurrent_model_calls(fake_settings: Settings) -> None:
    llm = CountingLLM()
    app = create_app(Assistant(limited(fake_settings, 2), llm=llm), answer_wait=30)
    with serve_in_thread(app) as base, ThreadPoolExecutor(6) as pool:
        responses = list(
            pool.map(
                lambda _: httpx.post(f"{base}/api/ask", json={"question": HEADLINE}, timeout=60),
                range(6),
            )
        )
    assert [r.status_code for r in responses] == [200] * 6  # all waited their turn
    assert llm.peak == 2


@pytest.mark.parametrize("route", ["ask", "chat", "stream"])
def test_over_the_limit_gets_503_with_retry_after(fake_settings: Settings, route: str) -> None:
    app = create_app(Assistant(limited(fake_settings, 1), llm=SlowLLM()), answer_wait=0.3)

    def post(base: str, route: str = route) -> httpx.Response:
        if route == "ask":
            return httpx.post(f"{base}/api/ask", json={"question": HEADLINE}, timeout=60)
        body = {"messages": user(HEADLINE), "stream": route == "stream"}
        return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)

    with serve_in_thread(app) as base:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(post, base, "ask")
            time.sleep(0.5)  # the first holds the one slot for 1.5 s (a slow generate)
            second = post(base)
            assert first.result().status_code == 200
        error = assert_error(second, 503)
        assert error["code"] == "server_busy"
        assert int(second.headers["retry-after"]) >= 1
        assert post(base).status_code == 200  # the slot was given back


def test_limit_below_one_is_refused(fake_settings: Settings) -> None:
    with pytest.raises(QAError, match="max_concurrent_answers"):
        create_app(Assistant(limited(fake_settings, 0), llm=FakeLLM()))


class SlowStreamLLM(FakeLLM):
    def stream(self, prompt: Prompt) -> Iterator[str | Completion]:
        for piece in super().stream(prompt):
            time.sleep(0.5)
            yield piece


def test_a_dropped_stream_gives_its_slot_back(fake_settings: Settings) -> None:
    app = create_app(Assistant(limited(fake_settings, 1), llm=SlowStreamLLM()), answer_wait=0.8)
    body = {"messages": user(HEADLINE), "stream": True}
    with serve_in_thread(app) as base:
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=60) as r:
            assert r.status_code == 200
            next(r.iter_raw())  # read the start, then hang up mid-answer
        time.sleep(0.5)
        # Well before the dropped answer would have ended (about 3 s of pieces).
        after = httpx.post(f"{base}/api/ask", json={"question": HEADLINE}, timeout=60)
        assert after.status_code == 200, after.text
