"""LFW faces for the distortion pipeline, from the aligned-chip cache (``distortion align``).

Splits are identity-disjoint where it matters: G trains on every person who does not appear in
View 1's ``pairsDevTest.txt``; validation scores the DevTest pairs (people G never saw); the test
stage scores View 2 (``pairs.txt``, 10 folds; its people overlap G's training people, as LFW's
View 2 covers the whole dataset, so View 1 is the number to quote for unseen identities).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from distortion.data.batches import PairBatch
from distortion.datamodules.base import SplitDataModule
from distortion.datamodules.pairs import ImageDataset, TripletDataset
from distortion.faces.chip_cache import ChipCache, build_chip_cache
from distortion.faces.lfw_pairs import VIEW_FILES, LFWPair, read_pairs, training_images
from distortion.imaging.image_io import chips_to_tensor
from distortion.paths import default_cache_dir, resolve_data_root

__all__ = ["LFWDataModule", "LFWPairDataset"]


class LFWPairDataset(Dataset):
    """:class:`~distortion.data.batches.PairBatch` items for LFW pairs; ``y`` is an identity number.

    Each fold must hold as many matched as mismatched pairs, as LFW's lists do.
    """

    def __init__(self, chips: np.ndarray, rows: dict, folds: list[list[LFWPair]], identities: dict[str, int]):
        self.chips = chips
        self.items = []
        for f, fold in enumerate(folds):
            # interleave matched and mismatched pairs, so that every batch holds both
            matched, mismatched = [p for p in fold if p.same], [p for p in fold if not p.same]
            for pair in (p for two in zip(matched, mismatched) for p in two):
                a, b = pair.images
                if a not in rows or b not in rows:
                    raise KeyError(f"pair {pair} has an image missing from the chip cache")
                self.items.append((rows[a], identities[a[0]], rows[b], identities[b[0]], pair.same, f))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> PairBatch:
        ra, ya, rb, yb, same, fold = self.items[k]
        return PairBatch(
            chips_to_tensor(self.chips[ra]),
            torch.tensor(ya),
            chips_to_tensor(self.chips[rb]),
            torch.tensor(yb),
            torch.tensor(int(same)),
            torch.tensor(fold),
        )


class _TrainImages(Dataset):
    """Training items from uint8 images: to [0, 1], then a random flip and a small crop resized back.

    Each image of an item (image, or anchor/positive/negative) gets its own random draw; the loss
    then compares that transformed x with G(x), so both sides of it see the same transform.
    """

    def __init__(self, base: Dataset, crop_scale: float) -> None:
        self.base = base
        size = base[0][0].shape[-1]
        steps = [v2.RandomHorizontalFlip()]
        if crop_scale < 1:
            steps.append(v2.RandomResizedCrop(size, scale=(crop_scale, 1.0), ratio=(0.95, 1.05), antialias=True))
        self.transform = v2.Compose(steps)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[Tensor, ...]:
        item = self.base[i]
        return type(item)(*(self.transform(x.float().div(255)) if x.ndim == 3 else x for x in item))


class LFWDataModule(SplitDataModule):
    """LFW face chips in ``[0, 1]``, shape ``(3, S, S)`` (S = 150 for dlib, 160 for facenet).

    Args:
        data_dir: the data root holding ``lfw/``; defaults to ``DISTORTION_DATA``.
        cache_dir: the aligned-chip cache; built on demand when missing (minutes; a message says so).
        aligner: whose alignment the backbone expects: ``dlib`` or ``facenet``.
        train_items: ``images`` (for G) or ``triplets``.
        batch_size: batch size of every loader.
        num_workers: loader worker processes.
        crop_scale: smallest area fraction of the random training crop (1.0 = no crop).
        seed: seed of the triplet stream.
        limit_train: use only the first N training images (0 = all).
        limit_eval: use only the first N pairs of each fold of the evaluation lists (0 = all).
    """

    def __init__(
        self,
        data_dir: str | None = None,
        cache_dir: str | None = None,
        aligner: Literal["dlib", "facenet"] = "dlib",
        train_items: Literal["images", "triplets"] = "images",
        batch_size: int = 16,
        num_workers: int = 0,
        crop_scale: float = 0.9,
        seed: int = 0,
        limit_train: int = 0,
        limit_eval: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or not 0 < crop_scale <= 1 or limit_train < 0 or limit_eval < 0:
            raise ValueError("batch_size >= 1, 0 < crop_scale <= 1, limit_train >= 0 and limit_eval >= 0 are required")
        self.lfw_root = resolve_data_root(data_dir, "lfw/pairs.txt") / "lfw"
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(aligner)
        self.save_hyperparameters()

    def prepare_data(self) -> None:
        if not (self.cache_dir / "meta.json").is_file():
            print(f"Aligning LFW into {self.cache_dir} (once; a few minutes on 2 cores) ...")
            build_chip_cache(self.lfw_root, self.cache_dir, self.hparams.aligner)

    def _folds(self, view: str) -> list[list[LFWPair]]:
        folds = read_pairs(self.lfw_root / VIEW_FILES[view])
        limit = self.hparams.limit_eval
        if limit:  # keep matched and mismatched pairs balanced
            half = len(folds[0]) // 2
            folds = [fold[: min(limit // 2, half)] + fold[half : half + min(limit // 2, half)] for fold in folds]
        return folds

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        cache = ChipCache.load(self.cache_dir)
        rows = cache.rows()
        names = sorted({name for name, _ in rows})
        identities = {name: i for i, name in enumerate(names)}
        hp = self.hparams
        train_keys = training_images(rows, self.lfw_root)
        train_people = {name for name, _ in train_keys}
        train_keys = train_keys[: hp.limit_train or None]
        chips = np.asarray(cache.chips)
        labels = torch.tensor([identities[name] for name, _ in train_keys])
        images = torch.from_numpy(chips[[rows[key] for key in train_keys]]).permute(0, 3, 1, 2)  # uint8 in RAM
        base = TripletDataset(images, labels, hp.seed) if hp.train_items == "triplets" else ImageDataset(images, labels)
        self.datasets["train"] = _TrainImages(base, hp.crop_scale)
        self.datasets["val"] = LFWPairDataset(chips, rows, self._folds("dev_test"), identities)
        self.datasets["test"] = LFWPairDataset(chips, rows, self._folds("view2"), identities)
        self.train_people = sorted(train_people)
