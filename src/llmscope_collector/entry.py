"""The `llmscope` console script: the CLI, or how to install it where only the SDK is installed.

`pip install llmscope` is the SDK an application runs; the collector, API and UI need the `server`
extra. Without it, importing the CLI (or a command's modules) fails on a missing third-party
module: that becomes one line naming the install command and exit status 1, not a traceback.
"""

from __future__ import annotations

import sys

INSTALL_SERVER = "pip install 'llmscope[server]'"


def main(argv: list[str] | None = None) -> int:
    try:
        from llmscope_collector.cli import main as cli_main

        return cli_main(argv)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing == "llmscope" or missing.startswith("llmscope_"):
            raise  # one of our own packages missing is a broken install or a bug: show it
        print(
            f"llmscope: this command needs the server dependencies ({missing} is not installed); "
            f"install them with: {INSTALL_SERVER}",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
