"""Logs how much G changed the images: the paper's distances in percent, SSIM, PSNR, content change."""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import nn
from torchmetrics import MeanMetric

from callbacks.stage_metrics import StageMetricsCallback
from distortion.image_metrics import content_change, local_content_change, psnr, registered_content_change, ssim
from distortion.losses import dssim_distance, l1_distance, mse_distance

IMAGE_METRICS = {
    "d_l1_pct": lambda x, g: 100 * l1_distance(x, g),
    "d_mse_pct": lambda x, g: 100 * mse_distance(x, g),
    "d_dssim_pct": lambda x, g: 100 * dssim_distance(x, g),
    "ssim": ssim,
    "psnr": psnr,
    "content_change_pct": content_change,
    "local_content_change_pct": local_content_change,
    "registered_content_change_pct": registered_content_change,
}


class DistortionMetrics(StageMetricsCallback):
    """Mean over the evaluated images of each statistic in :data:`IMAGE_METRICS` for ``(x, G(x))``.

    Reads ``x_a`` and ``g_a`` from the step outputs; logs ``<stage>/<name>`` at epoch end. The means
    are synchronised across processes.
    """

    def __init__(self) -> None:
        self.means = nn.ModuleDict({name: MeanMetric() for name in IMAGE_METRICS})

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.means.to(pl_module.device)

    def update(self, outputs: dict[str, Any]) -> None:
        if "g_a" not in outputs:
            return
        x, g = outputs["x_a"].float(), outputs["g_a"].float()
        for name, fn in IMAGE_METRICS.items():
            self.means[name].update(fn(x, g))

    def log_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for name, metric in self.means.items():
            if metric.update_count:
                pl_module.log(f"{stage}/{name}", metric.compute())
            metric.reset()
