"""Owner-only files and directories under the data dir.

Everything there can hold prompts and answers (spans, content, the write-ahead log, quarantined
records) or secrets (keys, webhook secrets), so files are created 0600 and directories 0700, like
the key store, whatever the process umask. No dependencies: the auth store uses it too.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dir(path: Path) -> None:
    """`mkdir -p`, each directory it creates owner-only (0700)."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass


def make_private(path: Path) -> None:
    """Take group and other permissions away from an existing file or directory."""
    mode = path.stat().st_mode & 0o7777
    if mode & 0o077:
        os.chmod(path, mode & ~0o077)
