"""Shared fixtures: small real MNIST runs, configs rewritten to write into a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from distortion.cli import main
from distortion.faces.chip_cache import build_chip_cache
from tests.lfw_fixtures import make_tiny_lfw, people_with_images

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DISTORTION_DATA", ROOT.parent / "shared" / "data"))
os.environ.setdefault("DISTORTION_DATA", str(DATA))
os.environ.setdefault("WANDB_MODE", "offline")


def full_config(base: str) -> dict:
    """``configs/defaults.yaml`` with ``configs/<base>`` on top, as LightningCLI merges them (callbacks appended)."""
    cfg = yaml.safe_load((ROOT / "configs" / "defaults.yaml").read_text())
    experiment = yaml.safe_load((ROOT / "configs" / base).read_text())
    trainer = experiment.pop("trainer", {})
    appended = trainer.pop("callbacks+", [])
    cfg["trainer"].update(trainer)
    cfg["trainer"]["callbacks"] = cfg["trainer"].get("callbacks", []) + appended
    cfg.update(experiment)
    return cfg


def make_config(base: str, out: Path, name: str, *, wandb: bool = False, **model_args) -> Path:
    """A complete copy of ``configs/<base>`` (defaults included) named ``name`` that writes under ``out``
    (logs in ``out/name/version_<n>``, checkpoints in ``out/name/checkpoints``); model init args overridden."""
    cfg = full_config(base)
    cfg["name"] = name
    cfg["trainer"]["logger"] = [
        lg for lg in cfg["trainer"]["logger"] if wandb or not lg["class_path"].endswith("WandbLogger")
    ]
    for logger in cfg["trainer"]["logger"]:
        logger["init_args"]["save_dir"] = str(out)
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
        if "perceptual" in cfg["model"]["init_args"]:
            cfg["model"]["init_args"]["perceptual"]["ckpt"] = str(ckpts["perceptual"])
        for callback in cfg["trainer"]["callbacks"]:
            if callback["class_path"].endswith("ReaderAccuracy"):
                callback["init_args"]["reader_ckpt"] = str(ckpts["reader"])
            if callback["class_path"].endswith("CollapseGuard"):  # one quick epoch is no verdict on G
                callback["init_args"] = {"strict": False}
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


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict:
    """A tiny LFW root (10 real people), its dlib chip cache, and a G fitted for a few steps through the CLI."""
    out = tmp_path_factory.mktemp("faces")
    root = make_tiny_lfw(out / "data" / "lfw")
    build_chip_cache(root, out / "cache", "dlib", workers=1, progress=False)
    path = make_config("lfw_generator.yaml", out, "gen")
    cfg = yaml.safe_load(path.read_text())
    cfg["model"]["init_args"]["generator"]["init_args"].update(depth=2, width=4)
    cfg["data"]["init_args"].update(data_dir=str(out / "data"), cache_dir=str(out / "cache"), batch_size=4)
    path.write_text(yaml.safe_dump(cfg))
    main(["fit", "--config", str(path), "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1"])
    return {"out": out, "root": root, "config": path, "ckpt": out / "gen" / "checkpoints" / "last.ckpt"}


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """Six real LFW photos: the first three people with two images each."""
    return [p for images in people_with_images(3).values() for p in images]


REFINE_STEPS = "40"


@pytest.fixture(scope="session")
def keyed_model(tiny, tmp_path_factory) -> Path:
    """A keyed model file fitted on the tiny LFW (8 axes, the stored-space matcher, calibrated on its 12 images).

    The tiny LFW has too few training images to estimate F's distance on 8 principal axes (the default matcher);
    the stored-space matcher is what tests of the store and the service need."""
    out = tmp_path_factory.mktemp("keyed")
    main(["fit-transform", "--out", str(out / "keyed.pt"), "--components", "8", "--compare", "stored",
          "--calibrate", "12", "--enrolment.refine_steps", REFINE_STEPS, "--data", str(tiny["root"]),
          "--cache", str(tiny["out"] / "cache")])  # fmt: skip
    return out / "keyed.pt"
