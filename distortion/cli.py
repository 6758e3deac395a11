"""Command line: ``distortion fit|validate|test|predict --config ...`` (LightningCLI), ``distortion sweep``,
``distortion align``, ``evaluate-backbone``, ``evaluate`` (the LFW report of a G),
``distort`` and ``privacy`` (inversion attack, unlinkability, a second recognizer)."""

from __future__ import annotations

import importlib
import os
import sys

import jsonargparse
import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI

# Commands that are one function each; jsonargparse turns the signature into flags and --help.
FUNCTION_COMMANDS = {
    "align": "distortion.chip_cache.align",
    "evaluate-backbone": "distortion.backbone_eval.evaluate_backbone",
    "evaluate": "distortion.face_report.evaluate",
    "distort": "distortion.distort.distort",
    "privacy": "distortion.privacy.privacy",
}


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
    if argv[:1] and argv[0] in FUNCTION_COMMANDS:
        module, function = FUNCTION_COMMANDS[argv[0]].rsplit(".", 1)
        jsonargparse.CLI(getattr(importlib.import_module(module), function), args=argv[1:], as_positional=False)
        return
    DistortionCLI(args=args)
