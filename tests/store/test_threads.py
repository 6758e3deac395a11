"""Small searches run on one thread, and the thread settings of FAISS and torch come back after."""

from __future__ import annotations

import faiss
import pytest
import torch

from distortion.store.threads import single_threaded


def test_single_threaded_holds_one_thread_and_restores_the_settings() -> None:
    torch.set_num_threads(2)
    faiss.omp_set_num_threads(2)
    with single_threaded():
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
    assert torch.get_num_threads() == 2 and faiss.omp_get_max_threads() == 2
    with pytest.raises(RuntimeError), single_threaded():
        raise RuntimeError("a failed search")
    assert torch.get_num_threads() == 2 and faiss.omp_get_max_threads() == 2
    with single_threaded(active=False):
        assert torch.get_num_threads() == 2
