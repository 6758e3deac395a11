"""Shared fixtures: small real MNIST runs, configs rewritten to write into a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from distortion.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DISTORTION_DATA", ROOT.parent / "shared" / "data"))
os.environ.setdefault("DISTORTION_DATA", str(DATA))
os.environ.setdefault("WANDB_MODE", "offline")


def make_config(base: str, out: Path, name: str, *, wandb: bool = False, **model_args) -> Path:
    """Copy ``configs/<base>`` so that logs and checkpoints go under ``out``; override model init args."""
    cfg = yaml.safe_load((ROOT / "configs" / base).read_text())
    cfg["trainer"]["logger"] = [
        lg for lg in cfg["trainer"]["logger"] if wandb or not lg["class_path"].endswith("WandbLogger")
    ]
    for logger in cfg["trainer"]["logger"]:
        logger["init_args"].update(save_dir=str(out), name=name)
    for callback in cfg["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"]["dirpath"] = str(out / name / "checkpoints")
    cfg["trainer"]["enable_progress_bar"] = False
    cfg["model"]["init_args"].update(model_args)
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


QUICK = ["--trainer.max_epochs", "1", "--data.init_args.limit_train", "1024", "--data.init_args.limit_eval", "256"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Quickly trained F, reader and P (1,024 MNIST images, one epoch each) and generator configs using them."""
    out = tmp_path_factory.mktemp("runs")
    main(["fit", "--config", str(make_config("mnist_embedding.yaml", out, "emb")), *QUICK])
    main(["fit", "--config", str(make_config("mnist_reader.yaml", out, "reader")), *QUICK])
    main(["fit", "--config", str(make_config("mnist_perceptual.yaml", out, "perceptual")), *QUICK])
    ckpts = {name: out / name / "checkpoints" / "last.ckpt" for name in ("emb", "reader", "perceptual")}
    configs = {}
    for base, name in (("mnist_generator.yaml", "gen"), ("mnist_generator_unreadable.yaml", "gen_unreadable")):
        cfg = yaml.safe_load(make_config(base, out, name, embedding_ckpt=str(ckpts["emb"])).read_text())
        if "perceptual_ckpt" in cfg["model"]["init_args"]:
            cfg["model"]["init_args"]["perceptual_ckpt"] = str(ckpts["perceptual"])
        for callback in cfg["trainer"]["callbacks"]:
            if callback["class_path"].endswith("ReaderAccuracy"):
                callback["init_args"]["reader_ckpt"] = str(ckpts["reader"])
        cfg["model"]["init_args"]["generator"]["init_args"].update(width=8)
        configs[name] = out / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump(cfg))
    return {
        "out": out,
        "embedding": ckpts["emb"],
        "reader": ckpts["reader"],
        "perceptual": ckpts["perceptual"],
        "generator_config": configs["gen"],
        "unreadable_config": configs["gen_unreadable"],
    }
