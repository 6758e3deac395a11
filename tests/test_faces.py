"""Faces end to end on a tiny real LFW: the datamodule's splits, G through the dlib ResNet, the LFW
report of ``distortion evaluate`` and ``distortion distort`` on a folder with broken files."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from datamodules import LFWDataModule
from datamodules.lfw import identity_split
from datamodules.lfw_pairs import read_pairs
from distortion.backbones import DlibResNet
from distortion.chip_cache import build_chip_cache
from distortion.cli import main
from distortion.models import UNet
from distortion.modules import DistortionModule
from tests.conftest import ROOT
from tests.lfw_fixtures import LFW, make_tiny_lfw, people_with_images


def test_training_people_never_appear_in_dev_test() -> None:
    dev_test = read_pairs(LFW / "pairsDevTest.txt")
    names = sorted(p.name for p in (LFW / "lfw-deepfunneled").iterdir())
    train = set(identity_split(names, dev_test))
    held_out = {n for fold in dev_test for p in fold for n in (p.name1, p.name2)}
    assert train and not train & held_out and train | held_out == set(names)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A tiny LFW root (10 real people), its dlib chip cache, and a G fitted for a few steps through the CLI."""
    out = tmp_path_factory.mktemp("faces")
    root = make_tiny_lfw(out / "data" / "lfw")
    build_chip_cache(root, out / "cache", "dlib", workers=1, progress=False)
    cfg = yaml.safe_load((ROOT / "configs" / "lfw_generator.yaml").read_text())
    cfg["trainer"]["logger"] = [{"class_path": "lightning.pytorch.loggers.CSVLogger",
                                 "init_args": {"save_dir": str(out), "name": "gen"}}]
    cfg["trainer"]["callbacks"][-1]["init_args"]["dirpath"] = str(out / "ckpt")
    cfg["trainer"]["enable_progress_bar"] = False
    cfg["model"]["init_args"]["generator"]["init_args"].update(depth=2, width=4)
    cfg["data"]["init_args"].update(data_dir=str(out / "data"), cache_dir=str(out / "cache"), batch_size=4)
    (out / "gen.yaml").write_text(yaml.safe_dump(cfg))
    main(["fit", "--config", str(out / "gen.yaml"), "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1"])
    return {"out": out, "root": root, "config": out / "gen.yaml", "ckpt": out / "ckpt" / "last.ckpt"}


def test_datamodule_splits_and_batches(tiny) -> None:
    dm = LFWDataModule(data_dir=str(tiny["out"] / "data"), cache_dir=str(tiny["out"] / "cache"), batch_size=4)
    dm.setup()
    dev_test_people = {n for fold in read_pairs(tiny["root"] / "pairsDevTest.txt") for p in fold
                       for n in (p.name1, p.name2)}
    assert dm.train_people and not set(dm.train_people) & dev_test_people
    assert len(dm.datasets["train"]) == 2 * len(dm.train_people)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 150, 150) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    x_a, y_a, x_b, y_b, same, fold = next(iter(dm.val_dataloader()))
    assert same.tolist() == [1, 0, 1, 0] and fold.tolist() == [0, 0, 0, 0]  # matched and mismatched interleaved
    assert torch.equal(same.bool(), y_a == y_b)
    test = dm.datasets["test"]
    assert len(test) == 20 and sorted({int(item[5]) for item in test}) == list(range(10))
    # training crops and flips are random, evaluation images are the cached chips as they are
    assert not torch.equal(dm.datasets["train"][0][0], dm.datasets["train"][0][0])
    assert torch.equal(dm.datasets["val"][0][0], dm.datasets["val"][0][0])


def test_g_through_the_dlib_resnet_lowers_the_loss_on_real_chips(tiny) -> None:
    dm = LFWDataModule(data_dir=str(tiny["out"] / "data"), cache_dir=str(tiny["out"] / "cache"), crop_scale=1.0)
    dm.setup()
    x = torch.stack([dm.datasets["val"][i][0] for i in range(4)])
    torch.manual_seed(0)
    module = DistortionModule(UNet(3, depth=2, width=8, residual=True), embedding=DlibResNet(),
                              image_distance="local_decorrelation", alpha=1.0, beta=10.0, tau=0.04)
    optimizer = torch.optim.Adam(module.generator.parameters(), lr=3e-3)
    terms = []
    for _ in range(20):
        step = module.loss_terms(x)
        optimizer.zero_grad()
        step["loss"].backward()
        optimizer.step()
        terms.append({k: float(step[k].detach()) for k in ("loss", "d_img", "threshold")})
    assert terms[-1]["loss"] < terms[0]["loss"] - 0.03
    assert terms[-1]["d_img"] > terms[0]["d_img"] and terms[-1]["threshold"] < 0.05
    assert all(p.grad is None for p in module.embedding.parameters()) and not module.embedding.training


