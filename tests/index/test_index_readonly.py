"""An index that cannot be written: read-only, it is still searched, asked and listed; a
command that would write it (`qa ingest`, `qa articles remove`), or a disk that fills during an
ingest, fails in one line and leaves the index as it was.

Root ignores permissions (the CI runs as root), so a read-only folder is made for real with a
read-only bind mount in a user namespace (`unshare -rm`), or with chmod for another user; and,
whatever the privileges, in process: `os.access` reports the folder read-only (what a read-only
mount reports) and writes there fail with EROFS.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import SMALL_FAKE_CONFIG, clean_cli
from index_helpers import article, make_corpus, write
from typer.testing import CliRunner

import qa.cli
import qa.index.store
from qa.cli import app

ROOT = Path(__file__).resolve().parents[2]
CONFIG = SMALL_FAKE_CONFIG


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clean_cli(monkeypatch)
    yield


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    make_corpus(tmp_path / "corpus")
    assert qa_cli(tmp_path, "ingest").exit_code == 0
    return tmp_path


def qa_cli(project: Path, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--config", str(project / "config.toml")])


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def one_error(output: str, code: int) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


# ----------------------------------------------------------------------------- read-only, for real


def _read_only_prefix(index: Path) -> list[str] | None:
    """A command prefix under which ``index`` is read-only even for root: a read-only bind
    mount in a new user and mount namespace. None where namespaces are not allowed."""
    if shutil.which("unshare") is None:
        return None
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    prefix = ["unshare", "-rm", "sh", "-c", script, str(index)]
    probe = subprocess.run([*prefix, "sh", "-c", f'! touch "{index}/probe"'], capture_output=True)
    return prefix if probe.returncode == 0 and not (index / "probe").exists() else None


def test_a_read_only_index_is_read_and_never_written(project: Path) -> None:
    index = project / "idx"
    config = str(project / "config.toml")
    if os.geteuid() != 0:
        prefix: list[str] | None = []
        for p in [index, *index.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
    else:
        prefix = _read_only_prefix(index)
        if prefix is None:
            pytest.skip("root without user namespaces: tested in process below only")
    before = snapshot(index)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "1000"}  # one line unwrapped

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*(prefix or []), sys.executable, "-m", "qa.cli", *args, "--config", config]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=project)

    try:
        found = run("search", "alpaca summit", "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["hits"][0]["title"] == "Alpha summit"
        asked = run("ask", "What about the alpaca talks?", "--llm", "fake", "--json")
        assert asked.returncode == 0, asked.stderr
        listed = run("articles", "list", "--json")
        assert listed.returncode == 0 and json.loads(listed.stdout)["count"] == 3
        assert run("status").returncode == 0
        write(project / "corpus", "delta.md", article("Delta pact", "dolphin"))
        for args in (["ingest"], ["ingest", "--rebuild"], ["articles", "remove", "bravo", "--yes"]):
            result = run(*args)
            line = one_error(result.stderr, result.returncode)
            assert "cannot be written" in line and "read-only" in line, line
    finally:
        for p in [index, *index.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    assert snapshot(index) == before
    assert (project / "corpus" / "bravo.md").is_file()  # put back when the index refused


# ----------------------------------------------------------------------------- in process


@pytest.fixture
def read_only(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The index folder as a read-only mount shows it to this process: access(W_OK) says no,
    and a file opened there for writing fails with EROFS."""
    index = project / "idx"
    access, opening = os.access, open

    def no_write_access(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        inside = Path(os.fspath(path)).resolve().is_relative_to(index)
        return False if inside and mode & os.W_OK else access(path, mode, *args, **kwargs)

    def read_only_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if Path(os.fspath(path)).resolve().is_relative_to(index) and set(mode) & set("wax+"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return opening(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", no_write_access)
    monkeypatch.setattr(qa.index.store, "open", read_only_open, raising=False)
    return index


def test_reading_an_index_it_may_not_write_leaves_no_file(read_only: Path, project: Path) -> None:
    before = snapshot(read_only)
    found = qa_cli(project, "search", "alpaca summit", "--json")
    assert found.exit_code == 0, found.output
    assert json.loads(found.stdout)["hits"][0]["title"] == "Alpha summit"
    assert qa_cli(project, "articles", "list").exit_code == 0
    # SQLite opened read-only (not immutable) would make -wal and -shm files beside the store,
    # which a read-only folder refuses: "unable to open database file".
    assert snapshot(read_only) == before


def test_writing_a_read_only_index_fails_in_one_line(read_only: Path, project: Path) -> None:
    write(project / "corpus", "delta.md", article("Delta pact", "dolphin"))
    result = qa_cli(project, "ingest")
    line = one_error(result.output, result.exit_code)
    assert "cannot be written (Read-only file system)" in line


# ----------------------------------------------------------------------------- a full disk


def test_a_full_disk_during_ingest_is_one_line_and_keeps_the_index(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = json.loads(qa_cli(project, "search", "alpaca summit", "--json").stdout)["hits"]
    current = (project / "idx" / "CURRENT").read_text()
    write(project / "corpus", "delta.md", article("Delta pact", "dolphin"))

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(np, "save", disk_full)  # the new segment's arrays
        result = qa_cli(project, "ingest")
    line = one_error(result.output, result.exit_code)
    assert "no space left on the device of the index" in line and "previous index is intact" in line
    assert (project / "idx" / "CURRENT").read_text() == current
    assert not list((project / "idx").glob(".tmp-gen-*"))
    assert json.loads(qa_cli(project, "search", "alpaca summit", "--json").stdout)["hits"] == before
    # Once there is room, the next ingest converges.
    result = qa_cli(project, "ingest")
    assert result.exit_code == 0 and "1 added" in result.stdout
