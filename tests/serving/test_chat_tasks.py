"""Open WebUI's chores sent to model `qa` (issue #24): the recorded 0.12.4 requests
(tests/fixtures/open_webui/) are recognised and answered at once, without retrieval, in the
JSON Open WebUI parses; questions are still questions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import SECRET, sse_chunks

from qa.answering.assistant import Assistant
from qa.core.config import load_settings
from qa.core.types import Completion, Prompt
from qa.embedding.fake import FakeEmbedder
from qa.llm.fake import FakeLLM
from qa.serving import chat_tasks
from qa.serving.app import create_app, serve_in_thread

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "open_webui"
KINDS = ("title", "tags", "follow_ups", "queries")


def fixture(kind: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / f"{kind}.json").read_text(encoding="utf-8"))
    return body


def task_of(kind: str) -> chat_tasks.ChatTask:
    task = chat_tasks.detect(fixture(kind)["messages"])
    assert task is not None
    return task


def open_webui_reads(kind: str, content: str) -> Any:
    """What Open WebUI 0.12.4 makes of a reply (utils/middleware.py; follow-ups as
    utils/task.py parse_follow_ups): the text from the first "{" to the last "}" as JSON."""
    value = json.loads(content[content.find("{") : content.rfind("}") + 1])
    if kind == "follow_ups":
        items = value.get("follow_ups")
        assert isinstance(items, list) and all(isinstance(i, str) for i in items)
        return [i.strip() for i in items if i.strip() and len(i.strip()) <= 400][:5]
    return value.get(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_recorded_requests_are_recognised(kind: str) -> None:
    task = task_of(kind)
    assert task.kind == kind
    assert task.questions() == ["Who is the Russian defence minister?"]
    assert task.last_answer().startswith("**Sergei Shoigu** [1]")
    assert "> Russian Defence Minister Sergei Shoigu said" in task.last_answer()


@pytest.mark.parametrize(
    "text",
    [
        "Who is the Russian defence minister?",
        "What does '### Task:' mean in a prompt? <chat_history>",
        "### Task: tell me about the Russian defence minister",  # no history block
    ],
)
def test_questions_are_not_chores(text: str) -> None:
    assert chat_tasks.detect([{"role": "user", "content": text}]) is None


def test_the_built_in_replies() -> None:
    """Cheap and sensible: a title from the question's words, tags, follow-ups about the
    person the answer named (real spaCy), the question as the search query."""
    replies = {kind: chat_tasks.builtin(task_of(kind)) for kind in KINDS}
    assert replies["title"] == {"title": "Russian Defence Minister"}
    assert replies["tags"] == {"tags": ["News", "Russian"]}
    follow_ups = replies["follow_ups"]["follow_ups"]
    assert follow_ups[:2] == [
        "What has Sergei Shoigu said recently?",
        "What is Sergei Shoigu's background?",
    ]
    assert all("Russian" not in f for f in follow_ups)  # asked about already
    assert replies["queries"] == {"queries": ["Who is the Russian defence minister?"]}


def test_a_refusal_gets_no_follow_ups() -> None:
    answer = "I cannot answer this from the given articles."
    assert chat_tasks.follow_ups(answer, ["Who won?"]) == []


# ----------------------------------------------------------------------------- over HTTP


class RecordingLLM(FakeLLM):
    """Records every prompt; ``name`` decides whether chores may go to it."""

    def __init__(self, replies: list[str], name: str = "fake") -> None:
        super().__init__(replies)
        self.name = name


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Any]:
    """`qa serve` on loopback with no index at all: a chore that retrieved would fail."""

    def start(llm: FakeLLM) -> Any:
        settings = load_settings(overrides={"paths.index": str(tmp_path / "none")}, env={})
        assistant = Assistant(settings, embedder=FakeEmbedder(name="fake"), llm=llm)
        return serve_in_thread(create_app(assistant, SECRET))

    yield start


def post(base: str, body: dict[str, Any]) -> httpx.Response:
    # The headers Open WebUI sends (utils/headers.py get_headers_and_cookies).
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"}
    return httpx.post(f"{base}/v1/chat/completions", content=json.dumps(body), headers=headers)


@pytest.mark.parametrize("kind", KINDS)
def test_chores_over_http_skip_retrieval(serve: Any, kind: str) -> None:
    llm = RecordingLLM(["never asked"])
    with serve(llm) as base:
        started = time.perf_counter()
        response = post(base, fixture(kind))
        took = time.perf_counter() - started
        assert response.status_code == 200, response.text
        content = response.json()["choices"][0]["message"]["content"]
        assert open_webui_reads(kind, content)
        streamed = post(base, {**fixture(kind), "stream": True})
        chunks = sse_chunks(streamed)
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == content
        # The same conversation as a question needs the index, which is not there.
        question = {"model": "qa", "messages": [{"role": "user", "content": "Who is he?"}]}
        assert post(base, question).status_code == 503
    assert llm.calls == []
    assert took < 5.0


class APIModel(RecordingLLM):
    def generate(self, prompt: Prompt) -> Completion:
        self.calls.append(prompt)
        return Completion(self.replies[min(len(self.calls), len(self.replies)) - 1], "api")


def test_a_configured_api_model_writes_the_chores(serve: Any) -> None:
    llm = APIModel(['{ "title": "Shoigu on the war" }', "Sure! Here is a title."], "openai")
    with serve(llm) as base:
        first = post(base, fixture("title")).json()["choices"][0]["message"]["content"]
        second = post(base, fixture("title")).json()["choices"][0]["message"]["content"]
    assert open_webui_reads("title", first) == "Shoigu on the war"
    # A reply that is not the asked-for JSON: the built-in one instead.
    assert open_webui_reads("title", second) == "Russian Defence Minister"
    assert [p.messages[0]["content"] for p in llm.calls] == [
        fixture("title")["messages"][0]["content"]
    ] * 2
