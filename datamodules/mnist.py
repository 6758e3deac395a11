"""MNIST for the distortion pipeline, read with ``torchvision.datasets.MNIST`` from a local root."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torchvision.datasets import MNIST

from distortion.datamodules.base import SplitDataModule
from distortion.datamodules.pairs import ImageDataset, PairDataset, TripletDataset, make_verification_pairs
from distortion.paths import resolve_data_root


class MNISTDataModule(SplitDataModule):
    """MNIST images in ``[0, 1]``, shape ``(1, 28, 28)``.

    Training items are ``(image, label)`` (for G and the readers) or triplets (for F). Validation
    is carved out of the official training set with a seeded split; the test stage uses the
    official 10,000 test images, never used for model selection. Both evaluation stages yield
    fixed, seeded verification pairs (:class:`~distortion.data.batches.PairBatch`), one per image, half genuine.

    Args:
        data_dir: folder holding ``MNIST/raw``; defaults to the ``DISTORTION_DATA`` variable.
        train_items: ``images`` or ``triplets``.
        val_size: images held out of the training set for validation.
        batch_size: batch size of every loader.
        num_workers: loader worker processes.
        seed: seed of the split, the pairs and the triplet stream.
        limit_train: use only the first N training images (0 = all); for quick runs and tests.
        limit_eval: use only the first N validation and test images (0 = all).
    """

    def __init__(
        self,
        data_dir: str | None = None,
        train_items: Literal["images", "triplets"] = "images",
        val_size: int = 5000,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        limit_train: int = 0,
        limit_eval: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or val_size < 2 or limit_train < 0 or limit_eval < 0:
            raise ValueError("batch_size >= 1, val_size >= 2, limit_train >= 0 and limit_eval >= 0 are required")
        self.root = resolve_data_root(data_dir, "MNIST/raw/train-images-idx3-ubyte")
        self.save_hyperparameters()
        self.image_shape = (1, 28, 28)

    def _load(self, train: bool) -> tuple[Tensor, Tensor]:
        mnist = MNIST(str(self.root), train=train, download=False)
        return (mnist.data.unsqueeze(1).float() / 255.0), mnist.targets

    def _split(self, count: int) -> tuple[Tensor, Tensor]:
        """Validation and training indices of the official training set (seeded)."""
        perm = torch.randperm(count, generator=torch.Generator().manual_seed(self.hparams.seed))
        return perm[: self.hparams.val_size], perm[self.hparams.val_size :]

    def reference_images(self, limit: int = 0) -> tuple[Tensor, Tensor]:
        """Labelled training digits (never validation or test ones), the first ``limit`` (0 = all): what a
        reader outside the project, such as a pixel nearest-neighbour reader, compares images with."""
        images, labels = self._load(train=True)
        train_idx = self._split(len(images))[1]
        if limit:
            train_idx = train_idx[:limit]
        return images[train_idx], labels[train_idx]

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in ("fit", "validate", None) and "val" not in self.datasets:
            images, labels = self._load(train=True)
            val_idx, train_idx = self._split(len(images))
            if hp.limit_train:
                train_idx = train_idx[: hp.limit_train]
            if hp.limit_eval:
                val_idx = val_idx[: hp.limit_eval]
            train_cls = TripletDataset if hp.train_items == "triplets" else ImageDataset
            self.datasets["train"] = train_cls(images[train_idx], labels[train_idx])
            self.datasets["val"] = self._pairs(images[val_idx], labels[val_idx], hp.seed + 1)
        if stage in ("test", "predict", None) and "test" not in self.datasets:
            images, labels = self._load(train=False)
            if hp.limit_eval:
                images, labels = images[: hp.limit_eval], labels[: hp.limit_eval]
            self.datasets["test"] = self._pairs(images, labels, hp.seed + 2)

    @staticmethod
    def _pairs(images: Tensor, labels: Tensor, seed: int) -> PairDataset:
        return PairDataset(images, labels, make_verification_pairs(labels, seed))
