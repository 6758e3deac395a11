"""``distortion fit|test`` through LightningCLI on small real MNIST slices: every config, the shared
defaults, the reports, and bad configs stopping before training."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from distortion.cli import main
from distortion.modules import GeneratorModule
from tests.conftest import ROOT, make_config


@pytest.mark.parametrize("config", ["mnist_embedding.yaml", "mnist_reader.yaml"])
def test_fast_dev_run_from_each_config(config: str, tmp_path) -> None:
    main(["fit", "--config", str(make_config(config, tmp_path, "run", wandb=True)), "--trainer.fast_dev_run", "2"])


def test_fast_dev_run_of_the_generator_config(trained, tmp_path) -> None:
    main(["fit", "--config", str(trained["generator_config"]), "--trainer.fast_dev_run", "2"])


def test_generator_fit_and_test_write_the_report(trained) -> None:
    cfg = str(trained["generator_config"])
    args = ["--config", cfg, "--data.init_args.limit_train", "512", "--data.init_args.limit_eval", "128"]
    main(["fit", *args, "--trainer.max_epochs", "1"])
    ckpt = trained["out"] / "gen" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    main(["test", *args, "--ckpt_path", str(ckpt)])
    run = sorted((trained["out"] / "gen").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    report = json.loads((run / "report.json").read_text())
    for comparison in ("orig", "deploy", "distorted"):
        for metric in ("eer", "auroc", "tar_far_1e-2", "tar_far_1e-3"):
            assert 0 <= report[f"test/{comparison}/{metric}"] <= 1
    for key in ("d_l1_pct", "d_mse_pct", "d_dssim_pct", "ssim", "psnr", "content_change_pct"):
        assert f"test/{key}" in report
    assert 0 <= report["test/reader_acc_original"] <= 1 and 0 <= report["test/reader_acc_distorted"] <= 1
    assert report["test/pixel_1nn_acc_original"] > 0.7 and 0 <= report["test/pixel_1nn_acc_distorted"] <= 1
    assert "| `test/deploy/eer` |" in (run / "report.md").read_text()
    assert (run / "roc.png").stat().st_size > 1000 and (run / "grid.png").stat().st_size > 1000

    # With --ckpt_path, Lightning takes the model's arguments from the checkpoint; the evaluation-only
    # settings keep the command line's value, the training settings the checkpoint's.
    main(["test", *args, "--ckpt_path", str(ckpt), "--model.init_args.enrolment.storage", "jpeg75",
          "--model.init_args.budget.tau", "0.5"])  # fmt: skip
    jpeg_run = sorted((trained["out"] / "gen").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    hparams = yaml.safe_load((jpeg_run / "hparams.yaml").read_text())
    trained_tau = yaml.safe_load(open(trained["generator_config"]))["model"]["init_args"]["budget"]["tau"]
    assert hparams["budget"]["tau"] == trained_tau != 0.5 and "enrolment" not in hparams  # never checkpointed
    jpeg = json.loads((jpeg_run / "report.json").read_text())
    assert jpeg["test/psnr"] != report["test/psnr"]  # the stored images were JPEG copies


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distortion", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize(
    "override, message",
    [
        ("--model.init_args.image.distance=psnr", "unknown image distance 'psnr'"),
        ("--model.init_args.image.alpha=-1", "alpha and warmup_steps must be >= 0, got -1.0"),
        ("--model.init_args.embedding_ckpt=/nonexistent/f.ckpt", "checkpoint '/nonexistent/f.ckpt' not found"),
        ("--data.init_args.data_dir=/nonexistent", "/nonexistent/MNIST/raw/train-images-idx3-ubyte not found"),
    ],
)
def test_bad_config_stops_before_training_with_a_clear_message(trained, override: str, message: str) -> None:
    result = run_cli("fit", "--config", str(trained["generator_config"]), override)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Epoch 0" not in result.stderr + result.stdout


def test_nan_in_the_data_stops_with_the_step_and_keeps_the_last_good_checkpoint(trained, tmp_path) -> None:
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from distortion.models import UNet

    x = torch.rand(64, 1, 28, 28)
    x[40] = float("nan")  # a corrupt image in the 6th batch
    loader = DataLoader(TensorDataset(x, torch.zeros(64, dtype=torch.long)), batch_size=8)
    module = GeneratorModule(UNet(depth=2, width=4), trained["embedding"])
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=2)
    trainer = L.Trainer(max_epochs=1, logger=False, callbacks=[ckpt], enable_progress_bar=False)
    with pytest.raises(FloatingPointError, match="non-finite training loss .* at global step 5"):
        trainer.fit(module, train_dataloaders=loader)
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())


def test_every_config_is_instantiated_with_the_shared_defaults(trained, tmp_path, monkeypatch) -> None:
    """Each experiment config builds its model, data and trainer (checkpoints it names linked to quick ones)."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from distortion.callbacks import CollapseGuard, TestReport, VerificationMetrics
    from distortion.lightning_cli import DistortionCLI
    from distortion.precision import trainer_precision

    for name, source in (("mnist_embedding_mlp", "embedding"), ("mnist_reader", "reader"),
                         ("mnist_reader2", "reader"), ("mnist_perceptual", "perceptual")):  # fmt: skip
        (tmp_path / "runs" / name / "checkpoints").mkdir(parents=True)
        (tmp_path / "runs" / name / "checkpoints" / "best.ckpt").symlink_to(trained[source])
    monkeypatch.chdir(tmp_path)
    configs = sorted(
        p for p in (ROOT / "configs").glob("*.yaml") if p.name not in ("defaults.yaml", "sweep_wandb.yaml")
    )
    assert len(configs) >= 10
    for path in configs:
        cli = DistortionCLI(run=False, args=["--config", str(path)])
        name = yaml.safe_load(path.read_text())["name"]
        callbacks = {type(c) for c in cli.trainer.callbacks}
        assert TestReport in callbacks, path.name  # from the defaults
        checkpoint = next(c for c in cli.trainer.callbacks if isinstance(c, ModelCheckpoint))
        assert checkpoint.dirpath == str(tmp_path / "runs" / name / "checkpoints"), path.name
        assert all(lg.name == name for lg in cli.trainer.loggers if isinstance(lg, CSVLogger)), path.name
        if isinstance(cli.model, GeneratorModule):
            assert {VerificationMetrics, CollapseGuard} <= callbacks, path.name
        assert cli.datamodule.hparams.batch_size >= 16
        assert str(cli.trainer.precision) == trainer_precision(), path.name  # no config overrides the rule
