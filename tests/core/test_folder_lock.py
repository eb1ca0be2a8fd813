"""The folder lock excludes other threads and other processes, and leaves no file behind."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from qa.core.locks import folder_lock


def test_threads_take_the_lock_one_after_the_other(tmp_path: Path) -> None:
    events: list[str] = []
    inside = threading.Event()

    def holder() -> None:
        with folder_lock(tmp_path / "f"):
            events.append("first in")
            inside.set()
            time.sleep(0.3)
            events.append("first out")

    thread = threading.Thread(target=holder)
    thread.start()
    inside.wait(5)
    with folder_lock(tmp_path / "f"):
        events.append("second in")
    thread.join()
    assert events == ["first in", "first out", "second in"]
    assert list((tmp_path / "f").iterdir()) == []  # no lock file left in the folder


def test_another_process_waits_for_the_lock(tmp_path: Path) -> None:
    folder, log = tmp_path / "f", tmp_path / "log"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from qa.core.locks import folder_lock\n"
            "with folder_lock(Path(sys.argv[1])):\n"
            "    Path(sys.argv[2]).write_text('held')\n"
            "    time.sleep(0.5)\n"
            "    Path(sys.argv[2]).write_text('released')\n",
            str(folder),
            str(log),
        ]
    )
    deadline = time.monotonic() + 30
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    with folder_lock(folder):
        assert log.read_text() == "released"
    assert child.wait(30) == 0
