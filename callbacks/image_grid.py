"""Saves and logs a grid of originals beside G's images, to look at with one's own eyes."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from torchvision.utils import save_image

from distortion.callbacks.run_dir import run_dir
from distortion.imaging.augment import local_contrast
from distortion.reporting.grids import pair_grid


class ImageGrid(L.Callback):
    """On the first evaluation batch: a grid of ``num_images`` originals, each row followed by a row of
    their G(x), and with ``local_contrast`` by a row of G(x) with its local contrast normalised
    (:func:`~distortion.imaging.augment.local_contrast`): what a person sees after turning up the contrast,
    the honest view of a faint or textured distortion.

    Validation grids go to ``<run>/grids/epoch_<n>.png``, the test grid to ``<run>/grid.png``; every
    W&B logger also receives the image.
    """

    def __init__(self, num_images: int = 16, per_row: int = 8, local_contrast: bool = False) -> None:
        if num_images < 1 or per_row < 1:
            raise ValueError(f"num_images and per_row must be >= 1, got {num_images}, {per_row}")
        self.num_images, self.per_row, self.local_contrast = num_images, per_row, local_contrast

    def _save(self, trainer: L.Trainer, outputs: Any, stage: str) -> None:
        if (
            not (isinstance(outputs, dict) and "g_a" in outputs)
            or trainer.sanity_checking
            or not trainer.is_global_zero
        ):
            return
        n = self.num_images
        x, g = outputs["x_a"][:n].cpu().float(), outputs["g_a"][:n].cpu().float()
        views = [g, local_contrast(g)] if self.local_contrast else [g]
        grid = pair_grid(x, *views, per_row=self.per_row, scale=3 if x.shape[-1] < 64 else 1)
        directory = run_dir(trainer)
        if directory is not None:
            name = "grid.png" if stage == "test" else f"grids/epoch_{trainer.current_epoch:03d}.png"
            (directory / name).parent.mkdir(exist_ok=True)
            save_image(grid, directory / name)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(f"{stage}/grid", [grid], step=trainer.global_step)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0:
            self._save(trainer, outputs, "val")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0:
            self._save(trainer, outputs, "test")
