"""`python -m llmscope_sim`: run the simulated provider until SIGINT/SIGTERM.

Useful for pointing a non-Python app or a manual `curl` at a deterministic provider.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from ._server import SimulatedProvider


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmscope_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    with SimulatedProvider(seed=args.seed, host=args.host, port=args.port) as sim:
        print(f"listening on {sim.base_url}", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
