"""Per-image similarity statistics between an image ``x`` and its distortion ``y``.

Every function takes two batches of shape ``(B, C, H, W)`` with values in ``[0, 1]`` and returns
one value per image, shape ``(B,)``. Training losses (:mod:`distortion.objective.losses`) and logged metrics
call these same functions, so a number in a report and a term in a loss never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def luma(x: Tensor) -> Tensor:
    """The brightness a person sees: ITU-R 601 luma of RGB images, ``(B, 3, H, W) -> (B, 1, H, W)``;
    a one-channel image is its own luma."""
    return x if x.shape[1] == 1 else kornia.color.rgb_to_grayscale(x)


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


def _patch_pool(t: Tensor, window: int) -> Tensor:
    """Mean of each ``window`` patch, stride ``window // 2``."""
    return torch.nn.functional.avg_pool2d(t, window, stride=max(1, window // 2))


def _patch_r2(x: Tensor, mean_x: Tensor, var_x: Tensor, y: Tensor, window: int) -> Tensor:
    """Squared Pearson correlation of ``x`` and ``y`` in each patch (see :func:`_patch_pool`), given
    ``x``'s patch means and variances, which stay the same for every ``y`` compared with it."""
    mean_y = _patch_pool(y, window)
    var_y = (_patch_pool(y * y, window) - mean_y * mean_y).clamp_min(0)
    cov = _patch_pool(x * y, window) - mean_x * mean_y
    return (cov * cov / (var_x * var_y + 1e-10)).clamp(0, 1)


def _weighted_root(r2: Tensor, var_x: Tensor, power: float = 1.0) -> Tensor:
    """``sqrt`` of the ``var_x``-weighted power mean of the patches' ``r2``: 1 is the plain mean, a
    larger ``power`` leans towards the best-correlated patches."""
    weighted = (var_x * r2.pow(power)).flatten(1).sum(1) / (var_x.flatten(1).sum(1) + _EPS)
    return torch.sqrt((weighted + _EPS).pow(1.0 / power))


def local_correlation(x: Tensor, y: Tensor, window: int = 16) -> Tensor:
    """How much of ``x``'s local structure ``y`` follows: root mean squared Pearson correlation over
    ``window``-sized patches (stride ``window // 2``, every channel), weighted by the variance of
    ``x`` in each patch, in ``[0, 1]``.

    Unlike :func:`pearson` it cannot be fooled by a bright frame or any other large change in one
    place: every textured patch of ``x`` counts by its own contrast. A flat patch of ``y`` carries
    no correlation.
    """
    return aligned_local_correlation(x, y, window, max_shift=0)


def shifted(y: Tensor, max_shift: int, step: int = 1) -> Iterator[Tensor]:
    """``y`` translated by every ``(dy, dx)`` in ``range(-max_shift, max_shift + 1, step)`` squared,
    edges replicated: ``(2 * max_shift // step + 1) ** 2`` images of ``y``'s shape, one at a time."""
    m = max_shift
    padded = torch.nn.functional.pad(y, (m, m, m, m), mode="replicate") if m else y
    h, w = y.shape[-2:]
    for dy in range(-m, m + 1, step):
        for dx in range(-m, m + 1, step):
            yield padded[..., m + dy : m + dy + h, m + dx : m + dx + w]


def aligned_local_correlation(
    x: Tensor, y: Tensor, window: int = 16, max_shift: int = 6, step: int = 2, power: float = 1.0
) -> Tensor:
    """:func:`local_correlation` where each patch of ``y`` may be displaced by up to ``max_shift``
    pixels (every ``step``), the best-matching displacement counting, in ``[0, 1]``.

    A person recognises a face moved or warped by a few pixels; a pixel-aligned correlation does
    not, and a generator learns to shift its output to win it. ``power > 1`` averages the patches'
    squared correlations as a power mean, so that a few intact patches (the eyes and mouth of a
    face) count for more than many blanked ones.
    """
    check_image_pair(x, y)
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    window = min(window, *x.shape[-2:])
    mean_x = _patch_pool(x, window)
    var_x = (_patch_pool(x * x, window) - mean_x * mean_x).clamp_min(0)
    r2 = torch.stack([_patch_r2(x, mean_x, var_x, moved, window) for moved in shifted(y, max_shift, step)]).amax(0)
    return _weighted_root(r2, var_x, power)


def _window_means(t: Tensor, h: int, w: int) -> Tensor:
    """The mean of every ``(h, w)`` window of ``t`` ``(B, C, H, W)`` (stride 1), as two one-dimensional means:
    the same numbers as one ``(h, w)`` average pool, several times faster on a CPU."""
    rows = torch.nn.functional.avg_pool2d(t, (h, 1), stride=1)
    return torch.nn.functional.avg_pool2d(rows, (1, w), stride=1)


def shifted_pearson(x: Tensor, y: Tensor, max_shift: int) -> Tensor:
    """:func:`pearson` of ``x`` with ``y`` translated by every ``(dy, dx)`` of at most ``max_shift``
    pixels (edges replicated), ``(B, (2 * max_shift + 1) ** 2)``; all shifts at once as one grouped
    convolution of ``y`` with ``x``."""
    check_image_pair(x, y)
    b, c, h, w = x.shape
    m, n = max_shift, c * h * w
    xc = x - x.mean((1, 2, 3), keepdim=True)
    padded = torch.nn.functional.pad(y, (m, m, m, m), mode="replicate")
    dot = torch.nn.functional.conv2d(
        padded.reshape(1, b * c, h + 2 * m, w + 2 * m), xc.reshape(b * c, 1, h, w), groups=b * c
    )
    dot = dot.reshape(b, c, -1).sum(1)
    sum_y = _window_means(padded, h, w).reshape(b, c, -1).sum(1) * (h * w)
    sum_yy = _window_means(padded * padded, h, w).reshape(b, c, -1).sum(1) * (h * w)
    var_y = (sum_yy - sum_y * sum_y / n).clamp_min(0)
    return dot / torch.sqrt(xc.pow(2).flatten(1).sum(1, keepdim=True) * var_y + _EPS)


def registered_correlations(x: Tensor, y: Tensor, max_shift: int = 8) -> tuple[Tensor, Tensor]:
    """:func:`shifted_pearson` of the pixels and of the Sobel magnitudes of ``x`` and ``y`` (each
    ``(B, (2 * max_shift + 1) ** 2)``, in at least float32): what the registered content change and its
    loss form look at."""
    check_image_pair(x, y)
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    return shifted_pearson(x, y, max_shift), shifted_pearson(edge_magnitude(x), edge_magnitude(y), max_shift)


def registered_content_change(x: Tensor, y: Tensor, max_shift: int = 8) -> Tensor:
    """:func:`content_change` at the translation of ``y`` by at most ``max_shift`` pixels that
    leaves the least change: what remains once a shift, which a person ignores, is undone (never
    more than the plain content change)."""
    r_pix, r_edge = registered_correlations(x, y, max_shift)
    return 100.0 * (1.0 - torch.maximum(r_pix.abs(), r_edge.abs()).amax(1))


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
