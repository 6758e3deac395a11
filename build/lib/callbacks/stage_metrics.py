"""Base class for callbacks that accumulate over validation/test batches and log at epoch end."""

from __future__ import annotations

from typing import Any

import lightning as L


class StageMetricsCallback(L.Callback):
    """Calls :meth:`update` with every validation/test step's outputs and :meth:`log_epoch` at epoch end."""

    def update(self, outputs: Any) -> None:
        """Accumulate one step's outputs (a dict, see :mod:`distortion.modules`)."""
        raise NotImplementedError

    def log_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Compute, log as ``<stage>/...`` and reset."""
        raise NotImplementedError

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if isinstance(outputs, dict):
            self.update(outputs)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if isinstance(outputs, dict):
            self.update(outputs)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_epoch(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_epoch(trainer, pl_module, "test")
