"""What every datamodule of the project shares: a dataset per split and one loader recipe."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, Dataset


class SplitDataModule(L.LightningDataModule):
    """Loaders over ``self.datasets["train" | "val" | "test"]`` (filled by a subclass's ``setup``).

    Training batches are shuffled and drop their last incomplete batch; evaluation batches keep
    their order, so pairs and reports are the same on every run. ``predict`` reads the test set.
    The subclass stores ``batch_size`` and ``num_workers`` in its hyperparameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.datasets: dict[str, Dataset] = {}

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            drop_last=shuffle,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
