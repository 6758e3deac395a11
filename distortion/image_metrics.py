"""Per-image similarity statistics between an image ``x`` and its distortion ``y``.

Every function takes two batches of shape ``(B, C, H, W)`` with values in ``[0, 1]`` and returns
one value per image, shape ``(B,)``. Training losses (:mod:`distortion.losses`) and logged metrics
call these same functions, so a number in a report and a term in a loss never drift apart.
"""

from __future__ import annotations

import kornia
import torch
from torch import Tensor

_EPS = 1e-8


def check_image_pair(x: Tensor, y: Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` and ``y`` are image batches of one shape ``(B, C, H, W)``."""
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(x.shape)}")
    if x.shape != y.shape:
        raise ValueError(f"expected two batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def edge_magnitude(x: Tensor) -> Tensor:
    """Sobel gradient magnitude per channel, replicate padding: ``(B, C, H, W) -> (B, C, H, W)``."""
    return kornia.filters.sobel(x, normalized=True)


def ssim(x: Tensor, y: Tensor, window_size: int = 11) -> Tensor:
    """Mean structural similarity per image (Gaussian window, ``max_val=1``), in ``[-1, 1]``."""
    check_image_pair(x, y)
    window_size = min(window_size, *[s if s % 2 else s - 1 for s in x.shape[-2:]])
    return kornia.metrics.ssim(x, y, window_size, max_val=1.0).flatten(1).mean(1)


def pearson(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation of the pixels of each image pair, channels pooled, in ``[-1, 1]``.

    A constant image carries no information about the other one and gets a correlation of 0.
    """
    check_image_pair(x, y)
    dtype = torch.promote_types(x.dtype, torch.float32)  # at least float32, float64 stays
    x = x.flatten(1).to(dtype)
    y = y.flatten(1).to(dtype)
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    cov = (x * y).sum(1)
    norm = torch.sqrt((x * x).sum(1) * (y * y).sum(1) + _EPS)  # eps inside: finite gradient at 0
    return cov / norm


def edge_pearson(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation of the Sobel gradient magnitudes of ``x`` and ``y`` (outline similarity)."""
    return pearson(edge_magnitude(x), edge_magnitude(y))


def content_change(x: Tensor, y: Tensor) -> Tensor:
    """Content change in percent: ``100 * (1 - max(|r_pix|, |r_edge|))``.

    Inversion, contrast changes and outline drawings keep an image readable and keep ``r_pix`` or
    ``r_edge`` near +-1, so they score close to 0% change; an image unrelated to ``x`` scores ~100%.
    """
    r = torch.maximum(pearson(x, y).abs(), edge_pearson(x, y).abs())
    return 100.0 * (1.0 - r)


def local_correlation(x: Tensor, y: Tensor, window: int = 16) -> Tensor:
    """How much of ``x``'s local structure ``y`` follows: root mean squared Pearson correlation over
    ``window``-sized patches (stride ``window // 2``, every channel), weighted by the variance of
    ``x`` in each patch, in ``[0, 1]``.

    Unlike :func:`pearson` it cannot be fooled by a bright frame or any other large change in one
    place: every textured patch of ``x`` counts by its own contrast. A flat patch of ``y`` carries
    no correlation.
    """
    check_image_pair(x, y)
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    window = min(window, *x.shape[-2:])

    def pool(t: Tensor) -> Tensor:
        return torch.nn.functional.avg_pool2d(t, window, stride=max(1, window // 2))

    mx, my = pool(x), pool(y)
    var_x = (pool(x * x) - mx * mx).clamp_min(0)
    var_y = (pool(y * y) - my * my).clamp_min(0)
    cov = pool(x * y) - mx * my
    r2 = (cov * cov / (var_x * var_y + 1e-10)).clamp(0, 1)
    weighted = (var_x * r2).flatten(1).sum(1) / (var_x.flatten(1).sum(1) + _EPS)
    return torch.sqrt(weighted + _EPS)


def local_content_change(x: Tensor, y: Tensor, window: int = 16) -> Tensor:
    """Content change from local structure: ``100 * (1 - max(c_pix, c_edge))`` with
    :func:`local_correlation` of the pixels and of the Sobel magnitudes, in percent."""
    c = torch.maximum(local_correlation(x, y, window), local_correlation(edge_magnitude(x), edge_magnitude(y), window))
    return 100.0 * (1.0 - c)


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB for images in ``[0, 1]`` (capped at 100 dB for equal images)."""
    check_image_pair(x, y)
    mse = (x - y).double().pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))
