"""qa over MCP (qa.serving.mcp), driven by the official SDK's own client: over stdio against a
`python -m qa.cli mcp` process, and over streamable HTTP against `qa serve`'s app on loopback,
each on a real index of corpus/ (the fake embedder for the quick tests, the real model and the
extractive client for the slow ones)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from cli_helpers import SMALL_FAKE_CONFIG
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from server_helpers import CITATION_KEYS, HEADLINE, SECRET

from qa.answering.assistant import Assistant
from qa.core.config import Settings, load_settings
from qa.embedding.fake import FakeEmbedder
from qa.llm.fake import FakeLLM
from qa.serving.app import create_app, serve_in_thread
from qa.web.feeds import reindex

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "corpus"
OUTLET = "Daijiworld Media Network"  # the one article of corpus/ that names its outlet
TOOLS = {"search", "ask", "list_articles", "read_article"}
# A record of a .jsonl file: its id has a "#", written %23 in its resource URI.
RECORD = {
    "id": "k1",
    "title": "Walrus census",
    "date": "2025-06-20",
    "source": "Polar Post",
    "text": "The walrus census counted 412 walruses on the northern shore this June.",
}
ENV = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

Session = Callable[[ClientSession], Awaitable[None]]


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """corpus/ and one .jsonl record, indexed with the fake embedder; config.toml beside."""
    folder = tmp_path_factory.mktemp("mcp-project")
    shutil.copytree(CORPUS, folder / "corpus")
    (folder / "corpus" / "feed.jsonl").write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    (folder / "config.toml").write_text(SMALL_FAKE_CONFIG, encoding="utf-8")
    reindex(project_settings(folder), FakeEmbedder(name="fake"))
    return folder


def project_settings(folder: Path) -> Settings:
    return load_settings(folder / "config.toml", env={})


def over_stdio(config: Path, check: Session, *args: str) -> None:
    """Run ``check`` on a session with `python -m qa.cli mcp --config config ARGS`."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qa.cli", "mcp", "--config", str(config), *args],
        env=ENV,
        cwd=str(config.parent),
    )

    async def main() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await check(session)

    anyio.run(main)


