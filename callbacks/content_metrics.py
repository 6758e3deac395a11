"""Logs what G(x) keeps of x beside what it has of another person's image: the paper's distances in percent,
SSIM, PSNR, content change, each with its mismatched baseline and the leak."""

from __future__ import annotations

from typing import Any

import lightning as L

from distortion.callbacks.stage_metrics import StageMetricsCallback
from distortion.metrics.content import ContentMeans


class ContentMetrics(StageMetricsCallback):
    """Mean over the evaluated images of each statistic in
    :data:`~distortion.metrics.content.CONTENT_STATISTICS` for ``(x, G(x))``, for ``(another label's image,
    G(x))`` and their difference.

    Reads ``x_a``, ``y_a`` and ``g_a`` from the step outputs; logs ``<stage>/<name>``,
    ``<stage>/<name>_mismatched`` and ``<stage>/<name>_leak`` at epoch end. The means are synchronised across
    processes.
    """

    def __init__(self) -> None:
        self.means = ContentMeans()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.means.to(pl_module.device)

    def update(self, outputs: dict[str, Any]) -> None:
        if "g_a" in outputs:
            self.means.update(outputs["x_a"], outputs["g_a"], outputs.get("y_a"))

    def log_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for name, value in self.means.compute().items():
            pl_module.log(f"{stage}/{name}", value)
        self.means.reset()
