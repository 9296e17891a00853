"""Allocator and import settings for the processes the collector owns (`llmscope serve` and its decode workers).

Under sustained ingest a collector allocates and frees tens of MB of Arrow buffers every flush,
from several threads. With the defaults, freed memory mostly stays in the process: Arrow's bundled
mimalloc keeps freed pages for reuse, and glibc gives every thread that allocates its own arena (up
to 8 per core), each holding on to its own high-water mark. Measured on the ingest bench (2 cores,
~28k spans/s): the main process peaked ~60 MB lower with both settings below and ingested as fast.

`pa.set_memory_pool` sets the pool of the Arrow calls made from Python only: Arrow's C++ code that
allocates on its own (the Parquet reader's buffers, Acero's group-by) keeps the library's default,
mimalloc, unless `ARROW_DEFAULT_MEMORY_POOL` says otherwise before pyarrow loads. Measured on a
compaction of 450k spans: the spill pass 326 MB RSS with mimalloc there, 234 MB without.

pyarrow imports pandas, when it is installed, the first time it infers the type of a Python value,
only to recognize pandas objects (which the collector never hands it): ~47 MB of resident memory
in every process (measured: `import pyarrow` 71 MB, then `pa.array([1])` 118 MB; the server's
process tree counts it once per decode worker too). Collector processes refuse that import, and
numpy's too where pyarrow does not need it (pyarrow 16 and later; ~14 MB: pyarrow imports it when it
is installed, and nothing in the collector uses it; `pip install 'llmscope[server]'` does not
install it, so this is also how a server install runs). pyarrow's remote filesystems (S3, GCS, Azure,
HDFS) are refused too: `pyarrow.parquet` imports `pyarrow.fs`, which loads each one it finds built
(libarrow_s3 and the AWS SDK: ~6 MB resident in every process), and pyarrow treats a refused one as
not built. The collector reads and writes local files through pyarrow; its bucket client is obstore.

`import duckdb` costs ~33 MB resident (its library's pages touched by the module's registration), and
eight query modules import it, while a collector that only ingests never queries. Collector processes
defer it: `import duckdb` binds a stand-in that imports DuckDB at its first attribute access (the
first connection, or an `except duckdb.Error` that is reached), and then is the module (`_Deferred`).

Only processes started by `llmscope` call this: an application embedding the collector keeps its
own allocator choices and its pandas.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc <malloc.h>
_ARENAS = 2
# pyarrow.fs imports each of these when built; the collector uses none (its bucket client is obstore).
_ARROW_REMOTE_FILESYSTEMS = ("pyarrow._s3fs", "pyarrow._gcsfs", "pyarrow._azurefs", "pyarrow._hdfs")
_DEFERRED = ("duckdb",)


def tune_process_memory() -> None:
    """Arrow on the system allocator (its C++ code's own allocations too, where pyarrow is not loaded
    yet), at most two glibc arenas, no pandas (nor numpy where pyarrow does without it, nor pyarrow's
    remote filesystems), DuckDB imported at first use; call before starting threads and before the
    collector's modules are imported (some build Arrow values at import). The environment variable is
    inherited by the decode workers this process starts."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    refuse_pandas()
    if _numpy_optional():
        _refuse("numpy")
    for module in _ARROW_REMOTE_FILESYSTEMS:
        _refuse(module)
    for package in _DEFERRED:
        defer_import(package)
    import pyarrow as pa  # here: after the environment and the refusals it must see

    pa.set_memory_pool(pa.system_memory_pool())
    _limit_glibc_arenas(_ARENAS)


GC_GEN0_THRESHOLD = 10_000
"""The first-generation GC threshold of the collector's processes (CPython's default is 700 net container
allocations). Decoding one request holds a few thousand containers at once (each span's attribute dicts,
rows, tuples), all freed by reference counting when the request is done; at 700 a decode worker collected
~5 times a request to find no cycles. At 10,000 it does not run in steady state (the bench's requests,
`gc.callbacks`: ~4 µs of a ~45 µs decode per span in collections before, none after)."""


