"""Logs what a pixel nearest-neighbour reader, a reader of a kind the project never trains, reads of G's images."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from distortion.callbacks.stage_metrics import StageMetricsCallback
from distortion.metrics.readers import nearest_neighbour_accuracy, standardise


class PixelNearestNeighbour(StageMetricsCallback):
    """1-nearest-neighbour reading on pixels against labelled training digits, of originals and of G's images.

    Logs ``<stage>/pixel_1nn_acc_{original,distorted,distorted_standardised}`` over the first ``max_images``
    images of the epoch; ``standardised`` compares images after each is set to zero mean and unit variance
    (:func:`~distortion.metrics.readers.standardise`), so faint or washed-out images are read by their shape.
    The reference digits come from the datamodule's ``reference_images`` (training digits only).

    Args:
        reference_images: how many training digits the reader holds.
        max_images: how many of the epoch's images it reads.
    """

    def __init__(self, reference_images: int = 20000, max_images: int = 2000) -> None:
        if reference_images < 1 or max_images < 1:
            raise ValueError("reference_images and max_images are >= 1")
        self.reference_count, self.max_images = reference_images, max_images
        self.reference: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.seen: dict[str, list[torch.Tensor]] = {"x": [], "g": [], "y": []}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        if not hasattr(datamodule, "reference_images"):
            raise TypeError(f"PixelNearestNeighbour needs a datamodule with reference_images(), not {type(datamodule)}")
        images, labels = datamodule.reference_images(self.reference_count)
        self.reference = images, standardise(images), labels

    def update(self, outputs: dict[str, Any]) -> None:
        if "g_a" not in outputs or sum(len(y) for y in self.seen["y"]) >= self.max_images:
            return
        self.seen["x"].append(outputs["x_a"].detach().float().cpu())
        self.seen["g"].append(outputs["g_a"].detach().float().cpu())
        self.seen["y"].append(outputs["y_a"].detach().cpu())

    def log_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not self.seen["y"]:
            return
        x, g, y = (torch.cat(self.seen[k])[: self.max_images] for k in ("x", "g", "y"))
        self.seen = {"x": [], "g": [], "y": []}
        images, standardised, labels = self.reference
        readings = {
            "original": nearest_neighbour_accuracy(images, labels, x, y),
            "distorted": nearest_neighbour_accuracy(images, labels, g, y),
            "distorted_standardised": nearest_neighbour_accuracy(standardised, labels, standardise(g), y),
        }
        for key, value in readings.items():
            pl_module.log(f"{stage}/pixel_1nn_acc_{key}", value)
