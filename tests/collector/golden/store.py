"""Golden files: recording them, and checking the processors' current outputs against them.

A golden file is JSON lines: a header (`golden`, `cases`, `genai_prices`, `regenerate`), then one
line per case `{"id", "in", "out"}` in generation order. `in` is the input itself where it is a
small attribute map, else a digest of it (so a changed generator shows up as changed inputs).
Lines are compared as canonical JSON text (sorted keys), so NaN, -0.0, int/float and key changes
all count as differences.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.collector.golden.cases import GENERATORS, CallCase
from tests.collector.golden.outputs import OUTPUTS, jsonable, prices_digest

GOLDEN_DIR = Path(__file__).resolve().parent
REGEN = "python -m tests.collector.golden.regen"
NAMES = tuple(GENERATORS)
_INLINE_INPUTS = {"normalize"}  # small attribute maps: shown in the file as they are


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.jsonl"


def encode(line: Any) -> str:
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


def _genai_prices_version() -> str:
    return importlib.metadata.version("genai-prices")


@dataclass
class Case:
    id: str
    case: Any
    line: dict[str, Any]


def record(name: str) -> list[Case]:
    """Every case of one golden file with the line the processors give for it now."""
    output = OUTPUTS[name]
    cases = []
    for case_id, case in GENERATORS[name]():
        given = jsonable(case) if name in _INLINE_INPUTS else hashlib.sha256(repr(case).encode()).hexdigest()[:20]
        cases.append(Case(case_id, case, {"id": case_id, "in": given, "out": output(case)}))
    return cases


def write(name: str) -> int:
    """Record one golden file from the current processors; the number of cases."""
    cases = record(name)
    header = {"golden": name, "cases": len(cases), "genai_prices": _genai_prices_version(), "regenerate": _regen(name)}
    text = "".join(encode(line) + "\n" for line in [header, *(c.line for c in cases)])
    golden_path(name).write_text(text, encoding="ascii")
    return len(cases)


def _regen(name: str) -> str:
    return f"{REGEN} {name}"


def read(name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The header and each case's line (canonical JSON text) by id."""
    lines = golden_path(name).read_text(encoding="ascii").splitlines()
    header = json.loads(lines[0])
    stored = {}
    for text in lines[1:]:
        line = json.loads(text)
        stored[line["id"]] = encode(line)
    return header, stored


def check(name: str) -> None:
    """Fail, saying how to regenerate and review, when the processors' outputs differ from the golden file."""
    header, stored = read(name)
    cases = record(name)
    same_prices = header["genai_prices"] == _genai_prices_version()
    changed, skipped = [], 0
    for case in cases:
        want = stored.get(case.id)
        if not same_prices and name == "pricing" and not _comparable(case, want):
            skipped += 1
            continue
        if want != encode(case.line):
            changed.append((case, want))
    gone = sorted(set(stored) - {c.id for c in cases})
    if skipped:
        warnings.warn(
            f"{skipped} pricing cases not compared: recorded with genai-prices {header['genai_prices']}, "
            f"{_genai_prices_version()} installed (models whose price data changed, and calls answered by a "
            f"database lookup); `{_regen(name)}` records them again",
            stacklevel=2,
        )
    if changed or gone:
        raise AssertionError(_report(name, len(cases), changed, gone))


def _comparable(case: Case, want: str | None) -> bool:
    """Under another genai-prices release: a model line whose price data is unchanged, or a call priced
    by user prices only."""
    if isinstance(case.case, CallCase):
        return not case.case.db
    return want is not None and json.loads(want)["out"]["prices"] == prices_digest(case.case.provider, case.case.model)


def _report(name: str, total: int, changed: list[tuple[Case, str | None]], gone: list[str]) -> str:
    path = golden_path(name).relative_to(GOLDEN_DIR.parents[2])
    new = [c.id for c, want in changed if want is None]
    differ = [(c, want) for c, want in changed if want is not None]
    lines = [
        f"golden file {path}: {len(differ)} of {total} cases give other outputs, {len(new)} are new, {len(gone)} gone.",
        "Each differing case is a behaviour change of the processor. If the change is intended, record the file",
        f"again with `{_regen(name)}` (from the repository root), review `git diff {path}`",
        "and commit it with the change.",
    ]
    for label, ids in (("differing", [c.id for c, _ in differ]), ("new", new), ("gone", gone)):
        if ids:
            lines.append(f"{label}: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}")
    for case, want in differ[:2]:
        lines.append(f"--- {case.id}: recorded / +++ now")
        lines.extend(_diff(json.loads(want or "null"), case.line))
    return "\n".join(lines)


def _diff(want: Any, got: Any, limit: int = 40) -> list[str]:
    def pretty(value: Any) -> list[str]:
        return json.dumps(value, sort_keys=True, indent=1).splitlines()

    diff = [d for d in difflib.unified_diff(pretty(want), pretty(got), lineterm="", n=1)][2:]
    return [d[:300] for d in diff[:limit]] + (["..."] if len(diff) > limit else [])
