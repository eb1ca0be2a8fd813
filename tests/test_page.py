"""The chat page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
ask through the page, watch the answer stream in, open a citation, and see a refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.assistant import Assistant
from qa.server import create_app, serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CORPUS = Path(__file__).resolve().parent.parent / "corpus"
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
            "(the browser test of the chat page needs it; .ci/run installs it)",
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
