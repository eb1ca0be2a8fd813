"""A damaged local index: every command says in one line what is damaged, `qa ingest` notices
and rebuilds it (before it would say there is nothing to do, it checks every checksum),
`qa ingest --rebuild` always works, and `qa status --check` verifies every file. An index a
newer `qa` wrote is named as such, and not rebuilt over by a plain `qa ingest`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import SMALL_FAKE_CONFIG, clean_cli
from index_helpers import article, make_corpus, write
from typer.testing import CliRunner

from qa.cli import app

CONFIG = SMALL_FAKE_CONFIG


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_cli(monkeypatch)
    yield


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """config.toml, corpus/ (three articles) and idx/, ingested."""
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    make_corpus(tmp_path / "corpus")
    result = qa_cli(tmp_path, "ingest")
    assert result.exit_code == 0, result.output
    return tmp_path


def qa_cli(project: Path, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--config", str(project / "config.toml")])


def live(project: Path) -> Path:
    root = project / "idx"
    return root / (root / "CURRENT").read_text().strip()


def one_error(result: Any) -> str:
    """The one error line of a failed command (no traceback)."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _overwrite(path: Path, start: int = 0, end: int | None = None) -> None:
    """Garbage over a file's bytes, its size kept (only a checksum can tell)."""
    data = bytearray(path.read_bytes())
    end = len(data) if end is None else end
    data[start:end] = bytes((i * 7 + 3) % 256 for i in range(end - start))
    path.write_bytes(bytes(data))


def _manifest(project: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    path = live(project) / "manifest.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _segment(project: Path) -> Path:
    return next(live(project).glob("seg-*"))


def _store(project: Path) -> Path:
    return next((project / "idx").glob("store-*.sqlite"))


DAMAGES: dict[str, Callable[[Path], None]] = {
    "manifest_a_list": lambda p: (live(p) / "manifest.json").write_text("[1, 2, 3]"),
    "manifest_without_docs": lambda p: _manifest(
        p, lambda m: {k: v for k, v in m.items() if k != "docs"}
    ),
    "manifest_without_build_keys": lambda p: _manifest(p, lambda m: {**m, "build": {"dim": 1}}),
    "current_not_utf8": lambda p: (p / "idx" / "CURRENT").write_bytes(b"\xff\xfe\x80gen\n"),
    "forged_schema_1": lambda p: (live(p) / "manifest.json").write_text('{"schema": 1}'),
    "store_deleted": lambda p: _store(p).unlink(),
    "store_corrupt": lambda p: _overwrite(_store(p)),
    "store_pages_corrupt": lambda p: _overwrite(_store(p), 4096, _store(p).stat().st_size - 4096),
    "vectors_truncated": lambda p: os.truncate(_segment(p) / "vectors.npy", 100),
    "faiss_corrupt": lambda p: _overwrite(_segment(p) / "dense.faiss"),
    "bm25_corrupt": lambda p: _overwrite(_segment(p) / "bm25" / "terms.json"),
}
# Damage a command may not meet: `qa articles list` reads neither FAISS nor BM25 (nor, maybe,
# the pages overwritten), plain `qa status` only the manifest and the files' sizes.
NOT_READ = {
    "articles": {"faiss_corrupt", "bm25_corrupt", "store_pages_corrupt"},
    "status": {"faiss_corrupt", "bm25_corrupt", "store_pages_corrupt", "store_corrupt"},
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_every_command_names_the_damage_in_one_line(project: Path, damage: str) -> None:
    DAMAGES[damage](project)
    expected = "schema-1 layout" if damage == "forged_schema_1" else "is damaged: "
    for args in (
        ["search", "alpaca summit"],
        ["ask", "What about the alpaca talks?", "--llm", "fake"],
        ["articles", "list"],
        ["status"],
        ["status", "--check"],
    ):
        result = qa_cli(project, *args)
        if result.exit_code == 0 and "--check" not in args:
            assert damage in NOT_READ.get(args[0], set()), result.output
            continue
        line = one_error(result)
        assert expected in line, (args, line)
        if expected == "is damaged: ":
            assert "run `qa ingest` to rebuild it" in line


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("rebuild", [False, True], ids=["ingest", "ingest_rebuild"])
def test_ingest_rebuilds_a_damaged_index(project: Path, damage: str, rebuild: bool) -> None:
    DAMAGES[damage](project)
    result = qa_cli(project, "ingest", *(["--rebuild"] if rebuild else []))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    if not rebuild:
        assert "warning: the index was damaged (" in result.output
    assert "rebuilt: " in result.stdout and "index holds 3 articles" in result.stdout
    checked = qa_cli(project, "status", "--check")
    assert checked.exit_code == 0, checked.output
    assert "match their checksums" in checked.stdout
    found = qa_cli(project, "search", "alpaca summit")
    assert found.exit_code == 0 and "Alpha summit" in found.stdout


def test_a_rebuild_keeps_the_articles_of_other_folders_when_only_vectors_are_damaged(
    project: Path,
) -> None:
    other = project / "other"
    write(other, "delta.md", article("Delta pact", "dolphin"))
    assert qa_cli(project, "ingest", str(other)).exit_code == 0
    _overwrite(_segment(project) / "dense.faiss")
    result = qa_cli(project, "ingest")  # corpus/ only: delta.md is restored from the store
    assert result.exit_code == 0, result.output
    assert "text it stored of 1 other articles" in result.output
    assert "index holds 4 articles" in result.stdout


def test_status_check_verifies_every_file(project: Path) -> None:
    result = qa_cli(project, "status", "--check")
    assert result.exit_code == 0, result.output
    manifest = json.loads((live(project) / "manifest.json").read_text())
    files = manifest["files"]
    assert {"deleted.npy", "seg-000001/dense.faiss", "seg-000001/bm25/terms.json"} <= set(files)
    assert f"{len(files)} files match their checksums" in result.stdout
    assert "the chunk store passes SQLite's check: 3 articles" in result.stdout
    # A later generation keeps the records of the segment it links, and adds its own.
    write(project / "corpus", "delta.md", article("Delta pact", "dolphin"))
    assert qa_cli(project, "ingest").exit_code == 0
    later = json.loads((live(project) / "manifest.json").read_text())["files"]
    assert later["seg-000001/dense.faiss"] == files["seg-000001/dense.faiss"]
    assert any(name.startswith("seg-000002/") for name in later)


def test_nothing_to_do_is_said_only_after_the_checksums_match(project: Path) -> None:
    unchanged = qa_cli(project, "ingest")
    assert "nothing to embed" in unchanged.stdout
    _overwrite(_segment(project) / "bm25" / "tf.npy", 200)  # same size, header intact
    result = qa_cli(project, "ingest")
    assert "seg-000001/bm25/tf.npy does not match its checksum" in result.output
    assert "rebuilt: " in result.stdout


def test_an_index_of_a_newer_qa_is_named_and_kept(project: Path) -> None:
    _manifest(project, lambda m: {**m, "schema": 99})
    for args in (["search", "alpaca"], ["status"], ["ingest"]):
        line = one_error(qa_cli(project, *args))
        assert "written by a newer qa (schema 99" in line and "--rebuild" not in line
    assert json.loads((live(project) / "manifest.json").read_text())["schema"] == 99
    # Asked for explicitly, a rebuild replaces it.
    result = qa_cli(project, "ingest", "--rebuild")
    assert result.exit_code == 0 and "written by a newer qa" in result.output
    assert qa_cli(project, "search", "alpaca").exit_code == 0
