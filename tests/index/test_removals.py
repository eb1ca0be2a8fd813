"""A kill -9 during `qa articles remove` (issue 22, item 10): the file renamed aside
(``.NAME.md.removing``) is put back or deleted by the next writer, by what the index says.
Real removals in a child process killed with SIGKILL, a real index on disk (fake embedder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

import qa.cli
from qa.cli import app
from qa.core.config import load_settings
from qa.index import LocalIndex
from qa.ingest.corpus import removed_urls

ROOT = Path(__file__).resolve().parents[2]
URL = "https://news.example/harbour"
ARTICLE = (
    f"---\ntitle: Harbour reopens\ndate: 2025-06-02\nurl: {URL}\n---\n"
    "The harbour reopened on Monday after the storm, the port authority said.\n"
)
OTHER = "---\ntitle: Bridge opens\n---\nThe bridge opened on Tuesday, the council said.\n"

# Runs remove_article with the index write replaced by a SIGKILL of the process, before the
# real write or just after it.
KILLER = """
import os, signal, sys
from pathlib import Path
import qa.index as index_mod
from qa.index.articles import remove_article
from qa.core.config import load_settings

real = index_mod.remove

def remove(*args, **kwargs):
    if sys.argv[2] == "after":
        real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

index_mod.remove = remove
remove_article(load_settings(Path(sys.argv[1])), "harbour")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(qa.cli.err, "width", 1000)
    (tmp_path / "config.toml").write_text('[embedding]\nmodel = "fake"\n', encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "harbour.md").write_text(ARTICLE, encoding="utf-8")
    (corpus / "bridge.md").write_text(OTHER, encoding="utf-8")
    assert qa_cli(tmp_path, "ingest").exit_code == 0
    return tmp_path


def qa_cli(project: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(project / "config.toml")])


def killed_remove(project: Path, when: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-c", KILLER, str(project / "config.toml"), when],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == -9, run.stderr
    corpus = project / "corpus"
    assert not (corpus / "harbour.md").exists()
    assert (corpus / ".harbour.md.removing").exists()  # the state the issue found


def indexed(project: Path) -> list[str]:
    index = LocalIndex.open(load_settings(project / "config.toml").index_dir)
    try:
        return sorted(index.manifest["docs"])
    finally:
        index.close()


def left_behind(project: Path) -> list[str]:
    """Files renamed aside, and journal entries."""
    corpus = project / "corpus"
    parked = [p.name for p in corpus.rglob("*.removing") if p.is_file()]
    journal = corpus / ".removing"
    return sorted(parked + ([p.name for p in journal.iterdir()] if journal.is_dir() else []))


def test_killed_before_the_index_write_the_next_ingest_puts_the_file_back(
    project: Path,
) -> None:
    killed_remove(project, "before")
    result = qa_cli(project, "ingest")
    assert result.exit_code == 0, result.output
    assert "removal was interrupted before the index dropped it; restored" in (result.stderr)
    assert (project / "corpus" / "harbour.md").read_text(encoding="utf-8") == ARTICLE
    assert left_behind(project) == []
    assert indexed(project) == ["bridge", "harbour"]
    assert removed_urls(project / "corpus") == []


def test_killed_after_the_index_write_the_next_remove_deletes_the_file(project: Path) -> None:
    killed_remove(project, "after")
    assert indexed(project) == ["bridge"]
    result = qa_cli(project, "articles", "remove", "bridge", "--yes")
    assert result.exit_code == 0, result.output
    assert "removal was interrupted after the index dropped it; deleted" in (result.stderr)
    assert left_behind(project) == []
    assert removed_urls(project / "corpus") == [URL]  # remembered, as a finished remove does
    assert qa_cli(project, "ingest").exit_code == 0
    assert indexed(project) == []


def test_a_removal_that_completes_leaves_no_journal(project: Path) -> None:
    result = qa_cli(project, "articles", "remove", "harbour", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["file_deleted"] is True
    assert left_behind(project) == []
