"""The 1:N index of an embedded store: FAISS over the live templates of the SQLite records.

Exact search (``IndexFlatL2``) below ``hnsw_from`` templates, HNSW (``IndexHNSWFlat``) from there on.
The index is a cache: it is saved beside the database with the records' stamp (largest row id,
revocations), loaded when the stamp matches, extended with new rows when only rows were added, and
rebuilt from SQLite otherwise. SQLite is always the copy that counts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np

from distortion.store.records import Records
from distortion.store.threads import SINGLE_THREAD_UP_TO, single_threaded

__all__ = ["FaissIndex", "make_index"]


def make_index(dim: int, size: int, hnsw_from: int = 50_000, m: int = 32) -> faiss.Index:
    """An empty index with ids for ``size`` templates: exact below ``hnsw_from``, HNSW from there on (the
    search breadth ``efSearch`` grows with the size: 128, and 256 from 500,000 templates on)."""
    if size < hnsw_from:
        return faiss.IndexIDMap2(faiss.IndexFlatL2(dim))
    hnsw = faiss.IndexHNSWFlat(dim, m)
    hnsw.hnsw.efConstruction = 80
    hnsw.hnsw.efSearch = 256 if size >= 500_000 else 128
    return faiss.IndexIDMap2(hnsw)


class FaissIndex:
    """The live templates of ``records`` in FAISS, kept in step with SQLite by :meth:`refresh`."""

    def __init__(self, records: Records, path: Path | None = None, hnsw_from: int = 50_000) -> None:
        self.records, self.path, self.hnsw_from = records, path, hnsw_from
        self.index: faiss.Index | None = None
        self.stamp: tuple[int, int] = (-1, -1)
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.is_file() or not self.path.with_suffix(".stamp").is_file():
            return
        stamp = tuple(json.loads(self.path.with_suffix(".stamp").read_text()))
        index = faiss.read_index(str(self.path))
        # same revocations and size: at most new rows to add; anything else is rebuilt
        if stamp[1] == self.records.state()[1] and index.d == self.records.meta().dim:
            self.index, self.stamp = index, stamp

    def save(self) -> None:
        """Write the index and its stamp beside the database (a cache; rebuilt when missing or stale)."""
        if self.path is None or self.index is None:
            return
        for suffix, write in ((".faiss", lambda tmp: faiss.write_index(self.index, str(tmp))),
                              (".stamp", lambda tmp: tmp.write_text(json.dumps(list(self.stamp))))):  # fmt: skip
            tmp = self.path.with_suffix(f"{suffix}.{os.getpid()}.tmp")  # several processes may save at once
            write(tmp)
            tmp.replace(self.path.with_suffix(suffix))

    def refresh(self) -> None:
        """Bring the index up to the records: add new rows, or rebuild after a revocation."""
        state = self.records.state()
        if state == self.stamp:
            return
        if self.index is not None and state[1] == self.stamp[1]:
            ids, templates, _ = self.records.live(after=self.stamp[0])
        else:
            ids, templates, _ = self.records.live()
            self.index = make_index(self.records.meta().dim, len(ids), self.hnsw_from)
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(templates), ids)
        self.stamp = state

    @property
    def kind(self) -> str:
        """``hnsw`` or ``exact``, what the index searches with now."""
        inner = faiss.downcast_index(self.index.index) if self.index is not None else None
        return "hnsw" if isinstance(inner, faiss.IndexHNSWFlat) else "exact"

    def search(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(N, k)`` Euclidean distances and row ids of the nearest live templates (-1: none)."""
        self.refresh()
        if self.index is None or self.index.ntotal == 0:
            return np.full((len(probes), k), np.inf), np.full((len(probes), k), -1)
        with single_threaded(len(probes) <= SINGLE_THREAD_UP_TO):
            d2, ids = self.index.search(np.ascontiguousarray(probes, dtype=np.float32), k)
        return np.sqrt(np.maximum(d2, 0)), ids

    def templates(self, ids: np.ndarray) -> np.ndarray:
        """``(N, D)`` the indexed templates of row ids that :meth:`search` returned."""
        return self.index.reconstruct_batch(np.asarray(ids, np.int64)) if len(ids) else np.zeros((0, self.index.d))
