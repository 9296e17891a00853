"""A module as committed at a git revision, to time it beside the current one in the same run.

Before/after figures then share one machine state (the same process, the same data), whatever
revision the "before" is: the last commit (`HEAD`, to measure a change in the working tree) or the
commit before an optimization.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def module_at(rev: str, path: str) -> ModuleType:
    """The module at `path` (relative to the repository root) as committed at `rev`, imported under a
    name of its own; its imports resolve to the current tree (so it must not import a module removed since)."""
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True).stdout
    spec = importlib.util.spec_from_loader(f"_baseline_{Path(path).stem}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module
