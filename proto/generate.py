"""Generate the Python modules of every `.proto` under `proto/` with grpcio-tools' protoc.

    python proto/generate.py [OUT_ROOT]     (default: src; `nox -s proto` runs this)

Modules go to `OUT_ROOT/llmscope_collector/_proto/`, mirroring `proto/` (`wal/v1/record.proto` →
`llmscope_collector._proto.wal.v1.record_pb2`, with a `.pyi` for mypy). protoc sees `proto/` under
the virtual path `llmscope_collector/_proto/`, so the imports it writes between our own files are
real package imports (a `.proto` importing another writes `import
"llmscope_collector/_proto/<path>.proto"`). The output directory is replaced as a whole:
everything in it is generated. `tests/test_proto_generated.py` regenerates into a temporary
directory and fails when the committed modules differ.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_DIR = Path(__file__).resolve().parent
PACKAGE = "llmscope_collector/_proto"
_INIT = '"""Generated from proto/ by proto/generate.py (`nox -s proto`); do not edit."""\n'


def generate(out_root: Path) -> list[Path]:
    """(Re)write the generated package under `out_root`; returns the files written."""
    sources = sorted(path.relative_to(PROTO_DIR).as_posix() for path in PROTO_DIR.rglob("*.proto"))
    target = out_root / PACKAGE
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    well_known = resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto
    args = [
        "protoc",
        f"--proto_path={PACKAGE}={PROTO_DIR}",
        f"--proto_path={well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        *(f"{PACKAGE}/{source}" for source in sources),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {', '.join(sources)}")
    for directory in [target, *(p for p in target.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").write_text(_INIT)
    return sorted(p for p in target.rglob("*") if p.is_file())


if __name__ == "__main__":
    written = generate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("src"))
    print("\n".join(str(path) for path in written))
