"""Tests for qa.serving.app: the OpenAI-compatible chat endpoint (with the real `openai` client),
the plain API with filters and short answers, and scripted model failures, against uvicorn on
loopback. Bad requests are in test_server_requests.py, security and slow clients in
test_server_security.py."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import ASK_JSON_KEYS
from server_helpers import (
    CITATION_KEYS,
    HEADLINE,
    FailingLLM,
    SlowLLM,
    assert_error,
    build_index,
    sse_chunks,
    user,
)

from qa.answering.assistant import Assistant
from qa.answering.check import MARKER
from qa.core.config import Settings, load_settings
from qa.core.types import Filters
from qa.llm.fake import FakeLLM
from qa.llm.prompts import CANNOT_ANSWER
from qa.serving.app import STATIC, create_app, serve_in_thread, sources_text
from qa.serving.openai_shapes import md_escape


@pytest.fixture(scope="module")
def url(backend_assistant: Assistant) -> Iterator[str]:
    """The server over the corpus, on each index backend in turn."""
    with serve_in_thread(create_app(backend_assistant)) as base:
        yield base


@pytest.fixture(scope="module")
def fake_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_index(tmp_path_factory.mktemp("fake-index"), **{"embedding.model": "fake"})


@pytest.fixture()
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0, timeout=120)


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
    names = sorted(p.name for p in STATIC.iterdir() if p.suffix in (".js", ".css"))
    assert {"app.js", "app.css", "render.js"} <= set(names)
    texts = [page.text]
    for name in names:
        asset = httpx.get(f"{url}/static/{name}")
        assert asset.status_code == 200
        kind = "javascript" if name.endswith(".js") else "text/css"
        assert kind in asset.headers["content-type"]
        texts.append(asset.text)
    # Nothing on the page comes from another host.
    for text in texts:
        assert "http://" not in text.replace("http://127.0.0.1", "")
        assert "//cdn" not in text and "fonts.googleapis" not in text


def test_page_gets_the_one_citation_marker_rule(url: str) -> None:
    """The page finds [n] markers with the checker's own regex, not a copy of it."""
    page = httpx.get(f"{url}/").text
    assert f'data-marker-pattern="{html.escape(MARKER.pattern, quote=True)}"' in page
    scripts = "".join(p.read_text(encoding="utf-8") for p in STATIC.glob("*.js"))
    assert "\\[(\\d+" not in scripts and "markerPattern" in scripts


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
    # A client that ignores `citations` still sees where the answer comes from: the title,
    # date and quote of each cited passage (Markdown, server.message_format's default).
    sources = content.split("\n\n**Sources**\n\n")[1]
    first = citations[0]
    assert f"[{first['n']}] {md_escape(first['title'])} — {first['published']}" in sources
    assert f"> {md_escape(first['quote'])}" in sources
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
    # The API always says which filters it applied (as-of today by default).
    assert set(body) == ASK_JSON_KEYS | {"filters"}
    assert set(body) == set(assistant.ask(HEADLINE, filters=Filters()).to_dict())
    assert body["filters"]["as_of"] == date.today().isoformat()
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


# ----------------------------------------------------------------------------- scripted models


def test_stream_content_is_the_checked_answer(fake_settings: Settings) -> None:
    """A raw answer with an unsupported sentence: drafts carry the raw text, content only the
    checked answer, so an OpenAI client that concatenates deltas shows the checked text."""
    raw = (
        "Khrenin said that India is a significant focus of Belarus's foreign policy [1]. "
        "The moon is made of green cheese and purple dragons [2]."
    )
    assistant = Assistant(fake_settings, llm=FakeLLM([raw]))
    with serve_in_thread(create_app(assistant)) as base:
        # The bare text form (what the chat page asks for), whose sources list is rebuilt below.
        body = {"messages": user(HEADLINE), "message_format": "plain"}
        plain = httpx.post(f"{base}/v1/chat/completions", json=body)
        assert plain.status_code == 200, plain.text
        streamed = httpx.post(f"{base}/v1/chat/completions", json={**body, "stream": True})
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
    from qa.core.types import Citation

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


