"""Rewrite a partition's files without some rows (deletion), crash-safely.

The same protocol as compaction (`storage.compaction`): new files are written and fsynced under
temporary names, an intent listing inputs and outputs is made durable in `<data_dir>/compaction/`,
then outputs are renamed in and inputs removed. `compaction.recover()` at start finishes or undoes
an interrupted rewrite, so a reader never sees both the old and the new file after a crash.
A rewritten flush file keeps its WAL range in its name and metadata, so replay still skips it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pyarrow as pa

from llmscope_collector.durable_io import replace_durably, write_durably
from llmscope_collector.file_modes import make_private_dir
from llmscope_collector.storage.compaction import _Intent, _roll_forward
from llmscope_collector.storage.layout import COMPACTION_DIR

_RANGED = re.compile(r"^(part-[0-9a-f]{16}-[0-9a-f]{16}-)[0-9a-f]{12}\.parquet$")


def _new_name(name: str) -> str:
    ranged = _RANGED.match(name)
    if ranged:
        return f"{ranged.group(1)}{uuid.uuid4().hex[:12]}.parquet"
    prefix = name.split("-", 1)[0] if "-" in name else "part"
    return f"{prefix}-{uuid.uuid4().hex}.parquet"


def replace_files(data_dir: Path, partition: Path, replacements: Mapping[Path, pa.Table | None]) -> None:
    """Replace each file of `partition` by its table (None or no rows: remove it), as one atomic step."""
    outputs: list[str] = []
    for path, table in replacements.items():
        if table is None or table.num_rows == 0:
            continue
        name = _new_name(path.name)
        write_durably(table, partition / (name + ".tmp"), row_group_size=64_000)
        outputs.append(name)
    intent = _Intent(partition=str(partition), inputs=[p.name for p in replacements], outputs=outputs)
    intents = data_dir / COMPACTION_DIR
    make_private_dir(intents)
    intent_path = intents / f"rewrite-{uuid.uuid4().hex[:16]}.json"
    replace_durably(msgspec.json.encode(intent), intent_path)
    _roll_forward(intent)
    intent_path.unlink()
