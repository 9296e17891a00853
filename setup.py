"""The optional native OTLP decoder (src/llmscope_collector/processors/_otlp_native.c).

Everything else is declared in pyproject.toml. The extension is optional: where it cannot be
built (no C compiler, no Python headers) the install still succeeds, with a note, and the
collector decodes with its pure-Python path (`processors/native.py` says which one it runs).
"""

from __future__ import annotations

import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = Extension(
    "llmscope_collector.processors._otlp_native",
    ["src/llmscope_collector/processors/_otlp_native.c"],
    extra_compile_args=["-O2"] if sys.platform != "win32" else [],
    optional=True,
)


class OptionalBuildExt(build_ext):
    """`build_ext` that turns any build failure into a note: the pure-Python decoder is used instead."""

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
        f"NOTE: llmscope's native OTLP decoder was not built ({exc}); the collector will decode with "
        "its pure-Python path (same results, more CPU per span). Install a C compiler and the Python "
        "headers (Debian: gcc python3-dev) and reinstall to build it.",
        file=sys.stderr,
    )


setup(ext_modules=[NATIVE], cmdclass={"build_ext": OptionalBuildExt})
