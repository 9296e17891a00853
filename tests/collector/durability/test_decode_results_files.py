"""A decode task's large results come back through a file of the pool's results directory (`decode_pool._Results`):
equal to inline decoding, the files reused rather than piling up, the directory gone with the pool; and when a
file cannot be written (the results go by the pipe) or read back (its records are decoded again), no record is
lost or failed."""

from __future__ import annotations

import dataclasses
import os
import pickle
from concurrent.futures import Future
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest

from llmscope_collector.processors import decode_pool
from llmscope_collector.processors.decode_pool import DecodePool, ResultsLost
from llmscope_collector.storage.batch import Decoded
from tests.collector.durability.helpers import assert_same_batches, decode_items


def _worker_writes_to(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process pickles results as a worker of a pool with `directory` would."""
    monkeypatch.setattr(decode_pool, "_worker", dataclasses.replace(decode_pool._worker, results_dir=str(directory)))


def test_a_large_result_crosses_by_a_file_that_the_next_result_reuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = decode_items(4, 60)
    sent = decode_pool.decode_payloads(items)
    _worker_writes_to(tmp_path, monkeypatch)
    for _ in range(3):
        message = ForkingPickler.dumps(sent)
        assert len(message) < decode_pool._FILE_MIN_BYTES  # the tables went to a file, not into the message
        back = pickle.loads(message)
        assert_same_batches(back, sent)
        [name] = os.listdir(tmp_path)  # read, left for the next result, which wrote into it
        assert name.endswith(decode_pool._FREE)


def test_a_small_result_goes_by_the_pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = decode_pool.decode_payloads(decode_items(1, 1))
    _worker_writes_to(tmp_path, monkeypatch)
    assert_same_batches(pickle.loads(ForkingPickler.dumps(sent)), sent)
    assert os.listdir(tmp_path) == []


def test_results_go_by_the_pipe_when_the_directory_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = decode_pool.decode_payloads(decode_items(4, 60))
    _worker_writes_to(tmp_path / "removed", monkeypatch)
    message = ForkingPickler.dumps(sent)
    assert len(message) > decode_pool._FILE_MIN_BYTES
    assert_same_batches(pickle.loads(message), sent)


def test_a_results_file_that_cannot_be_read_back_means_its_records_are_decoded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = decode_items(4, 60)
    sent = decode_pool.decode_payloads(items)
    _worker_writes_to(tmp_path, monkeypatch)
    message = ForkingPickler.dumps(sent)
    [name] = os.listdir(tmp_path)
    (tmp_path / name).write_bytes(b"not what the worker wrote")
    lost = pickle.loads(message)  # unpickling must not raise: on the pool's result thread that breaks the pool
    assert isinstance(lost, ResultsLost)
    pool = DecodePool(0)
    future: Future[list[Decoded]] = Future()
    future.set_result(lost)  # type: ignore[arg-type]
    again = pool.results(decode_pool._Task(future, items, 0))
    assert_same_batches(again, sent)


def test_pooled_large_results_equal_inline_ones_and_the_directory_goes_with_the_pool() -> None:
    items = decode_items(40, 60)  # several tasks of large results
    pooled, inline = DecodePool(2), DecodePool(0)
    try:
        first = pooled.decode(items)
        directory = pooled._results_dir
        assert directory is not None
        files = os.listdir(directory)
        assert files and all(name.endswith(decode_pool._FREE) for name in files)
        second = pooled.decode(items)
        assert len(os.listdir(directory)) <= len(files) + 2  # reused: about as many as results in flight
    finally:
        pooled.close()
    assert not os.path.exists(directory)
    want = inline.decode(items)
    assert_same_batches(first, want)
    assert_same_batches(second, want)
