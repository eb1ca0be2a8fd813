"""The cores a runtime is given: those other processes leave free (qa.core.cores)."""

import os
import subprocess
import sys
import time

import pytest

from qa.core import cores
from qa.core.cores import free_cores


def test_threads_follow_the_free_cores() -> None:
    assert 1 <= free_cores() <= len(os.sched_getaffinity(0))


def test_own_work_is_not_counted_as_busy_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the sample the machine was busy 1.5 cores, 1 of them this process (loading the
    index, say): 0.5 core is busy elsewhere, so a 2-core machine still gives the model 2."""
    hz = os.sysconf("SC_CLK_TCK")
    jiffies = iter([0, int(1.5 * hz)])
    times = iter([os.times_result((0, 0, 0, 0, 0)), os.times_result((0.8, 0.2, 0, 0, 0))])
    clock = iter([0.0, 1.0])
    monkeypatch.setattr(cores, "_busy_jiffies", lambda: next(jiffies))
    monkeypatch.setattr(cores.os, "times", lambda: next(times))
    monkeypatch.setattr(cores.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(cores.time, "sleep", lambda s: None)
    monkeypatch.setattr(cores, "_affinity", lambda: 2)
    assert cores._busy_elsewhere(1.0) == pytest.approx(0.5)
    jiffies, clock = iter([0, int(1.5 * hz)]), iter([0.0, 1.0])
    times = iter([os.times_result((0, 0, 0, 0, 0)), os.times_result((0.8, 0.2, 0, 0, 0))])
    assert free_cores() == 2


def test_another_process_spinning_counts_as_busy() -> None:
    """The real /proc/stat: a child process spinning on one core is seen as busy elsewhere."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        busy = cores._busy_elsewhere(0.5)
    finally:
        child.kill()
        child.wait()
    assert busy is not None and busy >= 0.3
