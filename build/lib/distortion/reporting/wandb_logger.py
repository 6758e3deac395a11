"""Lightning's W&B logger without the setting that makes every run print a deprecation.

Lightning's ``WandbLogger`` always hands ``wandb.init`` an ``anonymous`` value (``None`` when not asked for),
and wandb warns at every run that the setting has no effect. This logger leaves it out; everything else is
Lightning's.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger

__all__ = ["WandbLogger"]


class WandbLogger(LightningWandbLogger):
    """:class:`lightning.pytorch.loggers.WandbLogger` that never passes ``anonymous`` to ``wandb.init``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)
