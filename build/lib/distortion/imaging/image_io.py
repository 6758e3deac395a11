"""Between the two forms an image takes here: ``uint8`` arrays ``(N, H, W, C)`` as files and chip
caches hold them, and float tensors ``(N, C, H, W)`` in ``[0, 1]`` as the networks take them."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["chips_to_tensor", "tensor_to_chips"]


def chips_to_tensor(chips: np.ndarray) -> Tensor:
    """``(N, H, W, C)`` or one ``(H, W, C)`` uint8 array -> float ``(N, C, H, W)`` / ``(C, H, W)`` in ``[0, 1]``.

    Copies, so a memory-mapped cache is never written through the tensor.
    """
    array = np.array(chips, dtype=np.uint8)
    if array.ndim not in (3, 4):
        raise ValueError(f"expected (H, W, C) or (N, H, W, C) uint8 chips, got shape {array.shape}")
    return torch.from_numpy(array).movedim(-1, -3).float().div_(255)


def tensor_to_chips(images: Tensor) -> np.ndarray:
    """Float ``(N, C, H, W)`` in ``[0, 1]`` (any device) -> ``(N, H, W, C)`` uint8, rounded to the nearest level."""
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    return images.detach().float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
