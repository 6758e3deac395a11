"""A seeded choice of items from a dataset: the same items for the same seed, in every command."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import Dataset, Subset

__all__ = ["first_batches", "seeded_subset"]


def seeded_subset(dataset: Dataset, count: int, seed: int) -> Dataset:
    """``count`` items of ``dataset`` chosen by ``seed`` (the same ones for the same seed); all when ``count``
    is 0 or not below the dataset's size."""
    if not count or count >= len(dataset):
        return dataset
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    return Subset(dataset, chosen.tolist())


def first_batches(batches: Iterable[tuple], count: int) -> Iterator[tuple]:
    """The batches of ``batches`` (each a tuple whose first field has one row per item) until they hold at least
    ``count`` items; the caller cuts the last one to ``count``."""
    seen = 0
    for batch in batches:
        yield batch
        seen += len(batch[0])
        if seen >= count:
            return