@asynccontextmanager
async def http_session(url: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def over_http(url: str, check: Session, key: str = SECRET) -> None:
    async def main() -> None:
        async with http_session(url, {"Authorization": f"Bearer {key}"}) as session:
            await check(session)

    anyio.run(main)


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def tool_error(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith(f"{tool}: ") and "\n" not in text, text
    return text


async def check_citations(session: ClientSession, answer: dict[str, Any]) -> None:
    """Every citation names a passage and quotes its article verbatim at its offsets."""
    assert answer["answered"] and answer["citations"], answer
    numbers = {p["n"] for p in answer["passages"]}
    for citation in answer["citations"]:
        assert set(citation) == CITATION_KEYS
        assert citation["n"] in numbers and f"[{citation['n']}]" in answer["answer"]
        article = await call(session, "read_article", id=citation["doc_id"])
        assert article["text"][citation["start"] : citation["end"]] == citation["quote"]


# ----------------------------------------------------------------------------- shared checks


async def tools_search_and_articles(session: ClientSession) -> None:
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():  # typed: a JSON schema in and out, read-only
        assert tool.output_schema and tool.input_schema["type"] == "object"
        assert tool.annotations is not None and tool.annotations.read_only_hint
    assert tools["search"].input_schema["properties"]["k"]["anyOf"][0]["minimum"] == 1

    found = await call(session, "search", query="Khrenin India Belarus", k=3)
    assert 1 <= len(found["passages"]) <= 3
    first = found["passages"][0]
    assert {"doc_id", "title", "published", "source", "url", "text", "start", "end"} <= set(first)
    assert [p["n"] for p in found["passages"]] == list(range(1, len(found["passages"]) + 1))

    mine = await call(session, "search", query="Rajnath Singh", sources=[OUTLET.upper()], k=5)
    assert mine["passages"] and {p["source"] for p in mine["passages"]} == {OUTLET}
    dated = await call(session, "search", query="Rajnath", since="2025-06-27", until="2025-06-30")
    assert dated["passages"] and all(
        "2025-06-27" <= p["published"] <= "2025-06-30" for p in dated["passages"]
    )
    assert dated["filters"]["since"] == "2025-06-27"
    early = await call(session, "search", query="Khrenin", as_of="2025-06-01", k=10)
    assert {p["published"] for p in early["passages"]} == {""}  # only the undated had appeared

    listed = await call(session, "list_articles", limit=2)
    assert listed["count"] == 6 and len(listed["articles"]) == 2
    everything = (await call(session, "list_articles"))["articles"]
    record = next(a for a in everything if a["id"] == "feed#k1")
    assert record["uri"] == "qa://articles/feed%23k1" and record["source"] == "Polar Post"
    article = await call(session, "read_article", id="feed#k1")
    assert article["text"] == RECORD["text"] and article["published"] == "2025-06-20"

    templates = (await session.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["qa://articles/{+doc_id}"]
    contents = (await session.read_resource(record["uri"])).contents
    assert contents[0].mime_type == "text/markdown"
    assert contents[0].text.startswith("# Walrus census")  # type: ignore[union-attr]
    assert RECORD["text"] in contents[0].text  # type: ignore[union-attr]


async def bad_arguments(session: ClientSession) -> None:
    """Each mistake is a one-line tool error naming it; the server answers on afterwards."""
    assert "'k'" in await tool_error(session, "search", query="Khrenin", k=0)
    assert "'k'" in await tool_error(session, "ask", question="Who?", k=101)
    assert "as_of must be a date" in await tool_error(session, "ask", question="x", as_of="soon")
    assert "since must be a date" in await tool_error(session, "search", query="x", since="1/2/25")
    assert "is after until" in await tool_error(
        session, "search", query="x", since="2025-07-01", until="2025-06-01"
    )
    unknown = await tool_error(session, "search", query="x", sources=["Nowhere Times"])
    assert "'nowhere times'" in unknown and "'polar post'" in unknown  # names the known ones
    assert "'nowhere'" in await tool_error(session, "list_articles", sources=["Nowhere"])
    assert "missing required parameter: 'query'" in await tool_error(session, "search")
    assert "the question is empty" in await tool_error(session, "ask", question="  ")
    assert "no article with id 'nope'" in await tool_error(session, "read_article", id="nope")
    assert "'limit'" in await tool_error(session, "list_articles", limit=0)
    with pytest.raises(MCPError, match="no article with id 'nope'"):
        await session.read_resource("qa://articles/nope")
    unknown_tool = await session.call_tool("delete_everything", {})
    assert unknown_tool.is_error
    # Still serving.
    assert (await call(session, "search", query="Khrenin", k=1))["passages"]


async def fake_answer(session: ClientSession) -> None:
    answer = await call(session, "ask", question=HEADLINE, as_of="2025-07-01")
    assert answer["filters"]["as_of"] == "2025-07-01"
    await check_citations(session, answer)


# ----------------------------------------------------------------------------- stdio


def test_stdio_tools_search_articles_and_resources(project: Path) -> None:
    over_stdio(project / "config.toml", tools_search_and_articles)


def test_stdio_bad_arguments_are_tool_errors(project: Path) -> None:
    over_stdio(project / "config.toml", bad_arguments)


def test_stdio_ask_with_a_scripted_model(project: Path) -> None:
    over_stdio(project / "config.toml", fake_answer, "--llm", "fake")


def test_stdio_writes_only_protocol_to_stdout(project: Path, tmp_path: Path) -> None:
    """Raw JSON-RPC lines in; every line out is a JSON-RPC message, errors included."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": "Khrenin", "k": 0}},
        },
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": "Khrenin", "k": 1}},
        },
    ]
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "mcp", "--config", str(project / "config.toml")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, env=ENV,
        )  # fmt: skip
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        server.stdin.flush()
        # Calls are answered as they finish; the stream ends when stdin does.
        replies = [json.loads(server.stdout.readline()) for _ in range(3)]
        server.stdin.close()
        assert server.wait(timeout=60) == 0, log.read_text()
    assert server.stdout.read() == ""
    replies.sort(key=lambda r: r["id"])
    assert [r["id"] for r in replies] == [1, 2, 3] and all(r["jsonrpc"] == "2.0" for r in replies)
    assert replies[1]["result"]["isError"] is True
    assert replies[2]["result"]["structuredContent"]["passages"]


def test_mcp_with_a_missing_config_fails_in_one_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "qa.cli", "mcp", "--config", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith("error:") and "none.toml" in run.stderr


def test_stdio_without_an_index_says_run_qa_ingest(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[paths]\nindex = "idx"\n[embedding]\nmodel = "fake"\n')

    async def check(session: ClientSession) -> None:
        for tool, arguments in [
            ("search", {"query": "x"}),
            ("ask", {"question": "Who?"}),
            ("list_articles", {}),
            ("read_article", {"id": "a"}),
        ]:
            assert "run `qa ingest`" in await tool_error(session, tool, **arguments)

    over_stdio(config, check)


# ----------------------------------------------------------------------------- HTTP


def test_a_qa_serve_process_serves_mcp(project: Path) -> None:
    """The command itself (uvicorn runs the app's lifespan, where /mcp's sessions live)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "qa.cli", "serve", "--port", str(port), "--llm", "fake"]
    server = subprocess.Popen(
        command,
        cwd=project,
        env={**ENV, "QA_API_KEY": SECRET, "PATH": os.environ["PATH"]},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            assert server.poll() is None and time.monotonic() < deadline, "qa serve did not start"
            time.sleep(0.2)
        over_http(base, fake_answer)
        assert httpx.post(f"{base}/mcp", json={}).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def served(project: Path) -> Iterator[str]:
    """`qa serve`'s app over the project (fake embedder, scripted model), with an API key."""
    settings = project_settings(project)
    assistant = Assistant(settings, embedder=FakeEmbedder(name="fake"), llm=FakeLLM())
    with serve_in_thread(create_app(assistant, api_key=SECRET)) as base:
        yield base


def test_http_tools_answers_and_errors(served: str) -> None:
    over_http(served, tools_search_and_articles)
    over_http(served, fake_answer)
    over_http(served, bad_arguments)


def test_http_mcp_sits_behind_the_servers_guards(served: str) -> None:
    """/mcp refuses what every API route refuses: no or a wrong key, a foreign Origin, a Host
    that is not this server, a body that is not JSON."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    key = {"Authorization": f"Bearer {SECRET}", **accept}
    refusals = [
        (accept, 401, "missing API key"),
        ({**accept, "Authorization": "Bearer wrong"}, 401, "invalid API key"),
        ({**key, "Origin": "http://evil.example"}, 403, "cross-site request refused"),
        ({**key, "Host": "evil.example"}, 400, "Invalid host header"),
    ]
    for headers, status, message in refusals:
        response = httpx.post(f"{served}/mcp", json=body, headers=headers)
        assert response.status_code == status and message in response.text, response.text
    plain = httpx.post(
        f"{served}/mcp", content=json.dumps(body), headers={**key, "Content-Type": "text/plain"}
    )
    assert plain.status_code == 415
    own = httpx.post(f"{served}/mcp", json=body, headers={**key, "Origin": served})
    assert own.status_code == 200 and {t["name"] for t in own.json()["result"]["tools"]} == TOOLS

    async def without_key() -> None:
        async with http_session(served, {}):
            pass

    with pytest.raises(BaseExceptionGroup) as refused:  # the SDK's task groups wrap it
        anyio.run(without_key)
    assert refused.group_contains(MCPError)


# ----------------------------------------------------------------------------- real model


async def real_answer(session: ClientSession) -> None:
    answer = await call(session, "ask", question=HEADLINE)
    await check_citations(session, answer)
    assert "India" in answer["answer"]
    assert answer["confidence"] is None or 0.0 <= answer["confidence"] <= 1.0
    assert answer["model"] == "extractive"
    found = await call(session, "search", query="Khrenin India", k=2)
    assert "Khrenin" in found["passages"][0]["text"]


@pytest.mark.slow
def test_stdio_real_model_answers_with_checked_citations(
    corpus_index: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\nindex = "{corpus_index}"\n[llm]\nclient = "extractive"\n')
    over_stdio(config, real_answer)


@pytest.mark.slow
def test_http_real_model_answers_with_checked_citations(assistant: Assistant) -> None:
    with serve_in_thread(create_app(assistant, api_key=SECRET)) as base:
        over_http(base, real_answer)
