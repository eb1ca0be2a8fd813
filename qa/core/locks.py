"""One exclusive lock per folder, between processes and between threads.

The lock is taken on the folder itself (a read-only descriptor of the directory), so it leaves
no lock file behind, and each caller opens its own descriptor, so two threads of one process
exclude each other as two processes do. The kernel releases it if the holder dies.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the ``with`` block."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock
