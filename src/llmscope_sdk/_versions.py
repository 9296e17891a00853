"""Supported client version ranges, stated once (pyproject extras and `nox -s matrix` test both ends).

Outside the range llmscope still instruments by method shape, but says once that it is untested.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger("llmscope")

SUPPORTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    # distribution: (lowest tested, first untested major)
    "anthropic": ((0, 40), (3,)),
    "openai": ((1, 40), (4,)),
}


def parse(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def check(distribution: str) -> bool:
    """True when the installed version is inside the tested range (warns once otherwise)."""
    bounds = SUPPORTED.get(distribution)
    if bounds is None:
        return True
    import importlib.metadata  # here, not at `import llmscope`: it pulls in zipfile, email, csv...

    try:
        installed = parse(importlib.metadata.version(distribution))
    except importlib.metadata.PackageNotFoundError:
        return True
    low, high = bounds
    if low <= installed < high:
        return True
    log.warning(
        "%s %s is outside the versions llmscope is tested with (>= %s, < %s); instrumenting by shape anyway",
        distribution,
        ".".join(map(str, installed)),
        ".".join(map(str, low)),
        ".".join(map(str, high)),
    )
    return False
