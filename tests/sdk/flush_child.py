"""Child process for test_flush_deadline: configure llmscope to `endpoint`, end `count` spans, flush
with a deadline, print the answer as JSON, then exit (the parent times the exit)."""

from __future__ import annotations

import json
import sys
import time

import llmscope_sdk
from llmscope_sdk import _setup


def main(endpoint: str, protocol: str, count: int, timeout_s: float) -> None:
    llmscope_sdk.configure(endpoint=endpoint, protocol=protocol, service_name="flush-child")
    tracer = _setup.get_provider().get_tracer("flush-child")
    for i in range(count):
        with tracer.start_as_current_span(f"span {i}"):
            pass
    started = time.monotonic()
    delivered = llmscope_sdk.flush(timeout_s=timeout_s)
    print(json.dumps({"delivered": delivered, "flush_s": time.monotonic() - started}), flush=True)
    if count:  # more spans after the flush: exit has them to send
        for i in range(count):
            with tracer.start_as_current_span(f"late span {i}"):
                pass
    print("exiting", flush=True)  # the parent times the exit from here


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
