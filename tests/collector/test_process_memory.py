"""Collector processes keep pandas out (pyarrow would import it, ~47 MB, to recognize pandas objects),
numpy too where pyarrow does without it, and pyarrow's remote filesystems; they put Arrow's C++
allocations on the system allocator and import DuckDB at its first use."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_collector_process_runs_arrow_without_numpy_and_on_the_system_allocator() -> None:
    """What `llmscope serve` does first: pyarrow is not loaded yet, so its C++ default pool follows the
    environment, and (pyarrow >= 16) numpy stays out; the collector's modules and a DuckDB query work."""
    out = _run(
        """
        import importlib.metadata, os, sys
        os.environ.pop("ARROW_DEFAULT_MEMORY_POOL", None)
        from llmscope_collector.process_memory import tune_process_memory
        tune_process_memory()
        import pyarrow as pa, pyarrow.parquet as pq, duckdb
        import llmscope_collector.server
        rows = pa.table({"x": [1, 2, 3]})
        total = duckdb.connect().execute("SELECT sum(x) FROM rows").fetchall()
        sink = pa.BufferOutputStream()
        pq.write_table(rows, sink)
        read = pq.read_table(pa.BufferReader(sink.getvalue()))
        numpy_out = int(importlib.metadata.version("pyarrow").split(".")[0]) < 16 or "numpy" not in sys.modules
        pool = pa.default_memory_pool().backend_name
        print(pool, os.environ["ARROW_DEFAULT_MEMORY_POOL"], total, read.num_rows, numpy_out)
        """
    )
    assert out == "system system [(6,)] 3 True"


def test_the_cli_loads_no_pyarrow_before_serve_tunes_the_process() -> None:
    """`llmscope serve` tunes the process after the CLI's modules are imported: any of them loading pyarrow
    (once `proxy_command`, through `auth`) left the server's Arrow C++ on mimalloc, with numpy and the S3,
    GCS, Azure and HDFS filesystems loaded."""
    out = _run(
        """
        import sys
        import llmscope_collector.entry, llmscope_collector.cli, llmscope_collector.__main__
        print(sorted(m for m in ("pyarrow", "numpy", "grpc", "duckdb", "litestar") if m in sys.modules))
        """
    )
    assert out == "[]"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps")
def test_llmscope_serve_maps_no_remote_filesystem_nor_numpy(tmp_path: Path) -> None:
    """The real `llmscope serve` process, from its memory map: pyarrow's S3 filesystem (and numpy, where
    pyarrow >= 16 does without it) never loaded."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmscope_collector",
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--otlp-grpc-port",
            "0",
            "--otlp-http-port",
            "0",
            "--api-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = next((line for line in proc.stdout if "OTLP/gRPC on" in line), None)
        assert banner is not None, "no banner: the server did not start"
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert "libarrow.so" in maps  # (the map is the server's, with pyarrow loaded)
    assert "_s3fs" not in maps and "libarrow_s3" not in maps
    optional = int(importlib.metadata.version("pyarrow").split(".")[0]) >= 16
    assert not optional or "_multiarray_umath" not in maps


def test_a_collector_process_answers_health_without_loading_duckdb_and_loads_it_for_a_query() -> None:
    """`llmscope serve` starts and counts its spans for `/health` (file footers) without DuckDB's ~33 MB;
    the first query imports it behind the modules' `import duckdb`, exceptions included."""
    out = _run(
        """
        import json, sys, tempfile, urllib.request
        from pathlib import Path
        from llmscope_collector.process_memory import tune_process_memory
        tune_process_memory()
        import duckdb, pyarrow as pa, pyarrow.parquet as pq
        from llmscope_collector.server import EmbeddedServer
        from llmscope_collector.settings import Settings
        data = Path(tempfile.mkdtemp())
        for day, rows in (("2026-01-02", 3), ("2026-01-03", 4)):
            part = data / "spans" / "project=default" / f"date={day}"
            part.mkdir(parents=True)
            pq.write_table(pa.table({"trace_id": ["t"] * rows}), part / "flush.parquet")
        settings = Settings(
            data_dir=data, otlp_grpc_port=0, otlp_http_port=0, api_port=0, auth="off", compaction_interval_s=0
        )
        with EmbeddedServer(settings) as server:
            with urllib.request.urlopen(server.api_url + "/health", timeout=60) as response:
                health = json.loads(response.read())
            before = "_duckdb" in sys.modules
            try:
                duckdb.connect().execute("SELECT * FROM no_such_table")
            except duckdb.CatalogException:
                caught = True
        s3 = "pyarrow._s3fs" in sys.modules
        print(health["status"], health["spans"], before, "_duckdb" in sys.modules, caught, s3)
        """
    )
    assert out == "ok 7 False True True False"