def test_f_must_be_given_exactly_once() -> None:
    with pytest.raises(ValueError, match="exactly one of embedding_ckpt"):
        DistortionModule(UNet(3, 3, depth=1, width=2))


def test_checkpoint_restores_g_and_the_frozen_backbone(tiny) -> None:
    from distortion.modules.distortion import load_distortion_module

    module = load_distortion_module(tiny["ckpt"])
    assert isinstance(module.embedding, DlibResNet) and not module.embedding.training
    reference = DlibResNet()
    for key, value in reference.state_dict().items():
        assert torch.equal(module.embedding.state_dict()[key], value), key


def test_lightning_test_stage_scores_view_2(tiny) -> None:
    main(["test", "--config", str(tiny["config"]), "--ckpt_path", str(tiny["ckpt"])])
    run = sorted((tiny["out"] / "gen").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))[-1]
    report = json.loads((run / "report.json").read_text())
    assert report["test/orig/eer"] <= 0.2 and 0 <= report["test/deploy/eer"] <= 1
    assert "test/local_content_change_pct" in report and (run / "grid.png").is_file()


def test_evaluate_writes_the_lfw_report(tiny) -> None:
    out = tiny["out"] / "report"
    main(["evaluate", "--ckpt", str(tiny["ckpt"]), "--data", str(tiny["root"]), "--cache", str(tiny["out"] / "cache"),
          "--out", str(out), "--wandb", "false", "--seen_detectors", "[mtcnn]"])
    report = json.loads((out / "report.json").read_text())
    for comparison in ("orig", "deploy", "distorted"):
        for view, keys in (("view2", ("accuracy_mean", "accuracy_std", "eer", "auroc", "tar_far_1e-3")),
                           ("view1", ("accuracy", "eer", "auroc", "tar_far_1e-3"))):
            assert all(0 <= report[comparison][view][k] <= 1 for k in keys), (comparison, view)
    assert report["orig"]["view2"]["accuracy_mean"] >= 0.9  # F alone on real faces
    for key in ("content_change_pct", "d_l1_pct", "d_mse_pct", "d_dssim_pct", "psnr"):
        assert key in report["distortion"]
    detected = report["face_detected"]
    assert detected["original/dlib_hog"] == 1.0 and "seen_in_training/distorted/mtcnn" in detected
    assert {"distorted/dlib_hog", "distorted/dlib_cnn"} <= detected.keys()
    assert report["embedding_shift"]["mean"] > 0
    for name in ("report.md", "roc.png", "grid.png", "distances.png"):
        assert (out / name).stat().st_size > 500, name


def test_distort_a_folder_with_a_corrupt_file_and_a_photo_without_a_face(tiny, tmp_path, capsys) -> None:
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    face = next(iter(people_with_images(1).values()))[0]
    shutil.copy(face, photos / "sub" / "face.jpg")
    (photos / "broken.jpg").write_bytes(face.read_bytes()[:500])
    from PIL import Image

    Image.new("RGB", (200, 200), (90, 140, 200)).save(photos / "sky.png")
    main(["distort", "--ckpt", str(tiny["ckpt"]), "--input", str(photos), "--out", str(tmp_path / "out"),
          "--workers", "1"])
    printed = capsys.readouterr().out
    assert "2 distorted (1 without a detected face" in printed and "skipped broken.jpg" in printed
    summary = json.loads((tmp_path / "out" / "embeddings.json").read_text())
    assert set(summary["images"]) == {"sub/face.jpg", "sky.png"} and "corrupt" in summary["skipped"]["broken.jpg"]
    assert summary["images"]["sky.png"]["face_found_by"] == "centre"
    assert len(summary["images"]["sub/face.jpg"]["embedding"]) == 128
    with Image.open(tmp_path / "out" / "distorted" / "sub" / "face.png") as image:
        assert image.size == (150, 150)


def test_privacy_report_on_faces(tiny, tmp_path) -> None:
    main(["privacy", "--ckpt", str(tiny["ckpt"]), "--renewed_ckpt", str(tiny["ckpt"]),
          "--data", str(tiny["out"] / "data"), "--cache", str(tiny["out"] / "cache"), "--attack_steps", "2",
          "--attack_batch_size", "4", "--attack_depth", "2", "--attack_width", "4", "--detect_images", "5",
          "--out", str(tmp_path), "--wandb", "false"])  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pairs"] == 20  # the tiny View 2
    inversion = report["inversion"]
    assert inversion["face_detected/original/dlib_hog"] == 1.0 and inversion["face_detected/images"] == 5
    assert {"face_detected/reconstructed/dlib_hog", "face_detected/reconstructed/mtcnn"} <= inversion.keys()
    assert 0 <= inversion["accepted_other_image_reconstructed"] <= 1 and inversion["ssim_distorted"] < 1
    assert 0 <= report["unlinkability"]["d_sys"] <= 1
    assert (tmp_path / "grid.png").is_file() and (tmp_path / "unlinkability.png").is_file()
