"""Logs how well an independent reader still reads the digits: on originals and on G's images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from distortion.callbacks.stage_metrics import StageMetricsCallback
from distortion.imaging.augment import local_contrast, percentile_stretch
from distortion.modules.base import load_frozen
from distortion.modules.reader import ReaderModule


class ReaderAccuracy(StageMetricsCallback):
    """Accuracy of a frozen reader on ``x_a``, on ``g_a``, and on two views of ``g_a`` that stand for a
    person turning up the contrast of a faint image.

    Logs ``<stage>/<name>_acc_{original,distorted,distorted_stretched,distorted_local_contrast}``:
    ``stretched`` maps each image's 10% / 90% pixel quantiles to 0 / 1
    (:func:`~distortion.imaging.augment.percentile_stretch`), ``local_contrast`` normalises the contrast
    of every neighbourhood (:func:`~distortion.imaging.augment.local_contrast`), which a bright patch
    elsewhere in the image cannot defeat. A G that only hides the digit in low contrast is caught
    there; ``original_local_contrast`` checks that the reader reads originals through that view.

    The reader is loaded here, in the callback, so it can never enter the generator's loss.

    Args:
        reader_ckpt: checkpoint of a trained :class:`~distortion.modules.ReaderModule`.
        name: prefix of the logged keys (``reader`` for the evaluation reader).
        num_classes: number of classes.
    """

    def __init__(self, reader_ckpt: str | Path, name: str = "reader", num_classes: int = 10) -> None:
        self.reader = load_frozen(ReaderModule, reader_ckpt, "net")
        self.name = name
        self.acc = nn.ModuleDict(
            {
                k: MulticlassAccuracy(num_classes, average="micro")
                for k in (
                    "original",
                    "original_local_contrast",
                    "distorted",
                    "distorted_stretched",
                    "distorted_local_contrast",
                )
            }
        )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.reader.to(pl_module.device)
        self.acc.to(pl_module.device)

    def update(self, outputs: dict[str, Any]) -> None:
        if "g_a" not in outputs:
            return
        self.acc["original"].update(self.reader(outputs["x_a"]), outputs["y_a"])
        self.acc["distorted"].update(self.reader(outputs["g_a"]), outputs["y_a"])
        self.acc["distorted_stretched"].update(self.reader(percentile_stretch(outputs["g_a"])), outputs["y_a"])
        self.acc["original_local_contrast"].update(self.reader(local_contrast(outputs["x_a"])), outputs["y_a"])
        self.acc["distorted_local_contrast"].update(self.reader(local_contrast(outputs["g_a"])), outputs["y_a"])

    def log_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for key, metric in self.acc.items():
            if metric.update_count:
                pl_module.log(f"{stage}/{self.name}_acc_{key}", metric.compute())
            metric.reset()
