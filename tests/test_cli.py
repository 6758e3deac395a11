"""End-to-end runs through the command line on small real MNIST slices."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from distortion.cli import main
from distortion.modules import DistortionModule
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
    assert "| `test/deploy/eer` |" in (run / "report.md").read_text()
    assert (run / "roc.png").stat().st_size > 1000 and (run / "grid.png").stat().st_size > 1000


def test_embedding_stays_frozen_during_generator_training(trained) -> None:
    before = torch.load(trained["embedding"], map_location="cpu", weights_only=False)["state_dict"]
    main(["fit", "--config", str(trained["generator_config"]), "--trainer.max_steps", "5",
          "--data.init_args.limit_train", "512", "--data.init_args.limit_eval", "64"])  # fmt: skip
    ckpt = torch.load(trained["out"] / "gen" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    after = {k.removeprefix("embedding."): v for k, v in ckpt["state_dict"].items() if k.startswith("embedding.")}
    assert after.keys() == {k.removeprefix("net.") for k in before}
    for key, value in before.items():
        assert torch.equal(after[key.removeprefix("net.")], value), key


def test_gradients_reach_the_generator_not_the_embedding(trained) -> None:
    module = DistortionModule(torch.nn.Conv2d(1, 1, 3, padding=1), trained["embedding"], alpha=1.0, beta=1.0)
    module.train()
    assert not module.embedding.training
    terms = module.loss_terms(torch.rand(4, 1, 28, 28))
    terms["loss"].backward()
    assert module.generator.weight.grad is not None and module.generator.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in module.embedding.parameters())


def test_generator_loss_decreases_on_real_digits(trained) -> None:
    from torchvision.datasets import MNIST

    from distortion.models import UNet
    from tests.conftest import DATA

    torch.manual_seed(0)
    x = MNIST(str(DATA), train=True).data[:64].unsqueeze(1).float() / 255
    module = DistortionModule(UNet(depth=2, width=8), trained["embedding"], alpha=1.0, beta=10.0, tau=0.02)
    opt = module.configure_optimizers()["optimizer"]
    losses = []
    for _ in range(30):
        loss = module.loss_terms(x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.01


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distortion", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize(
    "override, message",
    [
        ("--model.init_args.image_distance=psnr", "unknown image distance 'psnr'"),
        ("--model.init_args.alpha=-1", "alpha must be >= 0, got -1.0"),
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
    module = DistortionModule(UNet(depth=2, width=4), trained["embedding"])
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=2)
    trainer = L.Trainer(max_epochs=1, logger=False, callbacks=[ckpt], enable_progress_bar=False)
    with pytest.raises(FloatingPointError, match="non-finite training loss .* at global step 5"):
        trainer.fit(module, train_dataloaders=loader)
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())


def test_every_config_parses(tmp_path) -> None:
    for path in sorted((ROOT / "configs").glob("*_*.yaml")):
        if path.name.startswith("sweep"):
            continue
        cfg = yaml.safe_load(path.read_text())
        assert {"model", "data", "trainer"} <= cfg.keys(), path
    result = run_cli("fit", "--config", "configs/mnist_generator.yaml", "--print_config")
    assert result.returncode == 0, result.stderr
    assert "image_distance: mse" in result.stdout
    result = run_cli("fit", "--config", "configs/lfw_generator.yaml", "--print_config")
    assert result.returncode == 0, result.stderr
    assert "class_path: distortion.backbones.DlibResNet" in result.stdout
    result = run_cli("fit", "--config", "configs/lfw_generator_structure.yaml", "--print_config")
    assert result.returncode == 0, result.stderr
    assert "structure_decorrelation: 2.0" in result.stdout and "beta: 40.0" in result.stdout


def test_sweep_writes_one_row_per_run_a_table_and_a_plot(trained, tmp_path) -> None:
    import csv

    from distortion.sweep import sweep_main

    out = tmp_path / "sweep"
    rows = sweep_main(
        ["--config", str(trained["generator_config"]), "--alphas", "[0.5,2]", "--betas", "[10]", "--out", str(out),
         "--grid", '{"model.init_args.tau": [0.05]}',
         "--", "--trainer.max_epochs", "1", "--data.init_args.limit_train", "256", "--data.init_args.limit_eval", "256"]
    )  # fmt: skip
    assert [(r["alpha"], r["beta"], r["tau"]) for r in rows] == [(0.5, 10.0, 0.05), (2.0, 10.0, 0.05)]
    with open(out / "sweep.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2
    assert {"tau", "test/deploy/eer", "test/d_mse_pct", "test/reader_acc_distorted"} <= table[0].keys()
    assert (out / "sweep.md").read_text().splitlines()[0].startswith("| alpha | beta | tau |")
    assert (out / "sweep.png").stat().st_size > 1000
    hparams = yaml.safe_load((out / "alpha0.5_beta10_tau0.05" / "version_0" / "hparams.yaml").read_text())
    assert hparams["tau"] == 0.05  # the grid's value reached the run
    assert (out / "alpha0.5_beta10_tau0.05" / "checkpoints" / "last.ckpt").is_file()


def test_pareto_front_keeps_the_undominated_runs() -> None:
    from distortion.sweep import pareto_front

    points = [(1.0, 60.0), (2.0, 70.0), (1.5, 55.0), (3.0, 70.0), (0.5, 40.0)]  # (EER, content change)
    assert pareto_front(points, maximize_y=True) == [4, 0, 1]
    assert pareto_front([(1.0, 0.9), (2.0, 0.2), (2.5, 0.5)], maximize_y=False) == [0, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [({"alpha_warmup_steps": -1}, "alpha_warmup_steps must be >= 0"), ({"tau": float("nan")}, "tau must be >= 0")],
)
def test_distortion_module_rejects_bad_weights(trained, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        DistortionModule(torch.nn.Identity(), trained["embedding"], **kwargs)


def test_alpha_warms_up_linearly(trained) -> None:
    module = DistortionModule(torch.nn.Identity(), trained["embedding"], alpha=2.0, alpha_warmup_steps=100)
    assert module.current_alpha() == 0.0  # global_step is 0 before training


def test_readers_and_f_stay_unchanged_while_g_learns_to_fool_p(trained) -> None:
    def weights(path):
        return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]

    before_p, before_f = weights(trained["perceptual"]), weights(trained["embedding"])
    main(["fit", "--config", str(trained["unreadable_config"]), "--trainer.max_steps", "5",
          "--trainer.log_every_n_steps", "1", "--data.init_args.limit_train", "512",
          "--data.init_args.limit_eval", "256"])  # fmt: skip
    after = weights(trained["out"] / "gen_unreadable" / "checkpoints" / "last.ckpt")
    for prefix, before in (("perceptual.", before_p), ("embedding.", before_f)):
        for key, value in before.items():
            if key.startswith("net."):
                assert torch.equal(after[prefix + key.removeprefix("net.")], value), prefix + key
    run = sorted((trained["out"] / "gen_unreadable").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    assert "train/perceptual" in (run / "metrics.csv").read_text().splitlines()[0]


def test_gamma_needs_a_perceptual_network(trained) -> None:
    with pytest.raises(ValueError, match="gamma > 0 needs perceptual_ckpt"):
        DistortionModule(torch.nn.Identity(), trained["embedding"], gamma=1.0)


def test_perceptual_term_pushes_p_towards_uniform(trained) -> None:
    from distortion.losses import uniform_prediction_loss

    module = DistortionModule(
        torch.nn.Identity(), trained["embedding"], perceptual_ckpt=trained["perceptual"], gamma=2.0
    )
    x = torch.rand(8, 1, 28, 28)
    terms = module.loss_terms(x)
    expected = uniform_prediction_loss(module.perceptual(x)).mean()
    assert terms["perceptual"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("stretch, local", [(True, False), (True, True), (False, True)])
def test_perceptual_term_also_reads_contrast_enhanced_views(trained, stretch: bool, local: bool) -> None:
    from distortion.augment import local_contrast, percentile_stretch
    from distortion.losses import uniform_prediction_loss

    module = DistortionModule(
        torch.nn.Identity(), trained["embedding"], perceptual_ckpt=trained["perceptual"], gamma=2.0,
        perceptual_stretch=stretch, perceptual_local_contrast=local, alpha_warmup_steps=10,
    )  # fmt: skip
    x = 0.1 * torch.rand(8, 1, 28, 28)  # a faint image
    views = [x] + [percentile_stretch(x)] * stretch + [local_contrast(x)] * local
    expected = torch.stack([uniform_prediction_loss(module.perceptual(v)).mean() for v in views]).mean()
    assert module.warmup() == 0.0 and "perceptual" not in module.loss_terms(x)  # gamma ramps up with alpha
    assert module.eval().warmup() == 1.0
    assert module.loss_terms(x)["perceptual"].item() == pytest.approx(expected.item(), rel=1e-5)
