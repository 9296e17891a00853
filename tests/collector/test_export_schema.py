"""The export schema is versioned: its columns are recorded per version (`export_schema.json`), and
a change to the exported columns without a new `EXPORT_VERSION` fails here, as does a version whose
columns docs/export.md does not document.

After an intended change: raise `EXPORT_VERSION` in `src/llmscope_collector/query/export.py`, record
the new version's columns with

    python -m tests.collector.test_export_schema --record

document them in docs/export.md under `## Version N`, and review `git diff`. A recorded version is
never rewritten (`--record` refuses): files exported under it keep meaning what they meant.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from llmscope_collector.query.export import EXPORT_VERSION, LEVELS, export_schema

GOLDEN = Path(__file__).with_name("export_schema.json")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "export.md"


def _type(type_: pa.DataType) -> str:
    """A type as text, list items unnamed (Arrow calls them `item`, Parquet `element`)."""
    if pa.types.is_list(type_):
        return f"list<{_type(type_.value_type)}>"
    if pa.types.is_struct(type_):
        return "struct<" + ", ".join(f"{f.name}: {_type(f.type)}" for f in type_) + ">"
    if pa.types.is_map(type_):
        return f"map<{_type(type_.key_type)}, {_type(type_.item_type)}>"
    return str(type_)


def describe() -> dict[str, Any]:
    """The current export columns: per level, and the column content adds to span rows."""
    out: dict[str, Any] = {
        level: [[f.name, _type(f.type), f.nullable] for f in export_schema(level)] for level in LEVELS
    }
    plain = set(export_schema("spans").names)
    with_content = export_schema("spans", content=True)
    out["spans_content"] = [[f.name, _type(f.type), f.nullable] for f in with_content if f.name not in plain]
    return out


def _recorded() -> dict[str, Any]:
    return dict(json.loads(GOLDEN.read_text()))


def test_exported_columns_are_those_recorded_for_their_version() -> None:
    recorded = _recorded()
    version = str(EXPORT_VERSION)
    assert version in recorded, (
        f"export schema version {version} is not recorded: run `python -m tests.collector.test_export_schema "
        "--record` and document its columns in docs/export.md"
    )
    assert describe() == recorded[version], (
        f"the exported columns changed but EXPORT_VERSION is still {version}: raise it in query/export.py, "
        "record the new version (`python -m tests.collector.test_export_schema --record`) and document it in "
        "docs/export.md"
    )
    assert sorted(map(int, recorded)) == list(range(1, EXPORT_VERSION + 1))  # no version skipped or from the future


def test_every_version_and_column_is_documented() -> None:
    docs = DOCS.read_text()
    sections = re.split(r"^## ", docs, flags=re.MULTILINE)
    for version, levels in _recorded().items():
        section = next((s for s in sections if s.startswith(f"Version {version}")), None)
        assert section is not None, f"docs/export.md has no `## Version {version}` section"
        documented = set(re.findall(r"^\| `([a-z_0-9]+)`", section, flags=re.MULTILINE))
        for level, columns in levels.items():
            missing = [name for name, _, _ in columns if name not in documented]
            assert not missing, f"docs/export.md, version {version}, {level}: {missing} not in a column table"
    assert "x-llmscope-export-version" in docs and "llmscope.export_version" in docs


def _dump(recorded: dict[str, Any]) -> str:
    """JSON with a line per column, so a diff shows each column added, removed or changed."""
    versions = []
    for version, levels in sorted(recorded.items(), key=lambda kv: int(kv[0])):
        parts = []
        for level, columns in levels.items():
            rows = ",\n".join(f"      {json.dumps(c)}" for c in columns)
            parts.append(f'    "{level}": [\n{rows}\n    ]')
        versions.append(f'  "{version}": {{\n' + ",\n".join(parts) + "\n  }")
    return "{\n" + ",\n".join(versions) + "\n}\n"


def record() -> int:
    recorded = _recorded() if GOLDEN.exists() else {}
    version = str(EXPORT_VERSION)
    current = describe()
    if version in recorded and recorded[version] != current:
        print(f"version {version} is recorded with other columns: raise EXPORT_VERSION first", file=sys.stderr)
        return 1
    recorded[version] = current
    GOLDEN.write_text(_dump(recorded))
    print(f"{GOLDEN}: version {version} recorded")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(record())
