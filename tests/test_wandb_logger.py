"""The project's W&B logger: a run on a fresh clone (no save folder yet) starts without wandb's warnings."""

from __future__ import annotations

import wandb

from distortion.reporting.wandb_logger import WandbLogger


def test_a_missing_save_folder_is_made_and_wandb_starts_without_warnings(tmp_path, monkeypatch, capfd) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    save_dir = tmp_path / "runs"
    logger = WandbLogger(save_dir=str(save_dir), name="fresh")
    assert save_dir.is_dir()
    assert "anonymous" not in logger._wandb_init
    assert logger.experiment is not None  # starts the (offline) run
    wandb.finish()
    err = capfd.readouterr().err
    assert "git root" not in err and "anonymous" not in err
