"""A shuffling sampler that a killed run can resume mid-epoch, batch for batch."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableRandomSampler(Sampler[int]):
    """A new permutation each epoch, drawn from ``seed + epoch`` alone (not from the global RNG).

    Lightning calls :meth:`set_epoch` before every training epoch. After a resume mid-epoch,
    :meth:`skip` drops the samples the killed run had already trained on, so the resumed run sees
    exactly the batches the uninterrupted run would have seen. The skip applies to the next
    iteration only.

    Args:
        num_samples: size of the dataset.
        seed: seed of the permutations.
    """

    def __init__(self, num_samples: int, seed: int = 0) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.num_samples, self.seed = num_samples, seed
        self.epoch, self._skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` from now on."""
        self.epoch = epoch

    def skip(self, samples: int) -> None:
        """Start the next iteration ``samples`` positions into the epoch's permutation."""
        if not 0 <= samples <= self.num_samples:
            raise ValueError(f"can skip 0..{self.num_samples} samples, got {samples}")
        self._skip = samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_samples, generator=generator)[self._skip :]
        self._skip = 0
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.num_samples
