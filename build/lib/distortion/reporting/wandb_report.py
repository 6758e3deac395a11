"""Log a report of a command (``evaluate``, ``privacy``) and its images to a W&B run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distortion.reporting.reports import flatten_report

__all__ = ["log_report_to_wandb"]


def log_report_to_wandb(report: Mapping[str, Any], out_dir: Path, name: str, job_type: str, images: list[str]) -> None:
    """A W&B run (offline unless ``WANDB_MODE`` says otherwise) whose summary holds the report's numbers
    and which logs the PNGs ``<out_dir>/<image>.png`` that exist."""
    import wandb

    os.environ.setdefault("WANDB_MODE", "offline")
    run = wandb.init(project="distortion", name=name, dir=str(out_dir), job_type=job_type)
    run.summary.update(flatten_report(report))
    run.log(
        {image: wandb.Image(str(out_dir / f"{image}.png")) for image in images if (out_dir / f"{image}.png").is_file()}
    )
    run.finish()
