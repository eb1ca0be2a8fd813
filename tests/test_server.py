"""Tests for qa.server: the OpenAI-compatible chat endpoint (with the real `openai` client), the
plain API, auth, bad requests, body limits and the host guard, against uvicorn on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import ASK_JSON_KEYS

from qa.assistant import Assistant
from qa.config import Settings, load_settings
from qa.embed import create_embedder
from qa.index import sync
from qa.ingest import read_paths
from qa.llm.fake import FakeLLM
from qa.prompts import CANNOT_ANSWER
from qa.server import check_host, create_app, serve, serve_in_thread, sources_text
from qa.types import Completion, Prompt, QAError

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


@pytest.fixture(scope="module")
def url(assistant: Assistant) -> Iterator[str]:
    with serve_in_thread(create_app(assistant)) as base:
        yield base


@pytest.fixture(scope="module")
def auth_url(assistant: Assistant) -> Iterator[str]:
    with serve_in_thread(create_app(assistant, api_key=SECRET)) as base:
        yield base


@pytest.fixture(scope="module")
def fake_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_index(tmp_path_factory.mktemp("fake-index"), **{"embedding.model": "fake"})


@pytest.fixture()
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0, timeout=120)


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


# ----------------------------------------------------------------------------- basics


def test_healthz(url: str) -> None:
    response = httpx.get(f"{url}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["articles"] == 5
    assert body["chunks"] > 5


def test_models(url: str, client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["qa"]
    assert client.models.retrieve("qa").id == "qa"
    assert_error(httpx.get(f"{url}/v1/models/nope"), 404, "model")


def test_page_and_static_files(url: str) -> None:
    page = httpx.get(f"{url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/static/app.js" in page.text
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
        asset = httpx.get(f"{url}/static/{name}")
        assert asset.status_code == 200
        assert kind in asset.headers["content-type"]
    # Nothing on the page comes from another host.
    for text in (
        page.text,
        httpx.get(f"{url}/static/app.js").text,
        httpx.get(f"{url}/static/app.css").text,
    ):
        assert "http://" not in text.replace("http://127.0.0.1", "")
        assert "//cdn" not in text and "fonts.googleapis" not in text


# ----------------------------------------------------------------------------- chat completions


def test_openai_client_plain(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model="qa", messages=user(HEADLINE))
    assert response.model == "qa"
    assert response.object == "chat.completion"
    message = response.choices[0].message
    assert response.choices[0].finish_reason == "stop"
    extra = message.model_extra or {}
    citations = extra["citations"]
    assert citations and all(set(c) == CITATION_KEYS for c in citations)
    assert any(c["doc_id"].startswith("001_") for c in citations)
    assert extra["answered"] is True
    assert extra["rewritten_question"] is None
    content = message.content or ""
    assert "[" in content and any(f"[{c['n']}]" in content for c in citations)
    # A client that ignores `citations` still sees where the answer comes from.
    assert "\n\nSources:\n" in content
    assert f"[{citations[0]['n']}] {citations[0]['title']} ({citations[0]['published']})" in content
    assert response.usage is not None
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )
    assert response.usage.completion_tokens > 0


def test_openai_client_stream(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="qa", messages=user(HEADLINE))
    chunks = list(client.chat.completions.create(model="qa", messages=user(HEADLINE), stream=True))
    assert len(chunks) > 3
    assert all(c.model == "qa" and c.object == "chat.completion.chunk" for c in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    # The concatenated deltas are exactly the checked answer and its sources list.
    assert content == plain.choices[0].message.content
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    delta_extra = last.choices[0].delta.model_extra or {}
    citations = delta_extra["citations"]
    assert citations == (last.model_extra or {})["citations"]
    assert citations == (plain.choices[0].message.model_extra or {})["citations"]
    assert any(c["doc_id"].startswith("001_") for c in citations)
    assert delta_extra["answered"] is True
    assert any(f"[{c['n']}]" in content for c in citations)
    assert last.usage is not None and last.usage.completion_tokens > 0
    # The model's raw text came first, as drafts, before any checked content.
    drafts = [(c.choices[0].delta.model_extra or {}).get("draft") for c in chunks if c.choices]
    assert any(drafts)


def test_accepts_underlying_model_name(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model="extractive", messages=user(HEADLINE))
    assert response.model == "qa"


def test_unknown_model_is_404(client: openai.OpenAI, url: str) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-5", messages=user(HEADLINE))
    error = assert_error(
        httpx.post(f"{url}/v1/chat/completions", json={"model": "gpt-5", "messages": user("x")}),
        404,
        "model",
    )
    assert error["code"] == "model_not_found"


def test_two_turn_conversation(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="qa", messages=user("Who is Andrey Belousov?"))
    messages: list[Any] = [
        {"role": "user", "content": "Who is Andrey Belousov?"},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "What did he say about terrorism?"},
    ]
    second = client.chat.completions.create(model="qa", messages=messages)
    extra = second.choices[0].message.model_extra or {}
    assert "Belousov" in extra["rewritten_question"]
    solidarity = "Russia stands in complete solidarity with India against terrorism"
    assert any(solidarity in c["quote"] for c in extra["citations"]), extra["citations"]
    assert solidarity in (second.choices[0].message.content or "")

    chunks = list(client.chat.completions.create(model="qa", messages=messages, stream=True))
    final = chunks[-1].choices[0].delta.model_extra or {}
    assert "Belousov" in final["rewritten_question"]
    assert any(solidarity in c["quote"] for c in final["citations"])


def test_unanswerable_question(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="qa", messages=user("What is the capital of Peru?")
    )
    extra = response.choices[0].message.model_extra or {}
    assert extra["answered"] is False
    assert extra["citations"] == []
    assert response.choices[0].message.content == CANNOT_ANSWER


def test_system_message_and_content_parts(url: str) -> None:
    body = {
        "model": "qa",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": HEADLINE}]},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "k": 3,
    }
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["citations"]


# ----------------------------------------------------------------------------- plain API


def test_api_ask_shape(url: str, assistant: Assistant) -> None:
    response = httpx.post(f"{url}/api/ask", json={"question": HEADLINE}, timeout=120)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == ASK_JSON_KEYS == set(assistant.ask(HEADLINE).to_dict())
    assert body["answered"] is True
    assert all(set(c) == CITATION_KEYS for c in body["citations"])
    assert any(c["doc_id"].startswith("001_") for c in body["citations"])

    limited = httpx.post(f"{url}/api/ask", json={"question": HEADLINE, "k": 2}, timeout=120)
    assert limited.status_code == 200
    assert 1 <= len(limited.json()["passages"]) <= 2


def test_api_ask_choices(url: str) -> None:
    body = {
        "question": "Who did Rajnath Singh meet in Qingdao?",
        "choices": ["Viktor Khrenin", "Angela Merkel"],
    }
    response = httpx.post(f"{url}/api/ask", json=body, timeout=120)
    assert response.status_code == 200, response.text
    assert set(response.json()) >= ASK_JSON_KEYS


def test_article(url: str) -> None:
    answer = httpx.post(f"{url}/api/ask", json={"question": HEADLINE}, timeout=120).json()
    cite = answer["citations"][0]
    article = httpx.get(f"{url}/api/articles/{cite['doc_id']}")
    assert article.status_code == 200
    body = article.json()
    assert body["title"] == cite["title"]
    assert body["published"] == cite["published"]
    assert body["text"][cite["start"] : cite["end"]] == cite["quote"]
    assert {"source", "url", "text", "segments"} <= set(body)
    assert_error(httpx.get(f"{url}/api/articles/no_such_article"), 404)


def test_concurrent_requests_share_one_assistant(url: str) -> None:
    questions = [HEADLINE, "Who is Andrey Belousov?", "What is Operation Sindoor?"] * 4

    def ask(question: str) -> dict[str, Any]:
        response = httpx.post(f"{url}/api/ask", json={"question": question}, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(ask, questions))
    for question, answer in zip(questions, answers, strict=True):
        assert answer["question"] == question
    assert answers[0]["answer"] == answers[3]["answer"] == answers[6]["answer"]


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
    ("ask-choices-not-strings", ASK, {"question": HEADLINE, "choices": [1]}, 400, "choices"),
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


# ----------------------------------------------------------------------------- auth


def test_auth_required_when_key_set(auth_url: str) -> None:
    assert_error(httpx.get(f"{auth_url}/v1/models"), 401)
    wrong = httpx.get(f"{auth_url}/v1/models", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401)
    assert wrong.headers["www-authenticate"] == "Bearer"
    basic = httpx.get(f"{auth_url}/v1/models", headers={"Authorization": f"Basic {SECRET}"})
    assert_error(basic, 401)
    for path in ("/api/articles/001_b56badeed06a7e90",):
        assert_error(httpx.get(f"{auth_url}{path}"), 401)
    assert_error(httpx.post(f"{auth_url}/api/ask", json={"question": HEADLINE}), 401)
    ok = httpx.get(f"{auth_url}/v1/models", headers={"Authorization": f"Bearer {SECRET}"})
    assert ok.status_code == 200
    asked = httpx.post(
        f"{auth_url}/api/ask",
        json={"question": HEADLINE},
        headers={"Authorization": f"Bearer {SECRET}"},
        timeout=120,
    )
    assert asked.status_code == 200


def test_auth_leaves_page_and_health_open(auth_url: str) -> None:
    for path in ("/", "/static/app.js", "/static/app.css", "/healthz"):
        assert httpx.get(f"{auth_url}{path}").status_code == 200, path


def test_auth_with_openai_client(auth_url: str) -> None:
    bad = openai.OpenAI(base_url=f"{auth_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="qa", messages=user(HEADLINE))
    good = openai.OpenAI(base_url=f"{auth_url}/v1", api_key=SECRET, max_retries=0, timeout=120)
    response = good.chat.completions.create(model="qa", messages=user(HEADLINE))
    assert (response.choices[0].message.model_extra or {})["citations"]


def test_no_auth_when_key_unset(url: str) -> None:
    assert httpx.get(f"{url}/v1/models").status_code == 200


# ----------------------------------------------------------------------------- host guard


def test_serve_refuses_public_host_without_flag(fake_settings: Settings) -> None:
    with pytest.raises(QAError, match="--public"):
        serve(fake_settings, "0.0.0.0", 0, allow_public=False)
    with pytest.raises(QAError, match="--public"):
        check_host("192.168.1.10", allow_public=False)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_host(host, allow_public=False)
    check_host("0.0.0.0", allow_public=True)


# ----------------------------------------------------------------------------- scripted models


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


def test_stream_content_is_the_checked_answer(fake_settings: Settings) -> None:
    """A raw answer with an unsupported sentence: drafts carry the raw text, content only the
    checked answer, so an OpenAI client that concatenates deltas shows the checked text."""
    raw = (
        "Khrenin said that India is a significant focus of Belarus's foreign policy [1]. "
        "The moon is made of green cheese and purple dragons [2]."
    )
    assistant = Assistant(fake_settings, llm=FakeLLM([raw]))
    with serve_in_thread(create_app(assistant)) as base:
        plain = httpx.post(f"{base}/v1/chat/completions", json={"messages": user(HEADLINE)})
        assert plain.status_code == 200, plain.text
        streamed = httpx.post(
            f"{base}/v1/chat/completions", json={"messages": user(HEADLINE), "stream": True}
        )
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
    chunks = sse_chunks(streamed)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    drafts = "".join(d.get("draft", "") for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    message = plain.json()["choices"][0]["message"]
    assert drafts == raw
    assert content == message["content"]
    assert "green cheese" not in content
    final = deltas[-1]
    assert final["citations"] == chunks[-1]["citations"] == message["citations"]
    assert content == message["content"].split("\n\nSources:\n")[0] + sources_text_of(message)
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def sources_text_of(message: dict[str, Any]) -> str:
    from qa.types import Citation

    return sources_text([Citation(**c) for c in message["citations"]])


def test_error_after_stream_started(fake_settings: Settings) -> None:
    assistant = Assistant(fake_settings, llm=FailingLLM())
    with serve_in_thread(create_app(assistant)) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIError, match="went away"):
            list(client.chat.completions.create(model="qa", messages=user(HEADLINE), stream=True))
        plain = httpx.post(f"{base}/v1/chat/completions", json={"messages": user(HEADLINE)})
        assert plain.status_code == 200  # generate() works; only the stream fails


def test_slow_model_does_not_block_other_requests(fake_settings: Settings) -> None:
    assistant = Assistant(fake_settings, llm=SlowLLM())
    with serve_in_thread(create_app(assistant)) as base:
        slow = threading.Thread(
            target=httpx.post,
            args=(f"{base}/api/ask",),
            kwargs={"json": {"question": HEADLINE}, "timeout": 30},
        )
        slow.start()
        time.sleep(0.3)
        started = time.perf_counter()
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert time.perf_counter() - started < 0.5
        slow.join()


def test_no_index_is_503(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={"paths.index": str(tmp_path / "none"), "embedding.model": "fake"}
    )
    assistant = Assistant(settings, llm=FakeLLM())
    with serve_in_thread(create_app(assistant)) as base:
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "no index"
        error = assert_error(httpx.post(f"{base}/api/ask", json={"question": HEADLINE}), 503)
        assert error["code"] == "no_index" and "qa ingest" in error["message"]
        for stream in (False, True):
            body = {"messages": user(HEADLINE), "stream": stream}
            assert_error(httpx.post(f"{base}/v1/chat/completions", json=body), 503)
