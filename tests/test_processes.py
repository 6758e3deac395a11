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


def test_a_killed_run_resumes_from_its_last_checkpoint(trained, tmp_path) -> None:
    import yaml

    cfg = yaml.safe_load(trained["generator_config"].read_text())
    ckpt_dir = tmp_path / "checkpoints"
    for callback in cfg["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"].update(dirpath=str(ckpt_dir), every_n_train_steps=5, monitor=None, filename="step")
    cfg["trainer"]["logger"][0]["init_args"]["save_dir"] = str(tmp_path)
    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump(cfg))
    args = ["fit", "--config", str(path), "--data.init_args.limit_train", "2560", "--data.init_args.limit_eval", "64"]
    proc = subprocess.Popen([sys.executable, "-m", "distortion", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    last = ckpt_dir / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and torch.load(last, map_location="cpu", weights_only=False)["global_step"] >= 10:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # mid-epoch: an epoch here is 40 steps
    proc.wait()
    killed_at = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert 10 <= killed_at < 40
    run(*args, "--ckpt_path", "last")
    final = torch.load(last, map_location="cpu", weights_only=False)
    assert final["global_step"] == 40 * 3  # three full epochs, counted across the kill
    assert final["epoch"] == 2