def test_a_decode_worker_is_tuned_before_it_loads_pyarrow() -> None:
    """A worker's initializer module imports no pyarrow, so the worker refuses numpy (pyarrow >= 16 would
    import it, ~14 MB a worker) and still decodes, without loading pyarrow.compute (~13 MB a worker)."""
    pytest.importorskip("numpy")
    out = _run(
        """
        import importlib, importlib.metadata
        from llmscope_collector.process_memory import tune_process_memory
        tune_process_memory()
        from llmscope_collector.processors.decode_pool import DecodePool
        from tests.collector.durability.helpers import payload
        pool = DecodePool(1)
        try:
            try:
                pool.offload(1 << 20, importlib.import_module, "numpy")
                refused = False
            except ModuleNotFoundError:
                refused = True
            batches = pool.decode([("default", payload([bytes([n]) * 8 for n in range(1, 4)]))] * 8)
            in_worker = pool.running
            compute = pool.offload(1 << 20, eval, "'pyarrow.compute' in __import__('sys').modules")
        finally:
            pool.close()
        optional = int(importlib.metadata.version("pyarrow").split(".")[0]) >= 16
        print(refused or not optional, in_worker, [b.accepted for b in batches], compute)
        """
    )
    assert out == "True True [3, 3, 3, 3, 3, 3, 3, 3] False"


def test_a_decode_worker_hashes_without_mapping_libcrypto() -> None:
    """A worker refuses hashlib's OpenSSL backend (libcrypto: ~3.7 MB of RSS a worker): after decoding it maps
    no libcrypto, and its hashes (a score id's SHA-256, the content's BLAKE2b) are those of the collector's
    process, which keeps OpenSSL."""
    out = _run(
        """
        import hashlib, sys
        from llmscope_collector.process_memory import tune_process_memory
        tune_process_memory()
        from llmscope_collector.processors.decode_pool import DecodePool
        from llmscope_collector.processors.scores import _derived_id
        from tests.collector.durability.helpers import payload
        pool = DecodePool(1)
        try:
            batches = pool.decode([("default", payload([bytes([n]) * 8 for n in range(1, 4)]))] * 8)
            maps = pool.offload(1 << 20, eval, "open('/proc/self/maps').read()")
            openssl = pool.offload(1 << 20, eval, "__import__('hashlib')._hashlib is None")
            in_worker = pool.running
            ids = pool.offload(1 << 20, _derived_id, "trace", "span", None, "name", 1)
            blake = pool.offload(1 << 20, eval, "__import__('hashlib').blake2b(b'x', digest_size=16).hexdigest()")
        finally:
            pool.close()
        here = hashlib.blake2b(b"x", digest_size=16).hexdigest(), "_hashlib" in sys.modules
        print(in_worker, [b.accepted for b in batches], "libcrypto" in maps, openssl)
        print(ids == _derived_id("trace", "span", None, "name", 1), blake == here[0], here[1])
        """
    )
    assert out.splitlines() == ["True [3, 3, 3, 3, 3, 3, 3, 3] False True", "True True True"]


def test_llmscope_serve_freezes_what_its_start_built_and_collects_young_objects_less_often(tmp_path: Path) -> None:
    """`llmscope serve` tunes its GC once the server is up: a full collection of what its imports and start
    built cost ~90 ms holding the GIL, several times a minute under load (`process_memory.tune_gc`). The
    probe stands in for the wait for a signal, so the real CLI runs until the server is up, then stops it."""
    out = _run(
        f"""
        import gc
        from llmscope_collector import cli
        from llmscope_collector.process_memory import GC_GEN0_THRESHOLD

        defaults = gc.get_threshold()
        tuned = (GC_GEN0_THRESHOLD, *defaults[1:])
        cli._wait_for_signal = lambda: print(gc.get_threshold() == tuned, gc.get_freeze_count() > 50_000)
        ports = ["--otlp-grpc-port", "0", "--otlp-http-port", "0", "--api-port", "0"]
        code = cli.main(["serve", "--data-dir", {str(tmp_path / "data")!r}, *ports])
        print(code)
        """
    )
    assert out.splitlines()[-2:] == ["True True", "0"]
