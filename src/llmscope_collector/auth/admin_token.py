"""The admin token guarding the projects/keys API: from LLMSCOPE_ADMIN_TOKEN, or generated once.

A generated token is kept in `<data dir>/auth/admin-token` (mode 0600) so the operator can read it
again later; anyone who can read the data dir can read the spans anyway.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from llmscope_collector.auth import keys
from llmscope_collector.file_modes import make_private_dir

MIN_LENGTH = 16


@dataclasses.dataclass(frozen=True)
class AdminToken:
    value: str = dataclasses.field(repr=False)
    source: str  # "env", "file" or "generated"
    path: Path | None = None

    def matches(self, candidate: str) -> bool:
        return keys.same_digest(candidate, keys.digest(self.value))

    def describe(self) -> str:
        """For the start-up banner: the token itself only the first time, when it was just generated."""
        if self.source == "generated":
            return f"admin token (shown once; also saved in {self.path}): {self.value}"
        if self.source == "file":
            return f"admin token in {self.path}"
        return "admin token from LLMSCOPE_ADMIN_TOKEN"


def load_admin_token(auth_dir: Path, configured: str) -> AdminToken:
    """`configured` (the setting) wins; else the stored file; else a new token written to it."""
    if configured:
        if len(configured) < MIN_LENGTH:
            raise ValueError(f"LLMSCOPE_ADMIN_TOKEN must be at least {MIN_LENGTH} characters")
        return AdminToken(configured, "env")
    path = auth_dir / "admin-token"
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    if stored:
        return AdminToken(stored, "file", path)
    token = keys.new_admin_token()
    make_private_dir(auth_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (token + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return AdminToken(token, "generated", path)
