"""Image distances d_img: how far G(x) is from x, as plain, batch-wise, differentiable functions.

Image distances take ``x`` and ``y`` of shape ``(B, C, H, W)`` in ``[0, 1]`` (any channel count) and
return one value per image, shape ``(B,)``, each in ``[0, 1]`` where 1 is the largest possible
difference. The paper reports them as percentages (``100 * d``).

Example:
    >>> x = torch.zeros(2, 1, 8, 8); x[..., 2:6, 2:6] = 1
    >>> l1_distance(x, 1 - x)
    tensor([1., 1.])
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import torch
from torch import Tensor

from distortion.imaging.augment import local_normalize
from distortion.imaging.statistics import (
    aligned_local_correlation,
    check_image_pair,
    edge_magnitude,
    edge_pearson,
    local_correlation,
    luma,
    pearson,
    registered_correlations,
    ssim,
)

ImageDistance = Callable[[Tensor, Tensor], Tensor]


def l1_distance(x: Tensor, y: Tensor) -> Tensor:
    """Mean absolute difference per image: ``d_L1 = mean |x - y|``."""
    check_image_pair(x, y)
    return (x - y).abs().flatten(1).mean(1)


def mse_distance(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared difference per image: ``d_MSE = mean (x - y)^2``."""
    check_image_pair(x, y)
    return (x - y).pow(2).flatten(1).mean(1)


def dssim_distance(x: Tensor, y: Tensor) -> Tensor:
    """Structural dissimilarity per image: ``d_DSSIM = (1 - SSIM(x, y)) / 2``."""
    return (1.0 - ssim(x, y)) / 2.0


def sobel_distance(x: Tensor, y: Tensor) -> Tensor:
    """``|x - y|`` weighted by the Sobel edge magnitude of ``x``: change where ``x`` has its strokes.

    The weights are the edge magnitudes normalised to sum to one per image (so the value stays in
    ``[0, 1]``); ``x`` is treated as a constant, so only ``y`` receives gradients.
    """
    check_image_pair(x, y)
    weight = edge_magnitude(x).detach().flatten(1)
    weight = weight / weight.sum(1, keepdim=True).clamp_min(1e-8)
    return (weight * (x - y).abs().flatten(1)).sum(1)


def sobel_l1_distance(x: Tensor, y: Tensor) -> Tensor:
    """The paper's combination ``(d_sobel + d_L1) / 2``."""
    return (sobel_distance(x, y) + l1_distance(x, y)) / 2.0


def dssim_l1_distance(x: Tensor, y: Tensor) -> Tensor:
    """The paper's combination ``(d_DSSIM + d_L1) / 2``."""
    return (dssim_distance(x, y) + l1_distance(x, y)) / 2.0


def decorrelation_distance(x: Tensor, y: Tensor) -> Tensor:
    """``1 - (r_pix^2 + r_edge^2) / 2``: large when neither pixels nor outlines of ``y`` follow ``x``.

    Unlike L1/MSE/DSSIM it does not reward an inversion (``r_pix = -1`` gives no credit).
    """
    return 1.0 - (pearson(x, y).pow(2) + edge_pearson(x, y).pow(2)) / 2.0


def registered_decorrelation_distance(x: Tensor, y: Tensor, max_shift: int = 8) -> Tensor:
    """``1 - max(r_pix^2, r_edge^2)`` at the translation of ``y`` by at most ``max_shift`` pixels where
    they are largest (:func:`~distortion.imaging.statistics.registered_correlations`): the loss form of the registered
    content change, so that neither x nor x moved by a few pixels survives in ``y``."""
    r_pix, r_edge = registered_correlations(x, y, max_shift)
    return 1.0 - torch.maximum(r_pix.pow(2).amax(1), r_edge.pow(2).amax(1))


def lowfreq_decorrelation_distance(x: Tensor, y: Tensor, factor: int = 4) -> Tensor:
    """``1 - r^2`` of ``x`` and ``y`` average-pooled by ``factor``: large when the coarse shape of ``x`` is gone.

    A bound on how much of x's low-frequency layout (where the ink is) survives in ``y``, whatever
    the contrast or sign.
    """
    check_image_pair(x, y)
    pool = torch.nn.functional.avg_pool2d
    return 1.0 - pearson(pool(x, factor, ceil_mode=True), pool(y, factor, ceil_mode=True)).pow(2)


def local_decorrelation_distance(x: Tensor, y: Tensor, window: int = 16, factor: int = 4) -> Tensor:
    """``1 - (c_pix^2 + c_edge^2 + c_coarse^2) / 3`` with :func:`~distortion.imaging.statistics.local_correlation`
    of the pixels, of the Sobel magnitudes, and of the images average-pooled by ``factor`` (the layout).

    The global :func:`decorrelation_distance` is won by one bright frame that dominates the variance
    while the face stays untouched; patch by patch, every textured region of ``x`` must lose its
    structure in ``y``.
    """
    check_image_pair(x, y)
    pool = torch.nn.functional.avg_pool2d
    c_pix = local_correlation(x, y, window)
    c_edge = local_correlation(edge_magnitude(x), edge_magnitude(y), window)
    c_coarse = local_correlation(pool(x, factor, ceil_mode=True), pool(y, factor, ceil_mode=True), window)
    return 1.0 - (c_pix.pow(2) + c_edge.pow(2) + c_coarse.pow(2)) / 3.0


