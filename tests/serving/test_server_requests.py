"""Bad requests to qa.serving.app: every malformed body, odd JSON (lone surrogates, deep
nesting), body caps and unknown routes get a 4xx with an OpenAI-style error, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from server_helpers import HEADLINE, assert_error, user

from qa.answering.assistant import Assistant
from qa.serving.app import create_app, serve_in_thread


@pytest.fixture(scope="module")
def url(assistant: Assistant) -> Iterator[str]:
    with serve_in_thread(create_app(assistant)) as base:
        yield base


@pytest.fixture()
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0, timeout=120)


# ----------------------------------------------------------------------------- bad requests

LONG = "x" * 20_000
CHAT = "/v1/chat/completions"
ASK = "/api/ask"
BAD_REQUESTS: list[tuple[str, str, Any, int, str | None]] = [
    # (id, path, JSON body or raw bytes, status, param)
    ("malformed-json", CHAT, b'{"model": "qa", "messages": [', 400, None),
    ("empty-body", CHAT, b"", 400, None),
    ("not-an-object", CHAT, [1, 2], 400, None),
    ("missing-messages", CHAT, {"model": "qa"}, 400, "messages"),
    ("empty-messages", CHAT, {"model": "qa", "messages": []}, 400, "messages"),
    ("messages-not-list", CHAT, {"model": "qa", "messages": "hi"}, 400, "messages"),
    ("message-not-object", CHAT, {"model": "qa", "messages": ["hi"]}, 400, "messages[0]"),
    (
        "bad-role",
        CHAT,
        {"messages": [{"role": "wizard", "content": "hi"}]},
        400,
        "messages[0].role",
    ),
    (
        "content-wrong-type",
        CHAT,
        {"messages": [{"role": "user", "content": 5}]},
        400,
        "messages[0].content",
    ),
    (
        "image-content",
        CHAT,
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        400,
        "messages[0].content",
    ),
    ("no-user-message", CHAT, {"messages": [{"role": "system", "content": "hi"}]}, 400, "messages"),
    ("empty-question", CHAT, {"messages": user("   ")}, 400, "messages"),
    ("long-question", CHAT, {"model": "qa", "messages": user(LONG)}, 400, "messages"),
    ("long-question-stream", CHAT, {"messages": user(LONG), "stream": True}, 400, "messages"),
    ("unknown-model", CHAT, {"model": "gpt-4o", "messages": user("hi")}, 404, "model"),
    ("model-wrong-type", CHAT, {"model": 4, "messages": user("hi")}, 400, "model"),
    ("stream-wrong-type", CHAT, {"messages": user("hi"), "stream": "yes"}, 400, "stream"),
    ("n-2", CHAT, {"messages": user("hi"), "n": 2}, 400, "n"),
    ("chat-k-0", CHAT, {"messages": user("hi"), "k": 0}, 400, "k"),
    ("ask-missing-question", ASK, {"k": 3}, 400, "question"),
    ("ask-question-wrong-type", ASK, {"question": 42}, 400, "question"),
    ("ask-empty-question", ASK, {"question": ""}, 400, "question"),
    ("ask-long-question", ASK, {"question": LONG}, 400, "question"),
    ("ask-k-0", ASK, {"question": HEADLINE, "k": 0}, 400, "k"),
    ("ask-k-101", ASK, {"question": HEADLINE, "k": 101}, 400, "k"),
    ("ask-k-string", ASK, {"question": HEADLINE, "k": "5"}, 400, "k"),
    ("ask-k-bool", ASK, {"question": HEADLINE, "k": True}, 400, "k"),
    ("ask-k-float", ASK, {"question": HEADLINE, "k": 2.5}, 400, "k"),
    ("ask-choices-not-list", ASK, {"question": HEADLINE, "choices": "a"}, 400, "choices"),
    ("ask-choices-not-strings", ASK, {"question": HEADLINE, "choices": [1]}, 400, "choices[0]"),
    ("ask-one-choice", ASK, {"question": HEADLINE, "choices": ["a"]}, 400, "choices"),
    ("ask-same-choices", ASK, {"question": HEADLINE, "choices": ["a", "A "]}, 400, "choices"),
    ("ask-malformed-json", ASK, b"{question:", 400, None),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_REQUESTS],
)
def test_bad_requests(url: str, path: str, body: Any, status: int, param: str | None) -> None:
    if isinstance(body, bytes):
        response = httpx.post(
            f"{url}{path}",
            content=body,
            headers={"content-type": "application/json"},
            timeout=30,
        )
    else:
        response = httpx.post(f"{url}{path}", json=body, timeout=30)
    assert_error(response, status, param)


def test_long_question_with_openai_client(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="qa", messages=user(LONG))
    assert "2000" in str(info.value)


def test_unknown_route_and_method(url: str) -> None:
    assert_error(httpx.get(f"{url}/v1/nothing"), 404)
    assert_error(httpx.get(f"{url}/v1/chat/completions"), 405)


def test_oversized_body_with_length(url: str) -> None:
    body = json.dumps({"model": "qa", "messages": user("y" * 70_000)})
    response = httpx.post(
        f"{url}/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    error = assert_error(response, 413)
    assert "65536" in error["message"]


def test_oversized_body_chunked(url: str) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(100):
            yield b"z" * 1000
        yield b'"}'

    response = httpx.post(
        f"{url}/api/ask",
        content=parts(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413)


def test_small_chunked_body_is_fine(url: str) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"question": '
        yield json.dumps(HEADLINE).encode()
        yield b"}"

    response = httpx.post(
        f"{url}/api/ask",
        content=parts(),
        headers={"content-type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 200, response.text


# ----------------------------------------------------------------------------- odd JSON and filters

SURROGATE = b'{"question": "a \\ud800"}'
CHAT_SURROGATE = b'{"messages": [{"role": "user", "content": "a \\ud800"}]}'
CHAT_SURROGATE_STREAM = b'{"stream": true, "messages": [{"role": "user", "content": "\\udc00"}]}'


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        pytest.param(ASK, SURROGATE, id="ask-lone-surrogate"),
        pytest.param(CHAT, CHAT_SURROGATE, id="chat-lone-surrogate"),
        pytest.param(CHAT, CHAT_SURROGATE_STREAM, id="chat-stream-lone-surrogate"),
        pytest.param(ASK, b"[" * 60_000, id="ask-deep-nesting"),
        pytest.param(CHAT, b'{"messages": ' + b"[" * 60_000, id="chat-deep-nesting"),
        pytest.param(ASK, b'{"question": "x", "k": NaN}', id="ask-nan"),
    ],
)
def test_odd_json_is_a_clear_400(url: str, path: str, raw: bytes) -> None:
    response = httpx.post(
        f"{url}{path}", content=raw, headers={"content-type": "application/json"}, timeout=30
    )
    error = assert_error(response, 400)
    assert error["message"].startswith("the request body is not valid JSON: ")
    if b"\\ud" in raw:
        assert "surrogate" in error["message"]


BAD_FILTERS: list[tuple[str, str, Any, str]] = [
    ("as-of-not-a-date", "as_of", "yesterday", "as_of must be a date as YYYY-MM-DD"),
    ("as-of-month-13", "as_of", "2025-13-01", "as_of must be a date"),
    ("as-of-number", "as_of", 20250101, "'as_of'"),
    ("since-not-a-date", "since", "June", "since must be a date"),
    ("until-not-a-date", "until", "2025-06-31", "until must be a date"),
    ("sources-not-list", "sources", "belta", "'sources'"),
    ("sources-empty-name", "sources", [" "], "a source filter is empty"),
]


@pytest.mark.parametrize("path", [ASK, CHAT])
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_FILTERS],
)
def test_bad_filters(url: str, path: str, field: str, value: Any, message: str) -> None:
    body: dict[str, Any] = {field: value}
    body |= {"question": HEADLINE} if path == ASK else {"messages": user(HEADLINE)}
    error = assert_error(httpx.post(f"{url}{path}", json=body, timeout=30), 400)
    assert message in error["message"]
    assert (error["param"] or "").startswith(field)


def test_filters_that_contradict_each_other(url: str) -> None:
    body = {"question": HEADLINE, "since": "2025-07-01", "until": "2025-06-01"}
    error = assert_error(httpx.post(f"{url}{ASK}", json=body), 400, "since")
    assert "is after until" in error["message"]
    body = {"question": HEADLINE, "since": "2025-07-01", "as_of": "2025-06-01"}
    error = assert_error(httpx.post(f"{url}{ASK}", json=body), 400, "since")
    assert "after the as-of date" in error["message"]


def test_unknown_field_in_api_ask_is_named(url: str) -> None:
    body = {"question": HEADLINE, "as_off": "2025-06-01"}
    error = assert_error(httpx.post(f"{url}{ASK}", json=body), 400, "as_off")
    assert error["message"] == "unknown parameter 'as_off'"
