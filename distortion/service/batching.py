"""Concurrent requests batched through one worker: F and G run once for many callers.

A :class:`Batcher` owns one thread. Callers :meth:`~Batcher.submit` an item and get a future; the thread takes the
first waiting item, gathers more until the batch holds ``max_size`` items or ``max_wait`` seconds have passed since
that first one, runs ``work`` on the list, and resolves each caller's future with its own result (or with the
batch's exception). One client waits at most ``max_wait`` longer; sixteen share one forward pass.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

__all__ = ["Batcher"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Run ``work(items) -> results`` (one result per item, in order) on batches of submitted items.

    Args:
        work: the batched computation.
        max_size: a batch closes when it holds this many items.
        max_wait: ... or this many seconds after its first item arrived.
        name: the worker thread's name.
        observe: called with each batch's size (a metric).
    """

    def __init__(
        self, work: Callable[[list[Item]], list[Result]], max_size: int = 16, max_wait: float = 0.005,
        name: str = "batcher", observe: Callable[[int], None] | None = None,
    ) -> None:  # fmt: skip
        if max_size < 1 or max_wait < 0:
            raise ValueError(f"max_size must be >= 1 and max_wait >= 0, got {max_size}, {max_wait}")
        self.work, self.max_size, self.max_wait, self.observe = work, max_size, max_wait, observe
        self.queue: queue.Queue[tuple[Item, Future] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, item: Item) -> Future[Result]:
        """Queue ``item``; the future resolves with its result once its batch has run."""
        future: Future[Result] = Future()
        self.queue.put((item, future))
        return future

    def close(self) -> None:
        """Finish the queued batches, then stop the thread."""
        self.queue.put(None)
        self.thread.join()

    def _gather(self, first: tuple[Item, Future]) -> tuple[list[tuple[Item, Future]], bool]:
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.max_size:
            try:
                entry = self.queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if entry is None:
                return batch, True
            batch.append(entry)
        return batch, False

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self.queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            if self.observe is not None:
                self.observe(len(batch))
            try:
                results = self.work([item for item, _ in batch])
            except Exception as error:  # every caller of the batch gets the batch's error
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)
