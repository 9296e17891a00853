"""One background thread for storage upkeep (compaction, retention), each task on its own interval.

Tasks run one at a time, so compaction and retention never delete files in the same partition at
once; a task's exception is logged and the schedule goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Task:
    name: str
    interval_s: float  # 0 disables the task
    run: Callable[[threading.Event], object]
    next_at: float = 0.0
    runs: int = 0
    failures: int = 0


class MaintenanceScheduler:
    """Runs each enabled task every `interval_s` (first run one interval after start)."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = [t for t in tasks if t.interval_s > 0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="llmscope-maintenance", daemon=True)

    def start(self) -> None:
        now = time.monotonic()
        for task in self.tasks:
            task.next_at = now + task.interval_s
        if self.tasks:
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            due = min(self.tasks, key=lambda t: t.next_at)
            if self._stop.wait(max(0.0, due.next_at - time.monotonic())):
                return
            self._run(due)
            due.next_at = time.monotonic() + due.interval_s

    def _run(self, task: Task) -> None:
        try:
            task.run(self._stop)
            task.runs += 1
        except Exception:
            task.failures += 1
            log.exception("storage maintenance task %s failed; it runs again in %.0fs", task.name, task.interval_s)

    def request_stop(self) -> None:
        """Ask the thread to stop (a running task checks the event between partitions)."""
        self._stop.set()

    def stop(self) -> None:
        self.request_stop()
        if self._thread.is_alive():
            self._thread.join()
