"""Collector processes keep pandas out (pyarrow would import it, ~47 MB, to recognize pandas objects)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_collector_process_infers_arrow_types_without_loading_pandas() -> None:
    out = _run(
        """
        import sys
        from decimal import Decimal
        from llmscope_collector.process_memory import tune_process_memory
        tune_process_memory()
        import pyarrow as pa
        import llmscope_collector.server  # modules that build Arrow values at import
        inferred = [pa.array([1, None]).type, pa.scalar(Decimal("1.5")).type, pa.array(["a"]).type]
        print("pandas" in sys.modules, inferred)
        """
    )
    assert out == "False [DataType(int64), Decimal128Type(decimal128(2, 1)), DataType(string)]"


def test_refusing_pandas_leaves_a_process_that_already_loaded_it_alone() -> None:
    pytest.importorskip("pandas")
    out = _run(
        """
        import pandas
        from llmscope_collector.process_memory import refuse_pandas
        refuse_pandas()
        import pyarrow as pa
        print(pa.table({"a": [1, 2]}).to_pandas().shape)
        """
    )
    assert out == "(2, 1)"
