"""ReaderModule: trains a digit classifier that stands in for a person reading G's images."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from distortion.augment import appearance_augment
from distortion.modules.base import TrainableModule


class ReaderModule(TrainableModule):
    """Train a classifier on original digits under appearance augmentations (inversion, outlines, ...).

    The reader is only ever used for evaluation; it never enters a generator's loss.

    Args:
        net: the classifier (logits out).
        augment: apply :func:`distortion.augment.appearance_augment` to training batches.
        lr: Adam learning rate.
    """

    def __init__(self, net: nn.Module, augment: bool = True, lr: float = 1e-3, num_classes: int = 10) -> None:
        super().__init__(lr)
        self.save_hyperparameters()
        self.net = net
        self.augment = augment
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc_augmented = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        if self.augment:
            x = appearance_augment(x)
        loss = self.checked(F.cross_entropy(self.net(x).float(), y))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _eval_step(self, batch: tuple[Tensor, ...], stage: str) -> dict[str, Tensor]:
        x_a, y_a, _, _, same = batch
        logits = self.net(x_a)
        self.val_acc(logits, y_a)
        self.val_acc_augmented(self.net(appearance_augment(x_a)), y_a)
        self.log(f"{stage}/reader_acc", self.val_acc, prog_bar=True)
        self.log(f"{stage}/reader_acc_augmented", self.val_acc_augmented)
        return {"x_a": x_a, "y_a": y_a, "same": same, "logits_a": logits}

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "test")
