"""The per-image statistics of how much a distortion changed an image, reported by every command.

:class:`ContentMeans` averages them over an evaluation (torchmetrics state, so several processes
agree); the test callback and the ``evaluate`` / ``privacy`` commands all use it.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torchmetrics import MeanMetric

from distortion.imaging.statistics import content_change, local_content_change, psnr, registered_content_change, ssim
from distortion.objective.image_distances import dssim_distance, l1_distance, mse_distance

__all__ = ["CONTENT_STATISTICS", "ContentMeans"]

CONTENT_STATISTICS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "d_l1_pct": lambda x, g: 100 * l1_distance(x, g),
    "d_mse_pct": lambda x, g: 100 * mse_distance(x, g),
    "d_dssim_pct": lambda x, g: 100 * dssim_distance(x, g),
    "ssim": ssim,
    "psnr": psnr,
    "content_change_pct": content_change,
    "local_content_change_pct": local_content_change,
    "registered_content_change_pct": registered_content_change,
}


class ContentMeans(nn.Module):
    """Running means of every :data:`CONTENT_STATISTICS` statistic of ``(x, G(x))`` pairs.

    ``update(x, g)`` takes two ``(B, C, H, W)`` batches in ``[0, 1]``; ``compute()`` returns the means
    of the images seen so far (an empty dict before any), ``reset()`` starts over.
    """

    def __init__(self) -> None:
        super().__init__()
        self.means = nn.ModuleDict({name: MeanMetric() for name in CONTENT_STATISTICS})

    def update(self, x: Tensor, g: Tensor) -> None:
        x, g = x.float(), g.float()
        for name, fn in CONTENT_STATISTICS.items():
            self.means[name].update(fn(x, g))

    def compute(self) -> dict[str, float]:
        return {name: float(m.compute()) for name, m in self.means.items() if m.update_count}

    def reset(self) -> None:
        for metric in self.means.values():
            metric.reset()
