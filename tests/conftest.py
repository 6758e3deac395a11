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
    """A quickly trained F and reader (1,024 MNIST images, one epoch), and a generator config using them."""
    out = tmp_path_factory.mktemp("runs")
    main(["fit", "--config", str(make_config("mnist_embedding.yaml", out, "emb")), *QUICK])
    main(["fit", "--config", str(make_config("mnist_reader.yaml", out, "reader")), *QUICK])
    emb_ckpt = out / "emb" / "checkpoints" / "last.ckpt"
    reader_ckpt = out / "reader" / "checkpoints" / "last.ckpt"
    gen_cfg = yaml.safe_load(make_config("mnist_generator.yaml", out, "gen", embedding_ckpt=str(emb_ckpt)).read_text())
    for callback in gen_cfg["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ReaderAccuracy"):
            callback["init_args"]["reader_ckpt"] = str(reader_ckpt)
    gen_cfg["model"]["init_args"]["generator"]["init_args"].update(width=8)
    (out / "gen.yaml").write_text(yaml.safe_dump(gen_cfg))
    return {"out": out, "embedding": emb_ckpt, "reader": reader_ckpt, "generator_config": out / "gen.yaml"}
