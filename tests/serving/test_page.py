"""The chat page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
ask through the page, watch the answer stream in, open a citation, see a refusal, set the
as-of date and see the short answer. `make test` installs Chromium when it is missing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS

from qa.answering.assistant import Assistant
from qa.core.config import load_settings
from qa.embedding import create_embedder
from qa.index import sync
from qa.ingest import read_paths
from qa.llm.fake import FakeLLM
from qa.serving.app import create_app, serve_in_thread

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
HEADLINE = "What did Khrenin say about India?"
TIMEOUT_MS = 60_000
SECRET = "page-secret"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def url(assistant: Assistant) -> Iterator[str]:
    with serve_in_thread(create_app(assistant)) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium` "
            "(the browser test of the chat page needs it; `make test` installs it)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Any, url: str) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    # The page must not talk to any other host.
    foreign: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(url) else foreign.append(r.url))
    page.goto(url)
    yield page
    context.close()
    assert errors == [], errors
    assert foreign == [], foreign


def ask(page: Any, question: str) -> Any:
    """Type a question, send it, wait until its answer is complete; return the answer turn."""
    before = page.locator("li.turn.assistant").count()
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    turn = page.locator("li.turn.assistant").nth(before)
    turn.wait_for()
    page.wait_for_function(
        "n => { const t = document.querySelectorAll('li.turn.assistant')[n];"
        " return t && !t.hasAttribute('aria-busy'); }",
        arg=before,
    )
    return turn


def test_headline_question_streams_and_cites(page: Any) -> None:
    # Record what the page received, to check it used the streaming endpoint.
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r))
    turn = ask(page, HEADLINE)
    assert turn.locator(".turn-error").is_hidden()
    answer = turn.locator(".answer")
    assert "Khrenin" in answer.inner_text()
    assert "India" in answer.inner_text()
    assert "Sources:" not in answer.inner_text()  # shown as a list of links instead
    chat = [r for r in responses if r.url.endswith("/v1/chat/completions")]
    assert chat and chat[0].headers["content-type"].startswith("text/event-stream")
    # The browser sent its Origin, and the server's cross-site check let its own page through.
    assert chat[0].request.all_headers()["origin"] == page.url.rstrip("/")

    buttons = answer.locator("button.cite")
    assert buttons.count() >= 1
    label = buttons.first.get_attribute("aria-label") or ""
    assert label.startswith("Source ")
    assert turn.locator(".sources li").count() >= 1
    assert turn.locator(".cannot-answer").is_hidden()

    buttons.first.click()
    panel = page.locator("#source-panel")
    panel.wait_for(state="visible")
    title = panel.locator("#source-title").inner_text()
    assert "Khrenin: India a significant focus of Belarus's foreign policy" in title
    assert "2025-06-28" in panel.locator("#source-meta").inner_text()
    quote = panel.locator("#source-quote").inner_text()
    assert "Khrenin" in quote and "India" in quote

    # The quote in the context of its article, highlighted.
    panel.get_by_role("button", name="Show in the article").click()
    mark = panel.locator("#source-context mark")
    mark.wait_for()
    assert mark.inner_text().strip() == quote.strip().split("\n")[0].strip()

    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")


def test_follow_up_uses_the_conversation(page: Any) -> None:
    ask(page, "Who is Andrey Belousov?")
    turn = ask(page, "What did he say about terrorism?")
    assert "Belousov" in turn.locator(".rewritten").inner_text()
    assert "solidarity with India against terrorism" in turn.locator(".answer").inner_text()


def test_question_the_articles_cannot_answer(page: Any) -> None:
    turn = ask(page, "What is the capital of Peru?")
    cannot = turn.locator(".cannot-answer")
    assert cannot.is_visible()
    assert "do not answer" in cannot.inner_text()
    assert turn.locator("button.cite").count() == 0
    assert "cannot answer" in turn.locator(".answer").inner_text()


def test_errors_are_shown(page: Any) -> None:
    turn = ask(page, "x" * 2500)
    failure = turn.locator(".turn-error")
    assert failure.is_visible()
    assert "2000" in failure.inner_text()
    assert page.get_by_role("alert").is_visible()


def test_page_asks_for_the_api_key(browser: Any, assistant: Assistant) -> None:
    with serve_in_thread(create_app(assistant, api_key=SECRET)) as base:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base)  # the page itself needs no key
        turn = ask(page, HEADLINE)
        assert turn.locator(".turn-error").is_visible()
        key_field = page.get_by_label("Key for this server")
        assert key_field.is_visible()  # the key box opened
        assert "API key" in page.locator("#key-status").inner_text()
        key_field.fill(SECRET)
        page.get_by_role("button", name="Save").click()
        assert page.evaluate("localStorage.getItem('qa.apiKey')") == SECRET
        turn = ask(page, HEADLINE)
        assert turn.locator(".turn-error").is_hidden()
        assert turn.locator(".answer button.cite").count() >= 1
        # Stored: a reload keeps the key.
        page.reload()
        assert page.get_by_label("Key for this server", exact=False).input_value() == SECRET
        context.close()


# ----------------------------------------------------------------------------- as-of, short answer

SHORT_REPLY = (
    "Answer: Belarus [1]\n"
    "Khrenin said that India is a significant focus within Belarus's foreign policy [1]."
)


@pytest.fixture()
def scripted_page(browser: Any, assistant: Assistant) -> Iterator[Any]:
    """The page over the real index, with a model that opens its reply with a short answer."""
    # The bar at 0: the page's rendering of a short answer, whatever its confidence.
    settings = replace(
        assistant.settings, answer=replace(assistant.settings.answer, min_short_confidence=0.0)
    )
    scripted = Assistant(settings, embedder=assistant.embedder, llm=FakeLLM(SHORT_REPLY))
    with serve_in_thread(create_app(scripted)) as base:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base)
        yield page
        context.close()
        assert errors == [], errors


def sent_bodies(page: Any) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            bodies.append(json.loads(r.post_data or "{}"))
            if r.url.endswith("/v1/chat/completions")
            else None
        ),
    )
    return bodies


def test_as_of_date_defaults_to_today_and_can_be_set(scripted_page: Any) -> None:
    page = scripted_page
    bodies = sent_bodies(page)
    as_of = page.get_by_label("As of")
    assert as_of.input_value() == page.evaluate(
        "(() => { const d = new Date(); const p = (n) => String(n).padStart(2, '0');"
        " return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()); })()"
    )
    turn = ask(page, HEADLINE)
    assert bodies[-1]["as_of"] == as_of.input_value()
    assert turn.locator(".as-of-note").inner_text() == f"As of {as_of.input_value()}"

    as_of.fill("2025-06-30")
    turn = ask(page, HEADLINE)
    assert bodies[-1]["as_of"] == "2025-06-30"
    assert turn.locator(".as-of-note").inner_text() == "As of 2025-06-30"


def test_short_answer_is_shown_above_the_cited_sentences(scripted_page: Any) -> None:
    page = scripted_page
    turn = ask(page, HEADLINE)
    short = turn.locator(".short-answer")
    assert short.is_visible()
    assert re.fullmatch(r"Answer: Belarus \[1\] confidence \d\.\d\d", short.inner_text())
    # Above the explanation, with its own citation button that opens the passage.
    assert page.evaluate(
        "t => t.querySelector('.short-answer').compareDocumentPosition("
        "t.querySelector('.answer')) & Node.DOCUMENT_POSITION_FOLLOWING",
        turn.element_handle(),
    )
    short.locator("button.cite").click()
    panel = page.locator("#source-panel")
    panel.wait_for(state="visible")
    assert "Belarus" in panel.locator("#source-quote").inner_text()


def test_long_chats_send_a_bounded_history(scripted_page: Any) -> None:
    page = scripted_page
    bodies = sent_bodies(page)
    for i in range(6):
        ask(page, f"{HEADLINE} ({i})")
    assert [len(b["messages"]) for b in bodies] == [1, 3, 5, 7, 9, 9]
    assert bodies[-1]["messages"][-1]["content"] == f"{HEADLINE} (5)"


EMOJI_ARTICLE = """---
title: "Lantern festival 🎉 draws crowds"
date: 2025-07-01
---

