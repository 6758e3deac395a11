"""The batcher: a batch closes at its size or its time limit, each caller gets its own result, and an error reaches
every caller of its batch."""

from __future__ import annotations

import threading
import time
from concurrent.futures import wait

import pytest

from distortion.service.batching import Batcher


def test_batches_close_at_their_size_and_give_each_caller_its_result() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def work(items: list[int]) -> list[int]:
        gate.wait()  # hold the first batch until every item is queued
        return [i * i for i in items]

    batcher = Batcher(work, max_size=4, max_wait=0.5, observe=sizes.append)
    futures = [batcher.submit(i) for i in range(10)]
    gate.set()
    wait(futures, timeout=30)
    assert [f.result() for f in futures] == [i * i for i in range(10)]
    assert sizes == [4, 4, 2]  # two full batches, then the rest when the time limit closed the third
    batcher.close()


def test_a_batch_closes_at_its_time_limit() -> None:
    batcher = Batcher(lambda items: [len(items)] * len(items), max_size=64, max_wait=0.05)
    started = time.perf_counter()
    futures = [batcher.submit(i) for i in range(3)]
    assert [f.result(timeout=5) for f in futures] == [3, 3, 3]  # one batch of three, not 64
    assert time.perf_counter() - started < 2
    batcher.close()


def test_an_error_reaches_every_caller_of_its_batch_and_the_worker_goes_on() -> None:
    def work(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("bad item")
        return items

    batcher = Batcher(work, max_size=8, max_wait=0.2)
    failing = [batcher.submit(-1), batcher.submit(2)]
    for future in failing:
        with pytest.raises(ValueError, match="bad item"):
            future.result(timeout=5)
    assert batcher.submit(3).result(timeout=5) == 3
    batcher.close()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_size"):
        Batcher(lambda items: items, max_size=0)
