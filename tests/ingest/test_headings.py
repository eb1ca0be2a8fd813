"""Subheadings end a sentence: a news page's <h2> over a paragraph, through the real reader
(trafilatura), cleaner, chunker and sentence splitters, is never read (nor quoted, nor
answered) as part of the paragraph's first sentence, while hard-wrapped prose stays whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import SMALL_FAKE_CONFIG, clean_cli
from typer.testing import CliRunner

from qa.cli import app
from qa.core.types import DocInfo, Hit
from qa.embedding.fake import FakeEmbedder
from qa.ingest import read_paths
from qa.ingest.chunk import chunk_document
from qa.ingest.clean import heading_segments, is_heading
from qa.text.evidence import split_sentences
from qa.text.sentences import passage_sentences

HEADING = "Strengthening the Defence Partnership: Indo-Russian Relations in Focus"
PAGE = f"""<!doctype html><html><head>
<title>Rajnath Singh Meets Russian Counterpart in Qingdao</title>
<meta name="date" content="2025-06-26"></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>Rajnath Singh Meets Russian Counterpart in Qingdao</h1>
<p>In a significant strategic engagement on the sidelines of the Shanghai Cooperation
Organisation Defence Ministers' Meeting in Qingdao, China, Raksha Mantri Rajnath Singh held a
bilateral meeting with Russian Defence Minister Andrey Belousov.</p>
<h2>{HEADING}</h2>
<p>During the meeting, Minister Belousov reiterated Russia's deep-rooted defence ties with
India, describing the relationship as one that has stood the test of time. He emphasized
Moscow's unwavering support for India's sovereignty.</p>
<h3>Context: India's Defence Modernisation Drive</h3>
<p>India's ongoing military transformation includes new procurement of air defence systems
and joint production of equipment with partners.</p>
</article><footer>Share this article</footer></body></html>
"""
WRAPPED = """---
title: "Harbour Bridge reopens"
date: 2025-06-26
---

The Harbour Bridge reopened on Monday after three months of repairs
to the cables of its northern span, the city's transport department said
in a statement. Engineers replaced every cable of the span
and tested the deck under load.
"""


def test_headings_of_a_real_page_are_found_and_prose_lines_are_not(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "bridge.md").write_text(WRAPPED, encoding="utf-8")
    docs = {d.id: d for d in read_paths([tmp_path]).documents}
    page, bridge = docs["page"], docs["bridge"]
    found = [page.text[s:e] for s, e in sorted(heading_segments(page.text, page.segments))]
    assert found == [HEADING, "Context: India's Defence Modernisation Drive"]
    assert heading_segments(bridge.text, bridge.segments) == frozenset()  # hard-wrapped prose
    assert is_heading("## Results", "")  # a Markdown heading is one wherever it stands
    assert not is_heading("The minister said", "it would rain.")  # continues in lower case
    assert not is_heading("Prices rose again.", "Analysts expect more increases this year.")


def test_a_heading_ends_its_sentence_in_chunks_and_extracted_sentences(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    [doc] = read_paths([tmp_path]).documents
    [chunk] = chunk_document(doc, FakeEmbedder().count_tokens, max_tokens=200, overlap_tokens=20)
    assert f"Belousov.\n\n{HEADING}\n\nDuring the meeting" in chunk.text
    sentences = [chunk.text[s:e] for s, e in passage_sentences(chunk.text)]
    assert HEADING in sentences
    assert any(s.startswith("During the meeting, Minister Belousov") for s in sentences)
    hit = Hit(chunk=chunk, doc=DocInfo(doc.id, doc.title), score=1.0, rank=1)
    extracted = [s.text for s in split_sentences([hit])]
    assert not any("Focus During" in s or "Drive India" in s for s in extracted), extracted
    # The chunk still covers the article exactly where it did: only the joins changed.
    assert (chunk.start, chunk.end) == (doc.segments[0][0], doc.segments[-1][1])


def test_an_answer_from_a_page_with_headings_quotes_no_heading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_cli(monkeypatch)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "page.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "config.toml").write_text(SMALL_FAKE_CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest"]).exit_code == 0
    done = runner.invoke(
        app, ["ask", "What did Minister Belousov reiterate during the meeting?", "--json"]
    )
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert answer["answered"] and answer["citations"]
    assert "During the meeting, Minister Belousov reiterated" in answer["answer"]
    quoted = " ".join(c["quote"] for c in answer["citations"]) + answer["answer"]
    assert "Focus" not in quoted and "Drive" not in quoted
