"""The chat page in Chromium at 1280×800: the newest answer stays in view above the sticky
question box while it streams and once it is done (a refusal too), and Stop leaves a neutral
note, not an error. The browser and helpers are those of tests/serving/test_page.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_page import HEADLINE, TIMEOUT_MS, ask, browser, url  # noqa: F401 (fixtures)

from qa.answering.assistant import Assistant
from qa.core.types import Completion, Prompt
from qa.llm.fake import FakeLLM
from qa.serving.app import create_app, serve_in_thread

pytestmark = pytest.mark.slow

VIEWPORT = {"width": 1280, "height": 800}
# A long reply, cited on every sentence so the check keeps it: taller than the window.
SENTENCE = "Khrenin said that India is a significant focus within Belarus's foreign policy [1]. "
LONG_REPLY = SENTENCE * 24
# Where the newest answer ends, and where the sticky question box begins, in the window.
GEOMETRY = """() => {
  const turns = document.querySelectorAll('li.turn.assistant');
  const turn = turns[turns.length - 1].getBoundingClientRect();
  const box = document.getElementById('ask-form').getBoundingClientRect();
  return {bottom: turn.bottom, top: turn.top, boxTop: box.top, height: innerHeight};
}"""


class SlowLLM(FakeLLM):
    """Writes its reply a word every ``delay`` seconds, as a local model would."""

    def __init__(self, reply: str, delay: float) -> None:
        super().__init__(reply)
        self.delay = delay

    def stream(self, prompt: Prompt) -> Iterator[str | Completion]:
        for piece in super().stream(prompt):
            if isinstance(piece, str):
                time.sleep(self.delay)
            yield piece


@pytest.fixture()
def slow_page(browser: Any, assistant: Assistant) -> Iterator[Any]:  # noqa: F811
    """The page at 1280×800 over the real index, with a model that takes seconds to write."""
    slow = Assistant(assistant.settings, embedder=assistant.embedder, llm=SlowLLM(LONG_REPLY, 0.02))
    with serve_in_thread(create_app(slow)) as base:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base)
        yield page
        context.close()
        assert errors == [], errors


def assert_newest_answer_in_view(page: Any) -> dict[str, float]:
    where = page.evaluate(GEOMETRY)
    # Its end is above the question box (not under it) and inside the window.
    assert where["bottom"] <= where["boxTop"] + 0.5, where
    assert where["bottom"] > 0, where
    return where


def send(page: Any, question: str) -> Any:
    before = page.locator("li.turn.assistant").count()
    page.get_by_label("Your question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    return page.locator("li.turn.assistant").nth(before)


def test_the_newest_answer_stays_in_view_while_it_streams(slow_page: Any) -> None:
    page = slow_page
    ask(page, HEADLINE)  # one answer already fills the window: the next must scroll
    turn = send(page, HEADLINE + " (again)")
    page.wait_for_function(
        "() => { const d = document.querySelectorAll('li.turn.assistant .draft');"
        " return d.length && d[d.length - 1].textContent.length > 200; }"
    )
    seen = 0
    while turn.get_attribute("aria-busy") is not None:
        assert_newest_answer_in_view(page)
        seen += 1
        page.wait_for_timeout(150)
    assert seen >= 3  # checked several times while the text was arriving
    turn.locator(".sources li").first.wait_for()
    where = assert_newest_answer_in_view(page)
    assert where["bottom"] >= where["boxTop"] - 120  # followed to its end, not left above
    assert turn.locator(".answer").inner_text().count("significant focus") == 24


def test_a_refusal_is_in_view_without_scrolling(browser: Any, url: str) -> None:  # noqa: F811
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    ask(page, HEADLINE)
    ask(page, "Who is Andrey Belousov?")
    turn = ask(page, "What is the capital of Peru?")
    cannot = turn.locator(".cannot-answer")
    assert cannot.is_visible()
    assert_newest_answer_in_view(page)
    box = page.evaluate("document.getElementById('ask-form').getBoundingClientRect().top")
    assert cannot.bounding_box()["y"] + cannot.bounding_box()["height"] <= box
    context.close()


def test_stop_shows_a_neutral_note_once(slow_page: Any) -> None:
    page = slow_page
    turn = send(page, HEADLINE)
    page.wait_for_function(
        "() => { const d = document.querySelector('li.turn.assistant .draft');"
        " return d && d.textContent.length > 40; }"
    )
    page.get_by_role("button", name="Stop").click()
    note = turn.locator(".stopped-note")
    note.wait_for()
    assert note.inner_text() == "Stopped."
    assert turn.get_attribute("aria-busy") is None
    assert turn.locator(".turn-error").is_hidden()
    assert page.locator("#error").is_hidden()  # no alert: stopping is not an error
    body = page.locator("body").inner_text()
    assert body.count("Stopped.") == 1 and "Error" not in body and "stopped…" not in body
    colour = note.evaluate("n => getComputedStyle(n).color")
    error = turn.locator(".turn-error").evaluate("n => getComputedStyle(n).color")
    assert colour != error  # not in the error's red
    assert page.get_by_role("button", name="Ask", exact=True).is_enabled()
    assert_newest_answer_in_view(page)
