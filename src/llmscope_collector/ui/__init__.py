"""The web UI: plain ES modules and CSS in `static/`, served by the API process (no build step)."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
