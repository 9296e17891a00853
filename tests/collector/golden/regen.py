"""Record the golden files again from the current processors.

    python -m tests.collector.golden.regen            # all of them
    python -m tests.collector.golden.regen decode     # some: normalize messages decode pricing stitch

Run it from the repository root after an intended behaviour change, then review `git diff
tests/collector/golden/`: each changed line is a case whose output changed.
"""

from __future__ import annotations

import sys

from tests.collector.golden.store import NAMES, golden_path, write


def main(argv: list[str]) -> int:
    names = argv or list(NAMES)
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        print(f"unknown golden file(s) {unknown}; known: {' '.join(NAMES)}", file=sys.stderr)
        return 2
    for name in names:
        count = write(name)
        print(f"{golden_path(name)}: {count} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
