"""Dataset views over labelled images: single images, triplets and seeded verification pairs."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from distortion.data.batches import ImageBatch, PairBatch, TripletBatch


def make_verification_pairs(labels: Tensor, seed: int) -> Tensor:
    """One pair per image: ``(i, j, same)`` rows, half genuine (same label) and half impostor.

    Every image is the first member (enrolment) of exactly one pair, so statistics over the first
    members cover the whole set. The partner is drawn with a seeded generator, so the pairs are
    the same on every run and every process.

    Args:
        labels: ``(N,)`` integer identities; each needs at least one other image of its identity.

    Returns:
        ``(N, 3)`` long tensor of ``(i, j, same)``.
    """
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    genuine = torch.zeros(n, dtype=torch.bool)
    genuine[torch.randperm(n, generator=g)[: n // 2]] = True
    order = torch.argsort(labels, stable=True)
    classes, counts = torch.unique(labels, return_counts=True)
    if (counts < 2).any():
        raise ValueError("every identity needs at least two images to form genuine pairs")
    starts = torch.cumsum(counts, 0) - counts
    cls_index = torch.searchsorted(classes, labels)
    # genuine partner: a random other member of the same class
    offset = (torch.rand(n, generator=g) * (counts[cls_index] - 1)).long() + 1
    rank = torch.empty(n, dtype=torch.long)
    rank[order] = torch.arange(n) - starts[cls_index[order]]
    partner_same = order[starts[cls_index] + (rank + offset) % counts[cls_index]]
    # impostor partner: a random member of any other class
    other = torch.randint(0, n - 1, (n,), generator=g)
    other_index = order[(starts[cls_index] + counts[cls_index] + (other % (n - counts[cls_index]))) % n]
    partner = torch.where(genuine, partner_same, other_index)
    return torch.stack([torch.arange(n), partner, genuine.long()], dim=1)


class ImageDataset(Dataset):
    """``ImageBatch(image, label)`` items from an image tensor ``(N, C, H, W)`` and labels ``(N,)``."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> ImageBatch:
        return ImageBatch(self.images[i], self.labels[i])


class TripletDataset(ImageDataset):
    """Triplet items (:class:`~distortion.data.batches.TripletBatch`), resampled each epoch from a seeded stream."""

    def __init__(self, images: Tensor, labels: Tensor, seed: int = 0) -> None:
        super().__init__(images, labels)
        self.by_label = {int(c): torch.nonzero(labels == c).flatten() for c in torch.unique(labels)}
        self.generator = torch.Generator().manual_seed(seed)

    def _pick(self, label: int) -> int:
        members = self.by_label[label]
        return int(members[torch.randint(len(members), (1,), generator=self.generator)])

    def __getitem__(self, i: int) -> TripletBatch:
        label = int(self.labels[i])
        others = [c for c in self.by_label if c != label]
        neg_label = others[int(torch.randint(len(others), (1,), generator=self.generator))]
        p, n = self._pick(label), self._pick(neg_label)
        return TripletBatch(self.images[i], self.images[p], self.images[n], self.labels[i], self.labels[n])


class PairDataset(Dataset):
    """:class:`~distortion.data.batches.PairBatch` items (one fold) for the rows of :func:`make_verification_pairs`."""

    def __init__(self, images: Tensor, labels: Tensor, pairs: Tensor) -> None:
        self.images, self.labels, self.pairs = images, labels, pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int) -> PairBatch:
        i, j, same = self.pairs[k].tolist()
        return PairBatch(
            self.images[i], self.labels[i], self.images[j], self.labels[j], torch.tensor(same), torch.tensor(0)
        )
