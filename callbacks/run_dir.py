"""The folder a run writes its files to."""

from __future__ import annotations

from pathlib import Path

import lightning as L


def run_dir(trainer: L.Trainer) -> Path:
    """The first logger's folder (``runs/<name>/version_<n>`` for the CSV logger), else the root dir."""
    path = Path(trainer.log_dir or trainer.default_root_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path
