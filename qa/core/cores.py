"""How many cores a CPU-bound runtime (llama.cpp, ONNX Runtime) should use: the ones other
processes leave free. On a shared machine a runtime thread that waits for a busy core stalls
every step of the others; on an idle one a single thread leaves half the machine unused."""

from __future__ import annotations

import os
import time
from pathlib import Path


def free_cores(sample_s: float = 0.3) -> int:
    """The cores this process may use that other processes are not busy with (at least 1).

    What the others use is sampled now from /proc/stat, less this process's own CPU time: the
    load average would count this process's own work (embedding, loading) as someone else's
    and give an idle machine's model one thread of two. Elsewhere the load average is used."""
    cores = _affinity()
    busy = _busy_elsewhere(sample_s)
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:  # pragma: no cover
            busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _busy_jiffies() -> int:
    # The first line of /proc/stat: cpu user nice system idle iowait irq softirq steal ...
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]


def _busy_elsewhere(sample_s: float) -> float | None:
    """Cores' worth of CPU that other processes used over the last ``sample_s`` seconds."""
    try:
        hz = os.sysconf("SC_CLK_TCK")
        busy0, own0, t0 = _busy_jiffies(), os.times(), time.monotonic()
        time.sleep(sample_s)
        busy1, own1, t1 = _busy_jiffies(), os.times(), time.monotonic()
    except (OSError, ValueError, IndexError):
        return None
    own = (own1.user - own0.user) + (own1.system - own0.system)
    return max(0.0, ((busy1 - busy0) / hz - own) / (t1 - t0))
