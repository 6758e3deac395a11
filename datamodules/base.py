"""What every datamodule of the project shares: a dataset per split and one loader recipe."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from distortion.datamodules.sampler import ResumableRandomSampler


class SplitDataModule(L.LightningDataModule):
    """Loaders over ``self.datasets["train" | "val" | "test"]`` (filled by a subclass's ``setup``).

    Training batches are shuffled by a :class:`ResumableRandomSampler` (seeded by the run's seed,
    ``seed`` and the epoch) and drop their last incomplete batch; a run resumed mid-epoch skips
    the batches it had trained on, so it continues exactly where it was killed. Evaluation batches
    keep their order, so pairs and reports are the same on every run. ``predict`` reads the test
    set. The subclass stores ``batch_size``, ``num_workers`` and ``seed`` in its hyperparameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.datasets: dict[str, Dataset] = {}
        self._resume_batches = 0

    def _loader(self, split: str, sampler: ResumableRandomSampler | None = None) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            drop_last=sampler is not None,
        )

    def train_dataloader(self) -> DataLoader:
        # the run's seed (seed_everything) and the data seed both choose the order
        seed = (torch.initial_seed() + self.hparams.seed) % 2**62
        sampler = ResumableRandomSampler(len(self.datasets["train"]), seed)
        loader = self._loader("train", sampler)
        if self._resume_batches and len(loader):  # resumed mid-epoch: skip what the run had trained on
            sampler.skip(self._resume_batches % len(loader) * self.hparams.batch_size)
        self._resume_batches = 0
        return loader

    def state_dict(self) -> dict[str, int]:
        """How many training batches the run has consumed; saved in every checkpoint."""
        trainer = self.trainer
        if trainer is None or trainer.world_size != 1:  # a resumed DDP run reshuffles its interrupted epoch
            return {}
        return {"train_batches": trainer.global_step * trainer.accumulate_grad_batches}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Remember where a resumed run stopped, for :meth:`train_dataloader`."""
        self._resume_batches = state_dict.get("train_batches", 0)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
