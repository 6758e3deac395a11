"""The items every dataset yields and the batches every module receives, as named tuples.

PyTorch's default collate keeps a named tuple's type, so a dataset returning :class:`PairBatch`
items gives loaders that yield :class:`PairBatch` batches (each field stacked along a new first
dimension), and a step reads ``batch.x_a`` rather than a position.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

__all__ = ["ImageBatch", "PairBatch", "TripletBatch"]


class ImageBatch(NamedTuple):
    """Training images ``x`` ``(B, C, H, W)`` in ``[0, 1]`` and their labels ``y`` ``(B,)`` (digit or identity)."""

    x: Tensor
    y: Tensor


class TripletBatch(NamedTuple):
    """Triplets for F: ``anchor`` and ``positive`` share ``label_a``; ``negative`` has ``label_n``."""

    anchor: Tensor
    positive: Tensor
    negative: Tensor
    label_a: Tensor
    label_n: Tensor


class PairBatch(NamedTuple):
    """Verification pairs: enrolment ``x_a`` (label ``y_a``), probe ``x_b`` (label ``y_b``), whether they
    show the same identity (``same``, 0/1) and the protocol fold of the pair (``fold``; 0 where a
    protocol has one fold, as MNIST's)."""

    x_a: Tensor
    y_a: Tensor
    x_b: Tensor
    y_b: Tensor
    same: Tensor
    fold: Tensor
