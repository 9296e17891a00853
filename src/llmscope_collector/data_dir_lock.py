"""One collector per data dir: two processes appending to one WAL would corrupt it.

An exclusive `flock` on `<data_dir>/.lock`; the kernel drops it when the process dies, even on
SIGKILL, so a crashed collector never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from llmscope_collector.file_modes import PRIVATE_FILE, make_private_dir
from llmscope_collector.settings import SettingsError

LOCK_FILE = ".lock"


class DataDirInUse(SettingsError):
    """Another live process holds the data dir."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        make_private_dir(self._path.parent)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DataDirInUse(
                f"data dir {self._path.parent} is in use by pid {holder}; stop it or pass another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