def tune_gc() -> None:
    """Fewer, shorter collections in a collector process, called once its modules are imported (a decode
    worker's initializer, `llmscope serve` once its server has started). What the imports and the start
    built is moved out of the collector's generations (`gc.freeze`: never garbage, yet traversed by every
    full collection), and the first generation is collected at `GC_GEN0_THRESHOLD` net allocations.

    Measured in `llmscope serve` under the ingest bench (a 15 s window at ~36k spans/s and its drain, ~930k
    spans; `gc.callbacks` with the collecting thread's CPU time): with the defaults, 7 full collections of
    ~80 ms CPU each (up to 103 ms), every one holding the GIL (the receivers and the flush thread stop
    meanwhile), and 0.15 s in the younger two generations: ~0.8 us a span; with this, no full collection
    and 0.04 s in all."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, older, oldest)


class _Refuse(importlib.abc.MetaPathFinder):
    """Makes `import <package>` fail as if it were not installed (pyarrow then works without it).

    pyarrow's C++ type inference retries the pandas import on each call that infers a type (it caches
    only a success): one failed import, ~9 µs, per decoded request, not per span."""

    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == self.package or fullname.startswith(self.package + "."):
            raise ModuleNotFoundError(f"{self.package} is not loaded in llmscope collector processes", name=fullname)
        return None


def refuse_pandas() -> None:
    """Refuse `import pandas` in this process from now on (a no-op where pandas is already loaded)."""
    _refuse("pandas")


def refuse_openssl_hashes() -> None:
    """Refuse hashlib's OpenSSL backend (`_hashlib`) in this process: hashlib then uses CPython's own
    implementations. A decode worker's only hashes are BLAKE2b (CPython's own with or without OpenSSL, and
    the native decoder's) and the SHA-256 of score ids, yet importing `_hashlib` (through `secrets` and
    `hmac`) maps and initializes libcrypto: +3.7 MB of RSS in each worker (measured: 9.9 -> 13.6 MB for
    `import _hashlib` alone). Not in the collector's own process, whose manifests hash whole files
    (OpenSSL's SHA-256 is the fast one) and whose alert channels use `ssl`, which loads libcrypto anyway."""
    _refuse("_hashlib")


def _refuse(package: str) -> None:
    if package in sys.modules or any(isinstance(f, _Refuse) and f.package == package for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Refuse(package))


def defer_import(package: str) -> None:
    """From now on `import <package>` (not yet imported) binds a stand-in that imports it at first use."""
    if package in sys.modules or any(isinstance(f, _Deferred) and f.package == package for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Deferred(package))


class _Deferred(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `package` as a `_DeferredModule`, until the first attribute read imports the real one.

    A stand-in rather than `importlib.util.LazyLoader`: on Python 3.11 the second `import` of a lazy
    module reads its `__spec__` through the module, which loads it (eight modules import duckdb)."""

    def __init__(self, package: str) -> None:
        self.package = package
        self._lock = threading.Lock()
        self._module: ModuleType | None = None

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.package or self._module is not None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return _DeferredModule(spec.name, self)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the real module runs when first used (`load`)."""
        if isinstance(module, _DeferredModule):
            module._llmscope_ready = True

    def load(self, stand_in: ModuleType) -> ModuleType:
        """The real module, imported once; the stand-in then holds its namespace (later reads are plain)."""
        with self._lock:
            if self._module is None:
                if sys.modules.get(self.package) is stand_in:
                    del sys.modules[self.package]
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                self._module = importlib.import_module(self.package)
                vars(stand_in).update(vars(self._module))
            return self._module


class _DeferredModule(ModuleType):
    """What `import <package>` binds before the package is used: any attribute it lacks imports it."""

    def __init__(self, name: str, finder: _Deferred) -> None:
        super().__init__(name)
        self._llmscope_deferred = finder
        self._llmscope_ready = False  # the import system sets the module up first (it probes `__path__`)

    def __getattr__(self, name: str) -> object:
        if name.startswith("_llmscope_") or not self._llmscope_ready:
            raise AttributeError(name)
        return getattr(self._llmscope_deferred.load(self), name)


def _numpy_optional() -> bool:
    """pyarrow 16 and later import numpy only if it is there (15 needs it), and nothing else of ours does."""
    try:
        major = int(importlib.metadata.version("pyarrow").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return major >= 16


def release_free_memory() -> None:
    """Return the allocator's free pages to the system (glibc `malloc_trim`; elsewhere nothing).

    Called after a flush (at most once per 10 s: `pipeline.DecodeIntoParquet.write`): a flush frees the
    Arrow tables of ~10,000 spans, and glibc keeps most of what is freed inside its heaps, so the
    process's RSS stays at the highest any flush reached plus fragmentation. A trim walks the free
    lists and returns pages (~40 ms when it returns ~90 MB at the ingest bench's heap). Measured in
    docs/memory.md."""
    trim = _glibc_function("malloc_trim")
    if trim is not None:
        trim(0)


@functools.cache
def _glibc_function(name: str) -> Callable[..., int] | None:
    """A glibc function with an int argument and result; None where the C library is not glibc."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return None
    function.argtypes = [ctypes.c_int] * (2 if name == "mallopt" else 1)  # type: ignore[attr-defined]
    function.restype = ctypes.c_int  # type: ignore[attr-defined]
    return function


def _limit_glibc_arenas(arenas: int) -> None:
    mallopt = _glibc_function("mallopt")
    if mallopt is not None and mallopt(_M_ARENA_MAX, arenas) != 1:
        log.debug("mallopt(M_ARENA_MAX) refused; keeping the default arenas")