# ----------------------------------------------------------------------------- filters

SHORT_REPLY = (
    "Answer: Belarus [1]\n"
    "Khrenin said that India is a significant focus within Belarus's foreign policy [1]."
)


@pytest.fixture(scope="module")
def short_url(backend_assistant: Assistant) -> Iterator[str]:
    """The real index and embedder, with a model that opens its reply with a short answer."""
    assistant = backend_assistant
    # The bars at 0: these tests check how the short answer travels, not whether it clears
    # the confidence model's bar.
    settings = replace(
        assistant.settings, answer=replace(assistant.settings.answer, min_short_confidence=0.0)
    )
    scripted = Assistant(settings, embedder=assistant.embedder, llm=FakeLLM(SHORT_REPLY))
    with serve_in_thread(create_app(scripted)) as base:
        yield base


def test_api_ask_passes_the_filters_through(url: str) -> None:
    body = {
        "question": HEADLINE,
        "as_of": "2026-01-15",
        "since": "2025-01-01",
        "until": "2025-12-31",
        "sources": ["Some Outlet", " some outlet "],
    }
    response = httpx.post(f"{url}/api/ask", json=body, timeout=120)
    assert response.status_code == 200, response.text
    assert response.json()["filters"] == {
        "as_of": "2026-01-15",
        "since": "2025-01-01",
        "until": "2025-12-31",
        "sources": ["some outlet"],
    }


def test_api_ask_carries_the_short_answer(short_url: str) -> None:
    body = httpx.post(f"{short_url}/api/ask", json={"question": HEADLINE}, timeout=120).json()
    assert body["short_answer"] == "Belarus"
    n = body["short_answer_citation"]
    assert "Belarus" in body["passages"][n - 1]["text"]


def test_chat_completions_carry_filters_and_short_answer(short_url: str) -> None:
    client = openai.OpenAI(base_url=f"{short_url}/v1", api_key="x", max_retries=0, timeout=120)
    extra_body = {"as_of": "2026-01-15", "since": "2025-06-01"}
    plain = client.chat.completions.create(
        model="qa", messages=user(HEADLINE), extra_body=extra_body
    )
    message = plain.choices[0].message.model_extra or {}
    assert message["filters"] == {
        "as_of": "2026-01-15",
        "since": "2025-06-01",
        "until": None,
        "sources": [],
    }
    assert message["short_answer"] == "Belarus"
    assert message["short_answer_citation"] in {c["n"] for c in message["citations"]}
    assert 0.0 <= message["confidence"] <= 1.0

    chunks = list(
        client.chat.completions.create(
            model="qa", messages=user(HEADLINE), stream=True, extra_body=extra_body
        )
    )
    final = chunks[-1].choices[0].delta.model_extra or {}
    for field in ("filters", "short_answer", "short_answer_citation", "citations", "answered"):
        assert final[field] == message[field], field


def test_chat_completions_default_to_today(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(model="qa", messages=user(HEADLINE))
    filters = (response.choices[0].message.model_extra or {})["filters"]
    assert filters["as_of"] == date.today().isoformat()


def test_openapi_schema_comes_from_the_request_models(url: str) -> None:
    schema = httpx.get(f"{url}/openapi.json").json()
    ask = schema["components"]["schemas"]["AskRequest"]
    fields = {"question", "k", "choices", "as_of", "since", "until", "sources"}
    assert fields <= set(ask["properties"])
    assert ask["required"] == ["question"]
    chat = schema["components"]["schemas"]["ChatRequest"]
    assert {"messages", "stream", "as_of"} <= set(chat["properties"])


class BrokenLLM(FakeLLM):
    def generate(self, prompt: Any) -> Any:
        raise RuntimeError("a bug, not a user error")


def test_unexpected_error_is_a_json_500(fake_settings: Settings) -> None:
    with serve_in_thread(create_app(Assistant(fake_settings, llm=BrokenLLM()))) as base:
        response = httpx.post(f"{base}/api/ask", json={"question": HEADLINE}, timeout=60)
    error = assert_error(response, 500)
    assert error["message"] == "internal error: RuntimeError"  # no detail leaks to the caller
