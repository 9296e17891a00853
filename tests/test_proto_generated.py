"""`src/llmscope_collector/_proto` is exactly what `proto/generate.py` (`nox -s proto`) makes of
every `.proto` under `proto/` today: regenerated into a temporary directory and compared file by
file, so a changed contract without regenerated code (or an edited generated file) fails here."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "src" / "llmscope_collector" / "_proto"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), str(tmp_path)], check=True, cwd=tmp_path)
    fresh, committed = _tree(tmp_path / "llmscope_collector" / "_proto"), _tree(COMMITTED)
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"generated code differs from proto/ in {stale}: run `nox -s proto` and commit the result"
    assert any(name.endswith("_pb2.py") for name in fresh)


def test_every_proto_has_an_importable_module() -> None:
    for proto in sorted((ROOT / "proto").rglob("*.proto")):
        module = "llmscope_collector._proto." + ".".join(proto.relative_to(ROOT / "proto").with_suffix("").parts)
        generated = importlib.import_module(module + "_pb2")
        assert generated.DESCRIPTOR.name == f"llmscope_collector/_proto/{proto.relative_to(ROOT / 'proto').as_posix()}"
