"""``distortion fit | validate | test | predict``: LightningCLI with the project's shared settings.

Every run reads ``configs/defaults.yaml`` first (accelerator, the CSV and W&B loggers, the
test report), then the experiment's config, which holds only what differs. A run whose configs and flags
leave ``trainer.precision`` unset gets the precision its device computes fastest
(:func:`~distortion.precision.trainer_precision`), and the log says which. A run's ``name`` places everything it
writes: logs in ``<save_dir>/<name>/version_<n>`` and checkpoints in
``<save_dir>/<name>/checkpoints`` (``save_dir`` of the first logger, ``runs`` by default).
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from distortion.modules.base import building_from_config
from distortion.precision import trainer_precision

__all__ = ["DEFAULTS", "DistortionCLI"]

DEFAULTS = Path(__file__).resolve().parents[1] / "configs" / "defaults.yaml"
SUBCOMMANDS = ("fit", "validate", "test", "predict")


class DistortionCLI(LightningCLI):
    """LightningCLI over any LightningModule and LightningDataModule named by ``class_path`` in a config,
    with :data:`DEFAULTS` read before every config and ``--name`` naming the run."""

    def __init__(self, **kwargs) -> None:
        os.environ.setdefault("WANDB_MODE", "offline")
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        defaults = {"default_config_files": [str(DEFAULTS)]} if DEFAULTS.is_file() else {}
        run = kwargs.get("run", True)
        kwargs.setdefault("parser_kwargs", {name: dict(defaults) for name in SUBCOMMANDS} if run else dict(defaults))
        super().__init__(
            L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, **kwargs
        )

    def instantiate_classes(self) -> None:
        """Build the model, data and trainer, the modules knowing that they come from a config."""
        with building_from_config():
            super().instantiate_classes()

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--name", type=str | None, default=None,
            help="the run's name: logs in <save_dir>/<name>/version_<n>, checkpoints in <save_dir>/<name>/checkpoints",
        )  # fmt: skip

    def _config(self):
        return self.config[self.subcommand] if self.subcommand else self.config

    def before_instantiate_classes(self) -> None:
        """Choose the precision when nobody did; give every logger the run's name and every checkpoint callback
        without a folder the run's folder."""
        config = self._config()
        if config.trainer.precision is None:
            accelerator = config.trainer.accelerator
            config.trainer.precision = trainer_precision(accelerator if isinstance(accelerator, str) else "auto")
            rank_zero_info(
                f"precision {config.trainer.precision}: chosen for this hardware (distortion/precision.py; "
                "--trainer.precision sets it)"
            )
        if not config.name:
            return
        loggers = config.trainer.logger if isinstance(config.trainer.logger, list) else []
        save_dir = next((lg.init_args.get("save_dir") for lg in loggers if lg.init_args.get("save_dir")), "runs")
        for logger in loggers:
            logger.init_args.name = config.name
        for callback in config.trainer.callbacks or []:
            if callback.class_path.endswith("ModelCheckpoint") and not callback.init_args.get("dirpath"):
                callback.init_args.dirpath = str(Path(save_dir) / config.name / "checkpoints")
