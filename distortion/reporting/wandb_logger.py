"""Lightning's W&B logger without the two things that make a run print a warning.

Lightning's ``WandbLogger`` always hands ``wandb.init`` an ``anonymous`` value (``None`` when not asked for),
and wandb warns at every run that the setting has no effect; and wandb warns ``git root runs does not exist``
when the save folder is not there yet (the first run of a fresh clone). This logger leaves the setting out
and makes the folder; everything else is Lightning's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger

__all__ = ["WandbLogger"]


class WandbLogger(LightningWandbLogger):
    """:class:`lightning.pytorch.loggers.WandbLogger` that never passes ``anonymous`` to ``wandb.init`` and
    makes its save folder before wandb looks for it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)
        if self.save_dir:
            Path(self.save_dir).mkdir(parents=True, exist_ok=True)
