"""Several processes (DDP on CPU with gloo) and resuming a killed run, through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch

from tests.conftest import ROOT

EVAL = ["--data.init_args.limit_eval", "400", "--data.init_args.batch_size", "50", "--trainer.accelerator", "cpu"]


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "distortion", *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def latest_report(run_root) -> dict[str, float]:
    versions = sorted(run_root.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    return json.loads((versions[-1] / "report.json").read_text())


def test_ddp_scores_all_pairs_like_one_process(trained) -> None:
    cfg = str(trained["generator_config"])
    gen_root = trained["out"] / "gen"
    run("test", "--config", cfg, *EVAL, "--trainer.devices", "1")
    single = latest_report(gen_root)
    run("test", "--config", cfg, *EVAL, "--trainer.devices", "2", "--trainer.strategy", "ddp")
    double = latest_report(gen_root)
    for comparison in ("orig", "deploy", "distorted"):
        key = f"test/{comparison}/eer"
        assert abs(single[key] - double[key]) < 1e-6, (key, single[key], double[key])
    assert abs(single["test/content_change_pct"] - double["test/content_change_pct"]) < 1e-3


def _step_checkpoint_config(trained, out) -> list[str]:
    """`fit` args of a small G run that writes to ``out`` and saves ``last.ckpt`` every 5 steps."""
    import yaml

    cfg = yaml.safe_load(trained["generator_config"].read_text())
    for callback in cfg["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"].update(dirpath=str(out / "checkpoints"), every_n_train_steps=5, monitor=None,
                                         filename="step")  # fmt: skip
    cfg["trainer"]["logger"][0]["init_args"]["save_dir"] = str(out)
    out.mkdir()
    (out / "gen.yaml").write_text(yaml.safe_dump(cfg))
    return ["fit", "--config", str(out / "gen.yaml"), "--data.init_args.limit_train", "2560",
            "--data.init_args.limit_eval", "64", "--model.init_args.lr", "3e-4"]  # fmt: skip


def _val_metrics(out) -> dict[str, float]:
    """The last logged value of every validation metric in the run's latest CSV log (the resumed part)."""
    import csv

    latest = max(out.glob("*/version_*"), key=lambda p: int(p.name.split("_")[1]))
    rows = list(csv.DictReader((latest / "metrics.csv").open()))
    return {k: float(row[k]) for row in rows for k in row if k.startswith("val/") and row[k]}


def test_a_killed_run_resumes_to_the_metrics_of_an_uninterrupted_run(trained, tmp_path) -> None:
    killed_args = _step_checkpoint_config(trained, tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, "-m", "distortion", *killed_args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and torch.load(last, map_location="cpu", weights_only=False)["global_step"] >= 50:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # mid-epoch of the second epoch: an epoch here is 40 steps
    proc.wait()
    killed_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 50 <= killed_at < 80 and killed_at % 40 != 0, killed_at
    run(*killed_args, "--ckpt_path", "last")
    resumed = torch.load(last, map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 40 * 3  # three full epochs, counted across the kill
    assert resumed["epoch"] == 2

    run(*_step_checkpoint_config(trained, tmp_path / "whole"))
    whole = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    for name, value in whole["state_dict"].items():  # the same batches in the same order: the same weights
        assert torch.allclose(resumed["state_dict"][name], value, atol=1e-6), name
    metrics_resumed, metrics_whole = _val_metrics(tmp_path / "killed"), _val_metrics(tmp_path / "whole")
    assert {"val/loss", "val/deploy/eer"} <= metrics_whole.keys()
    for key, value in metrics_whole.items():
        assert abs(metrics_resumed[key] - value) < 1e-4, (key, metrics_resumed[key], value)
