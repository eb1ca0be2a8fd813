"""The chat message text (qa.serving.openai_shapes.message_text): what Open WebUI, LibreChat and
`llm`
show of an answer, in Markdown or the bare form, with article text that cannot become
Markdown structure."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from qa.core.config import load_settings
from qa.core.types import Answer, Chunk, Citation, DocInfo, Hit, QAError
from qa.llm.prompts import CANNOT_ANSWER
from qa.serving.openai_shapes import message_parts, message_text
from qa.serving.schemas import ChatRequest


def hit(n: int, title: str, source: str = "", url: str = "") -> Hit:
    doc = DocInfo(f"d{n}", title, "2024-03-20", source, url)
    return Hit(Chunk(f"d{n}:0", f"d{n}", 0, "text", 0, 4), doc, 1.0, n)


def cite(n: int, title: str, quote: str) -> Citation:
    return Citation(n, f"d{n}:0", f"d{n}", title, "2024-03-20", quote, 0, len(quote))


def answer(**overrides: object) -> Answer:
    fields: dict[str, object] = {
        "question": "Who is the Russian defence minister?",
        "text": "Sergei Shoigu said so [1]. He added more [1, 3].",
        "answered": True,
        "citations": (
            cite(1, "Shoigu speaks", "Sergei Shoigu said so."),
            cite(1, "Shoigu speaks", "He added\nmore."),
            cite(3, "Other", "More."),
        ),
        "passages": (
            hit(1, "Shoigu speaks", "Reuters", "https://example.com/a?x=1"),
            hit(2, "Unused"),
            hit(3, "Other", "", "javascript:alert(1)"),
        ),
        "model": "fake",
        "short_answer": "Sergei Shoigu",
        "short_citation": 1,
    }
    fields.update(overrides)
    return Answer(**fields)  # type: ignore[arg-type]


def test_markdown_short_answer_sentences_then_sources() -> None:
    assert message_text(answer()) == (
        "**Sergei Shoigu** [1]\n\n"
        "Sergei Shoigu said so [1]. He added more [1, 3].\n\n"
        "**Sources**\n\n"
        "[1] [Shoigu speaks](<https://example.com/a?x=1>) — Reuters, 2024-03-20\n"
        "> Sergei Shoigu said so.\n"
        "> He added more.\n\n"
        "[3] Other — 2024-03-20\n"  # no link: only http(s) addresses are linked
        "> More."
    )


def test_withheld_short_answer_and_refusal() -> None:
    # Below the confidence bar the short answer is empty: no bold line.
    assert message_text(answer(short_answer="", short_citation=None)).startswith("Sergei")
    refused = answer(text=CANNOT_ANSWER, answered=False, citations=(), short_answer="")
    assert message_text(refused) == CANNOT_ANSWER


def test_article_text_cannot_add_links_images_or_html() -> None:
    hostile = "![x](https://evil.example/p.png) [click](https://evil.example) <img src=x> *b*"
    shown = message_text(
        answer(
            text=f"{hostile} [1].",
            citations=(cite(1, hostile, hostile),),
            short_answer="<b>Shoigu</b>",
        )
    )
    escaped = r"\!\[x\](https://evil.example/p.png) \[click\](https://evil.example) "
    assert shown.count(escaped) == 3  # the sentence, the title and the quote
    assert r"\<img src=x\> \*b\*" in shown
    assert shown.startswith(r"**\<b\>Shoigu\</b\>** [1]")
    assert "<img" not in shown.replace(r"\<img", "")


def test_plain_form_is_the_bare_text_and_sources_lines() -> None:
    text, sources = message_parts(answer(), "plain")
    assert text == "Sergei Shoigu said so [1]. He added more [1, 3]."
    assert sources == "\n\nSources:\n[1] Shoigu speaks (2024-03-20)\n[3] Other (2024-03-20)"


def test_the_setting_and_the_request_field_are_checked() -> None:
    assert load_settings(env={}).server.message_format == "markdown"
    with pytest.raises(QAError, match=r"server\.message_format = 'html' is not one of"):
        load_settings(overrides={"server.message_format": "html"}, env={})
    messages = [{"role": "user", "content": "Who?"}]
    assert ChatRequest(messages=messages, message_format="plain").message_format == "plain"  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ChatRequest(messages=messages, message_format="html")  # type: ignore[arg-type]
