"""Renders docs/interop.md's compatibility matrix from the JSON rows the interop params wrote.

Run by every `nox -s interop` param after its tests (stdlib only, so it runs in any venv):
the table always covers every row in tests/interop/results/, each as its last run left it.
Only the text between the markers is replaced; the rest of the page is written by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
DOC = ROOT / "docs" / "interop.md"
START, END = "<!-- interop-matrix:start -->", "<!-- interop-matrix:end -->"

COLUMNS = [
    ("provider", "provider"),
    ("model", "model"),
    ("tokens", "tokens"),
    ("tokens (stream)", "stream tokens"),
    ("cache tokens", "cache tokens"),
    ("cost", "cost"),
    ("status", "error status"),
    ("stream", "stream flag / TTFT"),
    ("response id", "response id"),
    ("finish reason", "finish reason"),
    ("structure", "structure"),
    ("mixed trace", "mixed trace"),
    ("content", "content"),
    ("session", "session id"),
    ("plain trace", "plain OTel trace"),
]
SYMBOLS = {"ok": "✅", "absent": "➖", "upstream": "⚠️", "gap": "❌", "wrong": "❌"}  # noqa: RUF001
ORDER = [
    "otel-genai-openai",
    "otel-genai-anthropic",
    "otel-openai-v2",
    "openllmetry-openai",
    "openllmetry-anthropic",
    "openinference-openai",
    "openinference-anthropic",
    "litellm",
    "dspy",
    "vercel-ai",
    "plain-otel",
]


def load() -> list[dict[str, Any]]:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r["param"], len(ORDER)), r["param"]))


def render(rows: list[dict[str, Any]]) -> str:
    used = [(key, title) for key, title in COLUMNS if any(key in r["features"] for r in rows)]
    head = ["package", "version", "client", "dialect", *(title for _, title in used)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes: list[str] = []
    for row in rows:
        clients = ", ".join(f"{name} {version}" for name, version in sorted(row["clients"].items()) if version)
        cells = [f"`{row['package']}`", row["version"] or "—", clients or "—", row["dialect"]]
        for key, _ in used:
            cell = row["features"].get(key)
            if cell is None:  # not applicable (an LLM column on the plain trace, and the reverse)
                cells.append("—")
                continue
            mark = SYMBOLS[cell["outcome"]]
            for note in cell["notes"]:
                notes.append(f"{row['param']} / {key}: {note}")
                mark += f" [{len(notes)}]"
            cells.append(mark)
        lines.append("| " + " | ".join(cells) + " |")
    sdk = sorted({r["otel_sdk"] for r in rows if r.get("otel_sdk")})
    lines += [
        "",
        f"OpenTelemetry SDK {', '.join(sdk)}. ✅ shown right · ➖ the package does not send it · "  # noqa: RUF001
        "⚠️ the package sends a wrong value (stored as sent) · ❌ sent but not recognized by llmscope.",
        "",
    ]
    lines += [f"{i}. {note}" for i, note in enumerate(notes, 1)]
    extra = [(r["param"], k, v) for r in rows for k, v in r.get("info", {}).items()]
    if extra:
        lines += ["", "| param | observed | value |", "|---|---|---|"]
        lines += [f"| {param} | {key} | {value} |" for param, key, value in extra]
    return "\n".join(lines)


def main() -> int:
    rows = load()
    text = DOC.read_text() if DOC.exists() else f"# Interop\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        print(f"{DOC}: markers {START} / {END} missing", file=sys.stderr)
        return 1
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{START}\n{render(rows)}\n{END}{after}")
    print(f"{DOC.relative_to(ROOT)}: matrix of {len(rows)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
