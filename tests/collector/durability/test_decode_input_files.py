"""A decode task's large inputs go to its worker through a file of the pool's directory (`decode_pool._Inputs`),
as its results come back (test_decode_results_files.py): the same records arrive, the files are reused rather
than piling up; when a file cannot be written the records go by the pipe, and when the worker cannot read its
file, the task's records are decoded again by the collector, each once: none lost, none failed."""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest

from llmscope_collector.processors import decode_pool
from llmscope_collector.processors.decode_pool import DecodePool, ResultsLost
from tests.collector.durability.helpers import assert_same_batches, decode_items


def _shipped(items: list[tuple[str, bytes]], directory: Path | None) -> tuple[bytes, object]:
    """As the pool sends a task's records: pickled by multiprocessing's pickler (the message), then unpickled."""
    message = bytes(ForkingPickler.dumps(decode_pool._Inputs(items, None if directory is None else str(directory))))
    return message, pickle.loads(message)


def test_large_inputs_cross_by_a_file_that_the_next_task_reuses(tmp_path: Path) -> None:
    items = decode_items(8, 160, projects=2)
    assert sum(len(p) for _, p in items) >= decode_pool._FILE_MIN_BYTES
    for _ in range(3):
        message, back = _shipped(items, tmp_path)
        assert len(message) < 1024  # the payloads went to a file: the message holds its name, projects, sizes
        assert back == items
        [name] = os.listdir(tmp_path)  # read, freed, and written again by the next task
        assert name.endswith(decode_pool._FREE)


def test_a_file_freed_by_a_larger_task_holds_a_smaller_one_exactly(tmp_path: Path) -> None:
    """A reused file is not cut to its new contents: its reader reads the sizes it is sent, no more."""
    large, small = decode_items(12, 160, projects=2), decode_items(8, 160, projects=2)
    _shipped(large, tmp_path)
    assert _shipped(small, tmp_path)[1] == small
    assert len(os.listdir(tmp_path)) == 1


def test_small_inputs_and_inputs_without_a_directory_go_by_the_pipe(tmp_path: Path) -> None:
    small, large = decode_items(1, 1, projects=2), decode_items(8, 160, projects=2)
    message, back = _shipped(small, tmp_path)
    assert back == small and os.listdir(tmp_path) == []
    message, back = _shipped(large, None)
    assert back == large and len(message) > decode_pool._FILE_MIN_BYTES


def test_inputs_go_by_the_pipe_when_the_directory_is_gone(tmp_path: Path) -> None:
    items = decode_items(8, 160, projects=2)
    message, back = _shipped(items, tmp_path / "removed")
    assert back == items and len(message) > decode_pool._FILE_MIN_BYTES


@pytest.mark.parametrize("damage", ["removed", "cut short"])
def test_an_unreadable_input_file_fails_its_task_not_the_worker(tmp_path: Path, damage: str) -> None:
    """Unpickling (the worker's task loop) gives `ResultsLost` rather than raising, which would break the pool;
    the task then raises it, so that the collector decodes the records itself."""
    items = decode_items(8, 160, projects=2)
    message = ForkingPickler.dumps(decode_pool._Inputs(items, str(tmp_path)))
    [name] = os.listdir(tmp_path)
    if damage == "removed":
        (tmp_path / name).unlink()
    else:
        (tmp_path / name).write_bytes(b"not what the collector wrote")
    lost = pickle.loads(message)
    assert isinstance(lost, ResultsLost)
    with pytest.raises(ResultsLost):
        decode_pool.decode_payloads(lost)


def block_until(path: str, started: str) -> None:
    """Run in a worker: keeps it busy until `path` exists (tasks queued meanwhile are already sent)."""
    Path(started).touch()
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize("damage", ["removed", "cut short"])
def test_records_whose_input_file_a_worker_cannot_read_are_decoded_again_none_lost(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With the real pool: its one worker held busy while a large task is sent (its payloads in a file),
    the file damaged, the worker released. Every record comes back once, as inline decoding gives it (the
    collector decoded them: the task failed for its lost inputs); the pool keeps working (the worker did not
    break)."""
    items = decode_items(8, 160, projects=2)
    size = sum(len(p) for _, p in items)
    release, started = str(tmp_path / "release"), str(tmp_path / "started")
    pool, inline = DecodePool(1), DecodePool(0)
    try:
        pool.decode(decode_items(8, 1, projects=2))  # start the worker
        directory = pool._results_dir
        assert directory is not None
        blocker = threading.Thread(target=pool.offload, args=(1 << 20, block_until, release, started))
        blocker.start()
        _wait_for(lambda: os.path.exists(started), "the worker to be busy")
        pending = pool.submit(items)

        def written() -> list[str]:  # task files not yet read
            return [n for n in os.listdir(directory) if not n.endswith(decode_pool._FREE)]

        _wait_for(lambda: any(os.path.getsize(os.path.join(directory, n)) >= size for n in written()), "the input")
        [name] = written()
        if damage == "removed":
            os.unlink(os.path.join(directory, name))
        else:
            Path(directory, name).write_bytes(b"")
        Path(release).touch()
        with caplog.at_level("WARNING", logger=decode_pool.__name__):
            got = pending.results()
        assert "decode inputs lost" in caplog.text
        blocker.join(60)
        assert_same_batches(got, inline.decode(items))
        assert_same_batches(pool.decode(items), inline.decode(items))  # and the pool still works, by its worker
        assert pool.running
    finally:
        Path(release).touch()
        pool.close()
