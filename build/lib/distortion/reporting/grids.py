"""Image grids to look at with one's own eyes: originals above what became of them."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.utils import make_grid

__all__ = ["pair_grid"]


def pair_grid(originals: Tensor, *transformed: Tensor, per_row: int = 8, scale: int = 3) -> Tensor:
    """Image ``(3, H', W')``: rows of ``per_row`` originals ``(N, C, H, W)``, each followed by the same
    images from every batch of ``transformed`` (e.g. G(x), then an attacker's reconstruction of x),
    enlarged ``scale`` times (nearest neighbour, so single pixels stay visible)."""
    for batch in transformed:
        if batch.shape != originals.shape:
            raise ValueError(f"expected batches of one shape, got {tuple(originals.shape)} and {tuple(batch.shape)}")
    rows = []
    for start in range(0, len(originals), per_row):
        rows += [batch[start : start + per_row].detach().float().cpu() for batch in (originals, *transformed)]
    images = torch.cat(
        [r if len(r) == per_row else torch.cat([r, r.new_ones(per_row - len(r), *r.shape[1:])]) for r in rows]
    )
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    images = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
    return make_grid(images, nrow=per_row, padding=2, pad_value=0.5)
