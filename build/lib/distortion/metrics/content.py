"""What G(x) keeps of x, beside what it has of somebody else: the per-image content statistics and their
baseline, reported by every command.

A statistic of G(x) against x (a correlation, a content change, SSIM) means something only beside the same
statistic of G(x) against a photo of someone else (on MNIST: a digit of another class). One texture shared by
every carrier meets every face alike; a G that keeps x meets x more than a stranger. For each statistic
``s`` :class:`ContentMeans` reports ``s`` (G(x) against x), ``s_mismatched`` (G(x) against another person's
image, :class:`MismatchedPartners`) and ``s_leak``, their difference, signed so that a positive leak means
G(x) resembles x more than it resembles a stranger: ``s - s_mismatched`` for similarities (SSIM, PSNR),
``s_mismatched - s`` for changes and distances. README and docs tables report the leak.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from distortion.imaging.statistics import content_change, local_content_change, psnr, registered_content_change, ssim
from distortion.objective.image_distances import dssim_distance, l1_distance, mse_distance

__all__ = ["CONTENT_STATISTICS", "SIMILARITIES", "ContentMeans", "MismatchedPartners", "leak"]

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
# statistics where higher means more alike; every other one is a change (higher means less alike)
SIMILARITIES = frozenset({"ssim", "psnr"})


def leak(name: str, own: float, mismatched: float) -> float:
    """How much more G(x) resembles x than a stranger's image by statistic ``name`` (0: no more)."""
    return own - mismatched if name in SIMILARITIES else mismatched - own


class MismatchedPartners:
    """For each image of a stream of batches, an image of another label (another person, another digit).

    The partner of item ``i`` is the next image, cyclically, of the current batch and then of a pool of the
    last ``pool`` images seen, whose label differs: within a batch of distinct labels the partners are a
    permutation of the batch itself, so a G that draws one shared pattern for all scores exactly what it
    scores against its own photos. Batches of one person (LFW sorts by name) draw from the pool.
    """

    def __init__(self, pool: int = 256) -> None:
        self.pool = pool
        self.images: Tensor | None = None
        self.labels: Tensor | None = None

    def __call__(self, x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """``(partners, found)``: ``(B, C, H, W)`` images and a ``(B,)`` mask of the items that have one."""
        labels = labels.to(x.device)
        images = x if self.images is None else torch.cat([x, self.images.to(x.device)])
        pool_labels = labels if self.labels is None else torch.cat([labels, self.labels.to(x.device)])
        n, b = len(images), len(x)
        offset = (torch.arange(n, device=x.device)[None, :] - torch.arange(b, device=x.device)[:, None] - 1) % n
        other = labels[:, None] != pool_labels[None, :]
        order = torch.where(other, offset, torch.full_like(offset, n))
        choice = order.argmin(1)
        found = other.gather(1, choice[:, None]).squeeze(1)
        self.images, self.labels = images[: self.pool].detach(), pool_labels[: self.pool].detach()
        return images[choice], found

    def reset(self) -> None:
        self.images = self.labels = None


class ContentMeans(nn.Module):
    """Running means of every :data:`CONTENT_STATISTICS` statistic of ``(x, G(x))`` pairs and, given labels,
    of ``(another label's image, G(x))`` pairs: the baseline and the leak (see the module's docstring).

    ``update(x, g, labels)`` takes two ``(B, C, H, W)`` batches in ``[0, 1]`` and the ``(B,)`` labels (person
    or class; ``None``: no baseline); ``compute()`` returns the means of the images seen so far (an empty dict
    before any), ``reset()`` starts over. Means are torchmetrics states, so several processes agree.
    """

    def __init__(self, pool: int = 256) -> None:
        super().__init__()
        self.means = nn.ModuleDict({name: MeanMetric() for name in CONTENT_STATISTICS})
        self.mismatched = nn.ModuleDict({name: MeanMetric() for name in CONTENT_STATISTICS})
        self.partners = MismatchedPartners(pool)

    def update(self, x: Tensor, g: Tensor, labels: Tensor | None = None) -> None:
        x, g = x.float(), g.float()
        for name, fn in CONTENT_STATISTICS.items():
            self.means[name].update(fn(x, g))
        if labels is None:
            return
        other, found = self.partners(x, labels)
        if found.any():
            for name, fn in CONTENT_STATISTICS.items():
                self.mismatched[name].update(fn(other[found], g[found]))

    def compute(self) -> dict[str, float]:
        values = {}
        for name, metric in self.means.items():
            if not metric.update_count:
                continue
            values[name] = float(metric.compute())
            if self.mismatched[name].update_count:
                values[f"{name}_mismatched"] = float(self.mismatched[name].compute())
                values[f"{name}_leak"] = leak(name, values[name], values[f"{name}_mismatched"])
        return values

    def reset(self) -> None:
        for metric in [*self.means.values(), *self.mismatched.values()]:
            metric.reset()
        self.partners.reset()
