"""The optional C extensions: the native OTLP decoder (src/llmscope_collector/processors/_otlp_native.c),
the canonical JSON of content messages (processors/_canonical_json.c, used by processors/messages.py),
the decoded rows' Arrow columns (processors/_arrow_rows.c, used by processors/decode.py via arrow_native.py),
a span's canonical GenAI row by its plan (processors/_genai_plan.c, used by processors/normalize.py),
the stitcher's per-row window loops (processors/_stitch_window.c, used by processors/stitch.py)
and the dedupe windows' key table (storage/_key_window.c, used by storage/dedupe.py).

Everything else is declared in pyproject.toml. The extensions are optional: where one cannot be
built (no C compiler, no Python headers) the install still succeeds, with a note, and the
collector runs its pure-Python path for it (same results, more CPU per span; `processors/native.py`
says which OTLP decoder it runs).
"""

from __future__ import annotations

import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _optional(module: str, package: str = "processors") -> Extension:
    """An optional C extension of `llmscope_collector.<package>`, built from `<module>.c` beside it."""
    return Extension(
        f"llmscope_collector.{package}.{module}",
        [f"src/llmscope_collector/{package}/{module}.c"],
        extra_compile_args=["-O2", "-Werror=implicit-function-declaration"] if sys.platform != "win32" else [],
        optional=True,
    )


class OptionalBuildExt(build_ext):
    """`build_ext` that turns any build failure into a note: the pure-Python path is used instead."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all: distutils raises before building anything
            _note(exc)

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            _note(exc)


def _note(exc: BaseException) -> None:
    print(
        f"NOTE: one of llmscope's C extensions was not built ({exc}); the collector will run "
        "its pure-Python path instead (same results, more CPU per span). Install a C compiler and the Python "
        "headers (Debian: gcc python3-dev) and reinstall to build it.",
        file=sys.stderr,
    )


setup(
    ext_modules=[
        _optional("_otlp_native"),
        _optional("_canonical_json"),
        _optional("_arrow_rows"),
        _optional("_genai_plan"),
        _optional("_stitch_window"),
        _optional("_key_window", "storage"),
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
