"""ReaderModule: trains a digit classifier that stands in for a person reading G's images."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from distortion.data.batches import ImageBatch, PairBatch
from distortion.imaging.augment import appearance_augment
from distortion.modules.base import TrainableModule, network_arguments


class ReaderModule(TrainableModule):
    """Train a classifier on original digits under appearance augmentations (inversion, outlines, ...).

    The reader is only ever used for evaluation; it never enters a generator's loss.

    Args:
        net: the classifier (logits out).
        augment_p: share of training images given one appearance augmentation (inversion is
            applied to half of all images on top), see :func:`distortion.imaging.augment.appearance_augment`;
            0 trains on plain originals.
        lr: Adam learning rate.
    """

    def __init__(self, net: nn.Module, augment_p: float = 0.8, lr: float = 1e-3, num_classes: int = 10) -> None:
        super().__init__(lr)
        self.save_hyperparameters(ignore=network_arguments("net"))
        self.net = net
        if not 0 <= augment_p <= 1:
            raise ValueError(f"augment_p must lie in [0, 1], got {augment_p}")
        self.augment_p = augment_p
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc_augmented = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: ImageBatch, batch_idx: int) -> Tensor:
        x, y = batch.x, batch.y
        if self.augment_p > 0:
            x = appearance_augment(x, self.augment_p)
        loss = self.checked(F.cross_entropy(self.net(x).float(), y))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _eval_step(self, batch: PairBatch, stage: str) -> dict[str, Tensor]:
        x_a, y_a, same = batch.x_a, batch.y_a, batch.same
        logits = self.net(x_a)
        self.val_acc(logits, y_a)
        self.val_acc_augmented(self.net(appearance_augment(x_a)), y_a)
        self.log(f"{stage}/reader_acc", self.val_acc, prog_bar=True)
        self.log(f"{stage}/reader_acc_augmented", self.val_acc_augmented)
        return {"x_a": x_a, "y_a": y_a, "same": same, "logits_a": logits}

    def validation_step(self, batch: PairBatch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "val")

    def test_step(self, batch: PairBatch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch, "test")
