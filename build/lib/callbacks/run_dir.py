"""The folder a run writes its files to."""

from __future__ import annotations

from pathlib import Path

import lightning as L


def run_dir(trainer: L.Trainer) -> Path | None:
    """The first logger's folder (``runs/<name>/version_<n>`` for the CSV logger), else the root dir.

    ``None`` in a ``fast_dev_run``, which writes no files. Unlike ``trainer.log_dir`` this involves
    no collective call, so callbacks may call it on the global-zero process alone.
    """
    if trainer.fast_dev_run:
        return None
    logger = trainer.loggers[0] if trainer.loggers else None
    path = Path(getattr(logger, "log_dir", None) or trainer.default_root_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path
