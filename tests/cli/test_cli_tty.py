"""`qa` as a person and a pipe see it: run as a real process, its output on a pseudo-terminal of
a set width (tables, lines wrapped at that width) or on a pipe (never wrapped: titles, answers
and article ids whole on their line); Ctrl-C soon after start; a busy port for `qa serve`; a
project found from a subfolder."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from cli_helpers import SMALL_FAKE_CONFIG, clean_cli
from typer.testing import CliRunner

from qa.cli import app

ROOT = Path(__file__).resolve().parents[2]
# What the `qa` console script runs (`from qa.cli import main; sys.exit(main())`), with this
# checkout first on the path.
QA = [sys.executable, "-c", "import sys; from qa.cli import main; sys.exit(main())"]
TITLE = (
    "Harbour Bridge reopens after three months of cable repairs on the northern span, "
    "with traffic back to normal by the evening"
)
ARTICLE = f"""---
title: "{TITLE}"
date: 2025-06-26
source: "The Harbour Gazette of the Northern Coast"
---

The Harbour Bridge reopened on Monday after three months of repairs to the cables of its
northern span, the city's transport department said in a statement on Monday afternoon.
Engineers replaced every cable of the northern span and tested the deck under load.
The bridge carries 160,000 vehicles a day, and traffic returned to normal by the evening.
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with its config.toml and an index of one article with a long title."""
    clean_cli(monkeypatch)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "harbour-bridge-reopens-after-cable-repairs.md").write_text(
        ARTICLE, encoding="utf-8"
    )
    (tmp_path / "config.toml").write_text(SMALL_FAKE_CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["ingest"])
    assert result.exit_code == 0, result.output
    return tmp_path


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("QA_") and k != "COLUMNS"}
    return base | {"PYTHONPATH": str(ROOT), "TERM": "xterm"} | extra


def piped(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*QA, *args], cwd=cwd, env=env(), capture_output=True, text=True, timeout=120
    )


class Terminal:
    """``qa`` on a pseudo-terminal ``columns`` wide (set as the kernel reports it to programs,
    not through $COLUMNS): what a person at a terminal of that width sees."""

    def __init__(self, cwd: Path, *args: str, columns: int = 60) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [*QA, *args], cwd=cwd, env=env(), stdin=slave, stdout=slave, stderr=slave
        )
        os.close(slave)

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """The exit code and everything written, colours removed."""
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: every end of the terminal is closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif self.process.poll() is not None:
                break
        os.close(self.master)
        code = self.process.wait(timeout=10)
        return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r", "")


def test_piped_output_is_never_wrapped(project: Path) -> None:
    listed = piped(project, "articles", "list")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()  # one record a line: no header, no count
    published, source, title, doc_id = line.split("\t")
    assert (published, source, title) == (
        "2025-06-26",
        "The Harbour Gazette of the Northern Coast",
        TITLE,
    )
    assert doc_id.startswith("harbour-bridge") or len(doc_id) > 8
    status = piped(project, "status")
    assert status.returncode == 0, status.stderr
    rows = dict(line.split("\t") for line in status.stdout.splitlines())
    assert rows["articles"] == "1" and rows["vectors"].startswith("flat, ")
    assert "{" not in status.stdout  # a dict was printed as Python wrote it
    asked = piped(project, "ask", "When did the Harbour Bridge reopen?", "--llm", "extractive")
    assert asked.returncode == 0, asked.stderr
    sentence = "The Harbour Bridge reopened on Monday after three months of repairs"
    assert any(sentence in line for line in asked.stdout.splitlines()), asked.stdout
    cited = next(line for line in asked.stdout.splitlines() if line.startswith("[1] "))
    assert doc_id in cited and TITLE in cited  # the id whole, on the citation's line


def test_a_terminal_gets_tables_wrapped_at_its_width(project: Path) -> None:
    code, shown = Terminal(project, "articles", "list", columns=60).finish()
    assert code == 0, shown
    lines = shown.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 60, shown
    assert "published" in lines[0] and "article" in lines[0]
    assert "1 articles" in shown and "\t" not in shown
    doc_id = piped(project, "articles", "list").stdout.split("\t")[-1].strip()
    assert doc_id in shown  # ids are never split, even when titles wrap
    code, shown = Terminal(project, "status", columns=60).finish()
    assert code == 0 and re.search(r"articles +1\b", shown), shown
    assert max(len(line.rstrip()) for line in shown.splitlines()) <= 60, shown


def test_stream_prints_an_unchanged_answer_once(project: Path) -> None:
    done = piped(project, "ask", "When did the Harbour Bridge reopen?", "--stream")
    assert done.returncode == 0, done.stderr
    # The draft is written once; the check only took its short-answer line back (its
    # confidence is below the bar), and that is all that is said of it.
    assert done.stdout.count("the city's transport department said in a statement") == 1
    assert "the answer reads:" not in done.stdout
    assert "Withdrawn by the check: Answer: Monday [1]" in done.stdout
    assert "Sources" in done.stdout


def test_what_the_check_changed_in_a_draft() -> None:
    from qa.cli.ask import withdrawn

    draft = "Answer: Monday [1]\nIt reopened on Monday [1]. It is red [2]. Cars returned [1]."
    assert withdrawn(draft, draft) == []
    assert withdrawn(draft, "It reopened on Monday [1].  Cars returned [1].") == [
        "Answer: Monday [1]",
        "It is red [2].",
    ]
    assert withdrawn(draft, "It reopened on Monday [1]. Cars returned [2].") is None
    assert withdrawn(draft, "Cars returned [1]. It reopened on Monday [1].") is None


# While qa still starts (imports, the index opening): a quiet machine answers this fake
# question in about a second, so a later signal could find it done.
@pytest.mark.parametrize("delay", [0.2, 0.35, 0.5])
def test_ctrl_c_soon_after_start_is_one_line_and_exit_130(project: Path, delay: float) -> None:
    terminal = Terminal(project, "ask", "When did the Harbour Bridge reopen?", "--stream")
    time.sleep(delay)
    terminal.process.send_signal(signal.SIGINT)
    code, shown = terminal.finish()
    assert code == 130, shown
    assert shown.strip() == "qa: interrupted", shown
    assert "Traceback" not in shown and "KeyboardInterrupt" not in shown


def test_serve_on_a_busy_port_says_so_and_names_port(project: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = piped(project, "serve", "--port", port)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another `qa serve`?): stop it, "
        "or choose another port with --port"
    ]
    assert "uvicorn" not in done.stderr.lower() and done.stdout == ""


def test_a_subfolder_of_the_project_finds_its_config(project: Path) -> None:
    sub = project / "corpus"
    done = piped(sub, "status")
    assert done.returncode == 0, done.stderr
    assert f"{project / 'idx'}" in done.stdout and done.stderr == ""


def test_outside_any_project_qa_says_where_it_looked(project: Path, tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    done = piped(elsewhere, "status")
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"note: no config.toml in {elsewhere.resolve()} or its parents: using the defaults "
        "here (pass --config FILE or set QA_CONFIG)"
    )
    # Pointed at the project, from there: the top-level --config, or QA_CONFIG.
    done = piped(elsewhere, "--config", str(project / "config.toml"), "status")
    assert done.returncode == 0 and "articles\t1" in done.stdout, done.stderr
    done = subprocess.run(
        [*QA, "status"],
        cwd=elsewhere,
        env=env(QA_CONFIG=str(project / "config.toml")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "articles\t1" in done.stdout, done.stderr
