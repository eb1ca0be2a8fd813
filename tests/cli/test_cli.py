"""Tests for the `qa` command line: ingest/search/status/ask with --json on a temporary index,
clear errors for bad input, an end-to-end run of the installed `qa` script, and the headline
acceptance test (`qa search "What did Khrenin say about India?"`) with the real model.

Fast tests use a temporary config.toml with ``embedding.model = "fake"``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import clean_cli
from typer.testing import CliRunner

import qa.answering.assistant
import qa.cli
import qa.embedding
from qa.cli import app
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "corpus"
QA_SCRIPT = ROOT / ".venv" / "bin" / "qa"
HEADLINE = "What did Khrenin say about India?"
KHRENIN = "India is a significant focus within Belarus"

FAKE_CONFIG = """
[paths]
corpus = "articles"
index = "idx"

[embedding]
model = "fake"

[chunking]
max_tokens = 120
overlap_tokens = 20

[retrieval]
min_dense_score = 0.05
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_cli(monkeypatch)
    yield


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(FAKE_CONFIG, encoding="utf-8")
    return path


def run(runner: CliRunner, *args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def oneline(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def indexed(runner: CliRunner, cfg: Path, tmp_path: Path) -> Path:
    """The bundled corpus ingested with the fake embedder into tmp_path/idx."""
    data = as_json(run(runner, "ingest", CORPUS, "--config", cfg, "--json"))
    assert data["added"] == 5 and data["chunks"] > 5
    return tmp_path / "idx"


# ----------------------------------------------------------------------------- happy paths


def test_ingest_search_status_json(runner: CliRunner, cfg: Path, tmp_path: Path) -> None:
    index = tmp_path / "elsewhere"
    data = as_json(run(runner, "ingest", CORPUS, "--config", cfg, "--index", index, "--json"))
    assert (data["added"], data["updated"], data["removed"], data["unchanged"]) == (5, 0, 0, 0)
    assert data["skipped"] == [] and data["articles"] == 5
    assert data["chunks_embedded"] == data["chunks"] > 5
    assert (index / "CURRENT").is_file()
    assert not (tmp_path / "idx").exists()  # --index wins over the config file

    again = as_json(run(runner, "ingest", CORPUS, "--config", cfg, "--index", index, "--json"))
    assert (again["unchanged"], again["chunks_embedded"], again["chunks"]) == (
        5,
        0,
        data["chunks"],
    )

    status = as_json(run(runner, "status", "--config", cfg, "--index", index, "--json"))
    assert status["articles"] == 5 and status["chunks"] == data["chunks"]
    assert status["build"]["embedding_model"] == "fake"
    assert status["build"]["max_tokens"] == 120
    assert status["index"] == str(index)

    found = as_json(
        run(runner, "search", HEADLINE, "--config", cfg, "--index", index, "--json", "--k", 3)
    )
    assert found["query"] == HEADLINE
    assert 1 <= len(found["hits"]) <= 3
    assert [h["rank"] for h in found["hits"]] == list(range(1, len(found["hits"]) + 1))
    first = found["hits"][0]
    assert set(first) >= {"chunk_id", "doc_id", "title", "start", "end", "text", "score"}
    assert first["chunk_id"].startswith(first["doc_id"] + ":")


def test_human_readable_output(runner: CliRunner, cfg: Path, indexed: Path) -> None:
    result = run(runner, "search", "Khrenin Belarus India", "--config", cfg)
    assert result.exit_code == 0, result.output
    assert "1. " in result.stdout and "cosine" in result.stdout
    result = run(runner, "status", "--config", cfg)
    assert result.exit_code == 0 and "articles\t5" in result.stdout
    result = run(runner, "ingest", CORPUS, "--config", cfg)
    assert result.exit_code == 0 and "nothing to embed: 5 articles unchanged" in result.stdout


def test_ask_json_with_the_fake_model(runner: CliRunner, cfg: Path, indexed: Path) -> None:
    data = as_json(run(runner, "ask", HEADLINE, "--config", cfg, "--llm", "fake", "--json"))
    assert data["question"] == HEADLINE
    assert data["model"] == "fake"
    assert data["passages"] and len(data["passages"]) <= 5
    # One shape for a passage: `qa search --json` hits are the same objects, plus ranks.
    found = as_json(run(runner, "search", HEADLINE, "--config", cfg, "--json"))
    hits = {h["chunk_id"]: h for h in found["hits"]}
    for passage in data["passages"]:
        if passage["chunk_id"] in hits:
            hit = hits[passage["chunk_id"]]
            assert set(hit) - set(passage) == {"rank", "dense_score", "bm25_score"}
            assert {k: hit[k] for k in passage if k not in ("n", "score")} == {
                k: v for k, v in passage.items() if k not in ("n", "score")
            }


def test_default_corpus_and_index_come_from_the_config(
    runner: CliRunner, cfg: Path, tmp_path: Path
) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "one.md").write_bytes((CORPUS / "001_b56badeed06a7e90.md").read_bytes())
    data = as_json(run(runner, "ingest", "--config", cfg, "--json"))
    assert data["added"] == 1
    assert (tmp_path / "idx" / "CURRENT").is_file()


def test_scope_of_an_ingest_is_its_paths(runner: CliRunner, cfg: Path, indexed: Path) -> None:
    other = indexed.parent / "other"
    other.mkdir()
    (other / "extra.txt").write_text("Extra headline\nThe extra body about ports.\n")
    data = as_json(run(runner, "ingest", other, "--config", cfg, "--json"))
    assert (data["added"], data["removed"], data["articles"]) == (1, 0, 6)


# ----------------------------------------------------------------------------- bad input


def test_nonexistent_path(runner: CliRunner, cfg: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = run(runner, "ingest", missing, "--config", cfg)
    assert result.exit_code == 1
    assert f"error: no such file or folder: {missing}" in oneline(result.stderr)
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["search", "anything"],
        ["status"],
        ["ask", "anything", "--llm", "fake"],
        ["search", "anything", "--json"],
    ],
)
def test_no_index_yet(runner: CliRunner, cfg: Path, tmp_path: Path, args: list[str]) -> None:
    result = run(runner, *args, "--config", cfg)
    assert result.exit_code == 1
    message = oneline(result.stderr)
    assert f"error: no index at {tmp_path / 'idx'}: run `qa ingest` first" in message
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_empty_and_binary_files_are_reported_and_skipped(
    runner: CliRunner, cfg: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_bytes((CORPUS / "001_b56badeed06a7e90.md").read_bytes())
    (folder / "empty.txt").write_text("")
    (folder / "blank.md").write_text("  \n\n \n")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (folder / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)

    result = run(runner, "ingest", folder, "--config", cfg, "--json")
    data = as_json(result)
    assert data["added"] == 1 and data["articles"] == 1
    skipped = {Path(p).name for p in data["skipped"]}
    assert skipped == {"empty.txt", "blank.md", "binary.txt", "picture.png"}
    message = oneline(result.stderr)
    assert f"skipped {folder / 'empty.txt'}: empty file" in message
    assert f"skipped {folder / 'blank.md'}: empty file" in message
    assert f"skipped {folder / 'binary.txt'}: binary file" in message
    assert f"skipped {folder / 'picture.png'}: unsupported file type .png" in message

    result = run(runner, "ingest", folder, "--config", cfg)
    assert result.exit_code == 0 and "4 files skipped" in result.stdout


def test_an_indexed_file_turned_corrupt_keeps_its_article(
    runner: CliRunner, cfg: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "a.md").write_bytes((CORPUS / "001_b56badeed06a7e90.md").read_bytes())
    (folder / "b.md").write_bytes((CORPUS / "002_065950e8789c274e.md").read_bytes())
    assert as_json(run(runner, "ingest", folder, "--config", cfg, "--json"))["articles"] == 2

    (folder / "b.md").write_bytes(b"\x00\x01\x02" * 100)  # overwritten with garbage
    result = run(runner, "ingest", folder, "--config", cfg, "--json")
    data = as_json(result)
    assert [Path(p).name for p in data["skipped"]] == ["b.md"]
    assert (data["removed"], data["articles"]) == (0, 2)

    (folder / "b.md").unlink()  # really gone: now it is removed
    data = as_json(run(runner, "ingest", folder, "--config", cfg, "--json"))
    assert (data["removed"], data["articles"]) == (1, 1)


def test_an_index_inside_the_corpus_folder_is_not_read_as_articles(
    runner: CliRunner, cfg: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "a.md").write_bytes((CORPUS / "001_b56badeed06a7e90.md").read_bytes())
    index = folder / "idx"
    run(runner, "ingest", folder, "--config", cfg, "--index", index)
    data = as_json(run(runner, "ingest", folder, "--config", cfg, "--index", index, "--json"))
    assert data["skipped"] == [] and (data["unchanged"], data["articles"]) == (1, 1)


def test_only_unreadable_files(runner: CliRunner, cfg: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.txt").write_text("")
    data = as_json(run(runner, "ingest", folder, "--config", cfg, "--json"))
    assert data["articles"] == 0 and [Path(p).name for p in data["skipped"]] == ["empty.txt"]


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize("question", ["", "   \n\t "])
def test_empty_question(
    runner: CliRunner, cfg: Path, indexed: Path, command: str, question: str
) -> None:
    extra = ["--llm", "fake"] if command == "ask" else []
    result = run(runner, command, question, "--config", cfg, *extra)
    assert result.exit_code == 1
    assert "error: the question is empty" in oneline(result.stderr)


@pytest.mark.parametrize("command", ["search", "ask"])
def test_oversized_question(runner: CliRunner, cfg: Path, indexed: Path, command: str) -> None:
    question = ("Khrenin India Belarus " * 1000)[:20_000]
    assert len(question) == 20_000
    extra = ["--llm", "fake"] if command == "ask" else []
    result = run(runner, command, question, "--config", cfg, *extra)
    assert result.exit_code == 1
    assert (
        "error: the question is 20000 characters long; the limit is 2000 "
        "(limits.max_question_chars)"
    ) in oneline(result.stderr)


def test_unknown_llm(runner: CliRunner, cfg: Path, indexed: Path) -> None:
    result = run(runner, "ask", HEADLINE, "--config", cfg, "--llm", "gpt-17")
    assert result.exit_code == 1
    message = oneline(result.stderr)
    assert "error: unknown model client 'gpt-17'; choose one of:" in message
    for name in ("extractive", "fake", "local", "openai"):
        assert name in message


@pytest.mark.parametrize("k", ["0", "-1", "101", "many"])
@pytest.mark.parametrize("command", ["search", "ask"])
def test_bad_k(runner: CliRunner, cfg: Path, indexed: Path, command: str, k: str) -> None:
    result = run(runner, command, HEADLINE, "--config", cfg, "--k", k)
    assert result.exit_code == 2  # a usage error, reported before anything runs
    assert "Invalid value for '--k'" in oneline(result.output)


def test_bad_config(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[retrieval]\nkk = 3\n")
    result = run(runner, "status", "--config", bad)
    assert result.exit_code == 1
    assert "error: unknown setting 'retrieval.kk' in config file; did you mean retrieval.k?" in (
        oneline(result.stderr)
    )
    result = run(runner, "status", "--config", tmp_path / "missing.toml")
    assert result.exit_code == 1 and "config file not found" in oneline(result.stderr)


def test_index_built_with_another_model(
    runner: CliRunner, cfg: Path, indexed: Path, tmp_path: Path
) -> None:
    real_cfg = tmp_path / "real.toml"
    real_cfg.write_text(f'[paths]\nindex = "{indexed}"\n')
    # Refused before the model is even loaded: the manifest check comes first.
    for args in (["search", HEADLINE], ["ingest", CORPUS]):
        result = run(runner, *args, "--config", real_cfg)
        assert result.exit_code == 1
        message = oneline(result.stderr)
        assert "embedding_model: index has 'fake'" in message
        assert "run `qa ingest --rebuild`" in message


# ----------------------------------------------------------------------------- end to end


def test_installed_script_end_to_end(cfg: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["COLUMNS"] = "1000"

    def qa_cmd(*args: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(QA_SCRIPT), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )

    done = qa_cmd("ingest", CORPUS, "--config", cfg, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 5
    done = qa_cmd("search", "Khrenin Belarus", "--config", cfg, "--json", "--k", "2")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["hits"]) == 2
    done = qa_cmd("search", "", "--config", cfg)
    assert done.returncode == 1 and "error: the question is empty" in done.stderr


# ----------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_headline_search_with_the_real_model(
    runner: CliRunner,
    real_embedder: SentenceTransformerEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The commands build their embedder from the settings; hand them the module's loaded one.
    def create(settings: Any) -> SentenceTransformerEmbedder:
        assert settings.model == "sentence-transformers/all-MiniLM-L6-v2"
        return real_embedder

    monkeypatch.setattr(qa.embedding, "create_embedder", create)
    monkeypatch.setattr(qa.answering.assistant, "create_embedder", create)
    config = ROOT / "config.toml"  # the project's own settings
    index = tmp_path / "index"
    data = as_json(run(runner, "ingest", CORPUS, "--config", config, "--index", index, "--json"))
    assert data["added"] == 5

    found = as_json(run(runner, "search", HEADLINE, "--config", config, "--index", index, "--json"))
    top3 = [(h["doc_id"], h["text"]) for h in found["hits"][:3]]
    assert any(d.startswith("001_") and KHRENIN in t for d, t in top3), top3

    result = run(runner, "search", HEADLINE, "--config", config, "--index", index)
    assert result.exit_code == 0 and "Khrenin" in result.stdout

    # An unrelated query retrieves nothing and says so.
    result = run(
        runner, "search", "How to bake sourdough bread", "--config", config, "--index", index
    )
    assert result.exit_code == 0
    assert "No passage is relevant enough to this query." in result.stdout


def test_help_shows_no_bool_and_whole_sentences(runner: CliRunner) -> None:
    wide = {"COLUMNS": "400"}  # each description on one line, where its sentences can be read
    top = runner.invoke(app, ["--help"], env=wide)
    assert top.exit_code == 0
    # The docstring's own line breaks used to cut these after "published by the".
    assert (
        "Show the passages that best match a query (dense and BM25, fused), published by the "
        "as-of date and within the given dates and sources."
    ) in top.stdout
    for command in (["ask"], ["ingest"], ["articles", "remove"], ["status"]):
        shown = runner.invoke(app, [*command, "--help"], env=wide)
        assert shown.exit_code == 0
        assert "<bool>" not in shown.stdout, shown.stdout
    ask = runner.invoke(app, ["ask", "--help"], env=wide).stdout
    assert re.search(r"--stream +print text as it is written", ask), ask
    assert re.search(r"--k +<int range>", ask)  # options that take a value keep their type


def test_serve_refuses_a_public_host_without_the_flag(runner: CliRunner) -> None:
    result = run(runner, "serve", "--host", "0.0.0.0", "--port", "9")
    assert result.exit_code == 1
    assert "--public" in result.stderr


def test_eval_reports_a_malformed_gold_file(runner: CliRunner, tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "a", "question": "Q?"}\n{oops\n', encoding="utf-8")
    result = run(runner, "eval", "--gold", gold)
    assert result.exit_code == 1
    assert "line 2: invalid JSON" in result.stderr


def test_eval_compare_needs_real_reports(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "eval", "--compare", tmp_path / "a", tmp_path / "b")
    assert result.exit_code == 1
    assert "no report at" in result.stderr


@pytest.mark.parametrize("command", ["ask", "search"])
def test_question_that_is_not_utf8(indexed: Path, cfg: Path, command: str) -> None:
    """`qa ask $'\\xff\\xfe'` from a real shell: one clear line and exit 1, no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "qa.cli", command, b"what about \xff\xfe?", "--config", cfg],
        capture_output=True,
        timeout=120,
        env=env,
        cwd=cfg.parent,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 1, stderr
    assert stderr.strip().splitlines() == [
        "error: the text is not valid UTF-8 (check the terminal's encoding)"
    ]
    assert done.stdout == b""
