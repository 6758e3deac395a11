"""Command line: ``distortion fit|validate|test|predict --config ...`` (LightningCLI) and ``distortion sweep``."""

from __future__ import annotations

import os
import sys

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI


class DistortionCLI(LightningCLI):
    """LightningCLI over any LightningModule and LightningDataModule named by ``class_path`` in a config."""

    def __init__(self, **kwargs) -> None:
        os.environ.setdefault("WANDB_MODE", "offline")
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(
            L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, **kwargs
        )


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``distortion`` console script and of ``python -m distortion``."""
    argv = list(sys.argv[1:] if args is None else args)
    torch.set_float32_matmul_precision("high")
    if argv[:1] == ["sweep"]:
        from distortion.sweep import sweep_main

        sweep_main(argv[1:])
        return
    DistortionCLI(args=args)
