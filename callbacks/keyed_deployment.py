"""KeyedDeployment: what a keyed carrier's deployment needs from its training run, beside G."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from distortion.data.batches import ImageBatch
from distortion.deployment.calibration import calibrate_distorter
from distortion.deployment.fitting import fit_on_photos


def _photos(trainer: L.Trainer):
    return (ImageBatch(*batch) for batch in trainer.datamodule.train_dataloader())


class KeyedDeployment(L.Callback):
    """Fit the keyed transform on training people before a keyed carrier trains (when it is not fitted), and
    calibrate the deployment's operating threshold (score at FAR 0.1%, training people, under the evaluation key)
    at every checkpoint, which then holds it (``operating_threshold``).

    Args:
        fit_images: training photos whose F fits the transform.
        calibration_images: training photos whose carriers set the threshold.
    """

    def __init__(self, fit_images: int = 4096, calibration_images: int = 512) -> None:
        if fit_images < 1 or calibration_images < 2:
            raise ValueError(f"fit_images must be >= 1 and calibration_images >= 2, got {fit_images}, "
                             f"{calibration_images}")  # fmt: skip
        self.fit_images, self.calibration_images = fit_images, calibration_images
        self._calibrated_at = -1  # the global step of the last calibration: best and last of one step share it

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not getattr(pl_module, "keyed", False):
            raise ValueError("KeyedDeployment needs a GeneratorModule with a template_transform (a keyed carrier)")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        transform = pl_module.template_transform
        if not bool(transform.fitted):
            fit_on_photos(transform, pl_module.embedding, _photos(trainer), self.fit_images)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == "fit" and self._calibrated_at != trainer.global_step:
            was_training = pl_module.training
            pl_module.eval()
            devices = [pl_module.device] if pl_module.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # the saved random states stay those of the run
                threshold = calibrate_distorter(pl_module.distorter, _photos(trainer), self.calibration_images)
            pl_module.train(was_training)
            pl_module.operating_threshold.fill_(threshold)
            self._calibrated_at = trainer.global_step
            rank_zero_info(f"operating threshold (FAR 0.1%, training people): {threshold:.4f}")
            for logger in trainer.loggers:
                logger.log_metrics({"deploy/operating_threshold": threshold}, step=trainer.global_step)
        checkpoint["state_dict"]["operating_threshold"] = pl_module.operating_threshold.clone()