def coarse_decorrelation_distance(x: Tensor, y: Tensor, factors: tuple[int, ...] = (4, 8), window: int = 8) -> Tensor:
    """``1 - mean(c_f^2)`` over the pooling ``factors``, with ``c_f`` the
    :func:`~distortion.imaging.statistics.local_correlation` of ``x`` and ``y`` average-pooled by ``f``.

    Targets the low spatial frequencies a person recognises a face by (the layout of dark and light
    regions at 4-8 px and coarser); fine stripes or noise added on top cannot lower it, since
    pooling averages them away.
    """
    check_image_pair(x, y)
    pool = torch.nn.functional.avg_pool2d
    c2 = [local_correlation(pool(x, f, ceil_mode=True), pool(y, f, ceil_mode=True), window).pow(2) for f in factors]
    return 1.0 - torch.stack(c2).mean(0)


def structure_decorrelation_distance(
    x: Tensor,
    y: Tensor,
    window: int = 16,
    sigma: float = 3.0,
    blur: float = 1.5,
    max_shift: int = 6,
    shift_step: int = 3,
    power: float = 1.0,
) -> Tensor:
    """``1 - max_v c_v^2`` over the views ``v`` of ``y`` (its luma and each channel), with ``c_v`` the
    :func:`~distortion.imaging.statistics.aligned_local_correlation` of ``x``'s luma and ``v``, both first
    :func:`~distortion.imaging.augment.local_normalize`-d (smoothed at ``blur``, brought to one contrast in
    every ``sigma`` neighbourhood), each patch matched within ``max_shift`` pixels (tried every
    ``shift_step``; the smoothing bridges the steps between), the patches
    averaged as a power mean of exponent ``power`` (> 1: blanking some patches does not excuse
    keeping others intact).

    What a person sees of a face is the layout of its light and dark structure at whatever
    contrast, in whichever colour and wherever it moved by a few pixels: a faint copy, a colour
    wash, the face moved into another channel or translated all keep some ``c_v`` high; stripes
    finer than ``blur`` are smoothed away before the comparison.
    """
    check_image_pair(x, y)
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    views = [y] if y.shape[1] == 1 else [luma(y), *y.split(1, dim=1)]
    target = local_normalize(luma(x), sigma, blur)
    c = [
        aligned_local_correlation(target, local_normalize(v, sigma, blur), window, max_shift, shift_step, power)
        for v in views
    ]
    return 1.0 - torch.stack(c).pow(2).amax(0)


IMAGE_DISTANCES: dict[str, ImageDistance] = {
    "l1": l1_distance,
    "mse": mse_distance,
    "dssim": dssim_distance,
    "sobel": sobel_distance,
    "sobel_l1": sobel_l1_distance,
    "dssim_l1": dssim_l1_distance,
    "decorrelation": decorrelation_distance,
    "registered_decorrelation": registered_decorrelation_distance,
    "lowfreq_decorrelation": lowfreq_decorrelation_distance,
    "local_decorrelation": local_decorrelation_distance,
    "coarse_decorrelation": coarse_decorrelation_distance,
    "structure_decorrelation": structure_decorrelation_distance,
}


def get_image_distance(name: str | dict[str, float | dict[str, int | float]]) -> ImageDistance:
    """Look up an image distance by name, or a weighted sum ``{name: weight, ...}`` of several.

    A weight may also be ``{"weight": w, **options}``, the options going to the distance, e.g.
    ``{local_decorrelation: {weight: 2.0, window: 8, factor: 2}}`` for 28-pixel digits. Unknown
    names, unknown options and negative weights raise with a message naming them.
    """
    entries = {name: 1.0} if isinstance(name, str) else dict(name)
    terms: list[tuple[float, ImageDistance]] = []
    for key, entry in entries.items():
        if key not in IMAGE_DISTANCES:
            raise ValueError(f"unknown image distance {key!r}; choose one of {sorted(IMAGE_DISTANCES)}")
        options = dict(entry) if isinstance(entry, dict) else {"weight": entry}
        weight = options.pop("weight", 1.0)
        if not weight >= 0:
            raise ValueError(f"weight of image distance {key!r} must be >= 0, got {weight}")
        distance = IMAGE_DISTANCES[key]
        if options:
            accepted = set(inspect.signature(distance).parameters) - {"x", "y"}
            if unknown := set(options) - accepted:
                raise ValueError(f"image distance {key!r} has no option {sorted(unknown)}; it takes {sorted(accepted)}")
            distance = functools.partial(distance, **options)
        terms.append((weight, distance))
    if len(terms) == 1 and terms[0][0] == 1.0:
        return terms[0][1]

    def weighted_sum(x: Tensor, y: Tensor) -> Tensor:
        return sum(weight * distance(x, y) for weight, distance in terms)

    return weighted_sum