Lantern festival 🎉 draws crowds

Crowds 🎉🎆🎇 cheered 😀 as the lanterns 🏮 rose over the river 🌊 at dusk.

The Riverside Lantern Festival drew 40,000 visitors on Saturday, the organisers said.
"""
EMOJI_QUOTE = (
    "The Riverside Lantern Festival drew 40,000 visitors on Saturday, the organisers said."
)


def test_highlight_after_emoji_marks_the_quote(browser: Any, tmp_path: Path) -> None:
    """Offsets from the server count code points; the page must mark exactly the quote even
    when astral characters (emoji: two UTF-16 units each) come before it."""
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "lanterns.md").write_text(EMOJI_ARTICLE, encoding="utf-8")
    settings = load_settings(
        overrides={"paths.index": str(tmp_path / "index"), "embedding.model": "fake"}
    )
    embedder = create_embedder(settings.embedding)
    sync(settings.index_dir, read_paths([folder]).documents, embedder, settings)
    reply = EMOJI_QUOTE.replace(" the organisers said", "") + " [1]"
    scripted = Assistant(settings, embedder=embedder, llm=FakeLLM(reply))
    with serve_in_thread(create_app(scripted)) as base:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base)
        turn = ask(page, "How many visitors did the Riverside Lantern Festival draw?")
        turn.locator(".answer button.cite").first.click()
        panel = page.locator("#source-panel")
        panel.wait_for(state="visible")
        assert "Lantern" in panel.locator("#source-title").inner_text()
        panel.get_by_role("button", name="Show in the article").click()
        mark = panel.locator("#source-context mark")
        mark.wait_for()
        marked = mark.inner_text().strip()
        context.close()
    assert "40,000 visitors" in marked
    assert marked in EMOJI_QUOTE and EMOJI_QUOTE.startswith(marked)
