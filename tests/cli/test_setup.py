"""The README's test command on a fresh machine: `make test` installs Debian's Chromium for the
browser test itself when it is missing (the apt-get call is replaced by `echo` here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_test_installs_chromium_when_missing() -> None:
    done = make("browser", "CHROMIUM=no-such-browser-here", "APT_GET=echo apt-get")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "installing Debian's chromium package" in lines[0]  # it says what it does
    assert lines[1:] == ["apt-get update -qq", "apt-get install -y -qq chromium"]


def test_make_test_leaves_an_installed_browser_alone() -> None:
    done = make("browser", "CHROMIUM=sh", "APT_GET=false")
    assert (done.returncode, done.stdout) == (0, "")


def test_a_failed_install_stops_make_test_with_a_clear_message() -> None:
    done = make("browser", "CHROMIUM=no-such-browser-here", "APT_GET=false")
    assert done.returncode != 0
    assert "could not install chromium" in done.stdout


def test_the_browser_step_is_on_the_test_path() -> None:
    dry = make("-n", "test", "VENV=/nonexistent-venv-for-dry-run").stdout
    assert "command -v chromium" in dry
    assert dry.index("command -v chromium") < dry.index("pytest -q")
    # CI runs exactly the README's command; the install logic lives in one place.
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci and "apt-get" not in ci
