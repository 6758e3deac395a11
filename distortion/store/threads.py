"""Small searches on one thread: waking a thread pool for a few probes costs more than the work itself.

On a CPU that is busy elsewhere (or whose threads of FAISS's and torch's OpenMP runtimes are still spinning
after a large call), a small multi-threaded call waits for a descheduled worker: at 10^6 templates a 1 ms
re-scoring of a shortlist took 90-200 ms at the tail. One search's work (one probe, a few hundred rows)
runs faster on the calling thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import faiss
import torch

__all__ = ["SINGLE_THREAD_UP_TO", "single_threaded"]

SINGLE_THREAD_UP_TO = 16
"""Probes up to which one FAISS search runs on one thread."""


@contextmanager
def single_threaded(active: bool = True) -> Iterator[None]:
    """FAISS and torch held to one thread inside the block (when ``active``), their settings restored after."""
    if not active:
        yield
        return
    faiss_threads, torch_threads = faiss.omp_get_max_threads(), torch.get_num_threads()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(faiss_threads)
        torch.set_num_threads(torch_threads)
