"""Log a report of a command (``evaluate``, ``privacy``) and its images to a W&B run."""

from __future__ import annotations

import os
from pathlib import Path


def flatten_report(report: dict) -> dict[str, float | int]:
    """The numbers of a nested report as ``section/key[/sub]`` entries (strings and lists left out)."""
    flat: dict[str, float | int] = {}
    for section, values in report.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if isinstance(value, dict):
                flat |= {f"{section}/{key}/{k}": v for k, v in value.items() if isinstance(v, int | float)}
            elif isinstance(value, int | float):
                flat[f"{section}/{key}"] = value
    return flat


def log_report_to_wandb(report: dict, out_dir: Path, name: str, job_type: str, images: list[str]) -> None:
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
