"""Article and model text reaches the terminal without its control sequences: an article that
clears the screen, retitles the window or paints colours is printed as plain text by `qa search`,
`qa ask`, `qa articles list` and `qa articles show`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import qa.cli
from qa.cli import app
from qa.text.words import PrintableStream, printable, printable_json

CONFIG = """
[paths]
corpus = "articles"
index = "idx"

[embedding]
model = "fake"

[retrieval]
min_dense_score = -1.0
"""

HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x1b[31m"
# YAML's own escapes (\e is ESC, \a is BEL) carry the same sequences into the title.
ARTICLE = f"""---
title: "Harbour\\e[2J\\e]0;pwned\\a\\e[31m Bridge\\u202e reopens"
date: 2025-06-26
---

The Harbour Bridge reopened on Monday{HOSTILE} after three months of repairs.
Engineers replaced the cables of the northern span.\x9b2J The bridge carries 160,000\u202e vehicles
a day.\x1b]8;;http://evil.example\x1b\\ Traffic returned to normal by the evening.\x1b[0m
"""


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(qa.cli.err, "width", 1000)
    monkeypatch.setattr(qa.cli.out, "width", 1000)
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "bridge.md").write_text(ARTICLE, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "articles"), "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "index holds 1 articles" in " ".join(result.stdout.split())
    return path


def _clean(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output and "\x9b" not in output
    assert "\u202e" not in output  # right-to-left override: the line would read backwards
    assert "pwned" not in output and "evil.example" not in output


def test_printable_strips_sequences_and_keeps_text() -> None:
    assert printable(f"a{HOSTILE}b\r\n\tc\x9d0;t\x9c\x00d") == "ab\n\tcd"
    assert printable("café – “quoted” 日本") == "café – “quoted” 日本"


@pytest.mark.parametrize(
    "args",
    [
        ["search", "Harbour Bridge repairs"],
        ["ask", "When did the Harbour Bridge reopen?", "--llm", "extractive"],
        ["ask", "When did the Harbour Bridge reopen?", "--llm", "extractive", "--stream"],
        ["articles", "list"],
    ],
)
def test_article_control_sequences_never_reach_the_terminal(cfg: Path, args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    _clean(result.stdout)
    assert "Harbour" in result.stdout and "Bridge" in result.stdout


def test_articles_show_prints_the_text_without_control_sequences(cfg: Path) -> None:
    listed = CliRunner().invoke(app, ["articles", "list", "--config", str(cfg), "--json"])
    doc_id = json.loads(listed.stdout)["articles"][0]["id"]
    result = CliRunner().invoke(app, ["articles", "show", doc_id, "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    _clean(result.stdout)
    assert "Engineers replaced the cables" in result.stdout
    # --json keeps the text as stored: JSON escapes control characters itself.
    raw = CliRunner().invoke(app, ["articles", "show", doc_id, "--config", str(cfg), "--json"])
    assert "\x1b" not in raw.stdout and "\\u001b" in raw.stdout


def test_a_sequence_split_between_streamed_pieces_is_still_removed() -> None:
    text = f"The bridge{HOSTILE} reopened.\x1b]8;;http://evil.example\x1b\\ Done\x1b"
    for size in (1, 2, 3, 5):
        stream = PrintableStream()
        pieces = [stream.feed(text[i : i + size]) for i in range(0, len(text), size)]
        assert "".join(pieces) + stream.flush() == "The bridge reopened. Done"


@pytest.mark.parametrize(
    "args",
    [
        ["search", "Harbour Bridge repairs", "--json"],
        ["ask", "When did the Harbour Bridge reopen?", "--llm", "extractive", "--json"],
        ["articles", "list", "--json"],
    ],
)
def test_json_output_escapes_what_a_terminal_would_act_on(cfg: Path, args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    for char in ("\x9b", "\u202e", "\x1b", "\x07"):  # 8-bit CSI, right-to-left override
        assert char not in result.stdout
    # Still JSON, and the same text: the characters are there as \u escapes.
    data = json.loads(result.stdout)
    assert "\u202e" in json.dumps(data, ensure_ascii=False)
    assert "\\u202e" in result.stdout


def test_articles_show_json_keeps_the_stored_text_escaped(cfg: Path) -> None:
    listed = CliRunner().invoke(app, ["articles", "list", "--config", str(cfg), "--json"])
    doc_id = json.loads(listed.stdout)["articles"][0]["id"]
    raw = CliRunner().invoke(app, ["articles", "show", doc_id, "--config", str(cfg), "--json"])
    assert "\x9b" not in raw.stdout and "\u202e" not in raw.stdout
    assert "\\u009b2J" in raw.stdout and "160,000\\u202e vehicles" in raw.stdout
    assert "\x9b2J" in json.loads(raw.stdout)["text"]


def test_printable_json_escapes_only_control_characters() -> None:
    document = json.dumps({"t": "a\x9bb\u202ec – “d” 日本\u200f"}, ensure_ascii=False)
    safe = printable_json(document)
    assert safe == '{"t": "a\\u009bb\\u202ec – “d” 日本\u200f"}'
    assert json.loads(safe) == json.loads(document)
