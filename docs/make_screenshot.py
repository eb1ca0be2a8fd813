"""Write docs/images/page.png: the chat page answering the headline question from the bundled
corpus, as a reader sees it (Debian's Chromium at 1280×800, the project's own settings).

Run from the project root after `make demo` (it needs the index) with the dev extra installed
(playwright): `.venv/bin/python docs/make_screenshot.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser_helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from qa import Assistant  # noqa: E402
from qa.serving.app import create_app, serve_in_thread  # noqa: E402

QUESTION = "What did Khrenin say about India?"
OUT = ROOT / "docs" / "images" / "page.png"


def main() -> None:
    assistant = Assistant.from_config(ROOT / "config.toml")
    with serve_in_thread(create_app(assistant)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(120_000)
        page.goto(base)
        page.get_by_label("Your question").fill(QUESTION)
        page.get_by_role("button", name="Ask", exact=True).click()
        page.locator("li.turn.assistant").first.wait_for()
        # Done when the answer is no longer streaming (the page marks it busy until then).
        page.wait_for_function(
            "() => { const t = document.querySelector('li.turn.assistant');"
            " return t && !t.hasAttribute('aria-busy'); }"
        )
        # Open the first citation: the quoted passage, with its offsets in the article.
        page.locator("li.turn.assistant button", has_text="[1]").first.click()
        page.wait_for_timeout(800)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUT))
        browser.close()
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
