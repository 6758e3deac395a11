"""``distortion privacy`` on real MNIST and on a tiny real LFW."""

from __future__ import annotations

import json

import pytest

from distortion.cli import main
from tests.conftest import QUICK


@pytest.fixture(scope="module")
def generator_ckpt(trained):
    main(["fit", "--config", str(trained["generator_config"]), *QUICK])
    return trained["out"] / "gen" / "checkpoints" / "last.ckpt"


def test_privacy_report_on_mnist(trained, generator_ckpt, tmp_path) -> None:
    # The same G as "renewed" G and the same F as "second" recognizer: known relations between the sections.
    main(["privacy", "--model.ckpt", str(generator_ckpt), "--renewed_ckpt", str(generator_ckpt),
          "--second_embedding", str(trained["embedding"]), "--reader_ckpt", str(trained["reader"]),
          "--attack.steps", "20", "--attack.width", "8", "--attack.images", "512", "--limit_pairs", "300",
          "--out", str(tmp_path),
          "--wandb", "false"])  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pairs"] == 300
    inversion, unlink, second = report["inversion"], report["unlinkability"], report["second_recognizer"]
    for key in ("ssim_reconstructed", "psnr_reconstructed", "accepted_same_image_reconstructed",
                "accepted_other_image_reconstructed", "reader_acc_original", "reader_acc_reconstructed"):  # fmt: skip
        assert key in inversion
    rates = [v for k, v in inversion.items() if k.startswith(("accepted_", "false_accept_", "reader_acc_"))]
    assert rates and all(0 <= v <= 1 for v in rates)
    assert inversion["false_accept_distorted"] <= 1e-3 + 1 / 150  # the threshold's FAR, up to one pair
    assert 0 <= unlink["d_sys"] <= 1 and unlink["mated_scores"] + unlink["non_mated_scores"] == 300
    # the same F as second recognizer reproduces F's own deployment numbers
    assert second["deploy_eer"] == pytest.approx(unlink["same_generator_deploy_eer"], abs=1e-6)
    # H' attacks the template alone, with the same budget; the bound compares the two attacks
    template, bound = report["template_inversion"], report["bound"]
    assert template["attack_steps"] == inversion["attack_steps"] == 20
    assert 0 <= template["accepted_other_image_reconstructed"] <= 1 and template["ssim_reconstructed"] < 1
    assert bound["ssim_gap"] == pytest.approx(inversion["ssim_reconstructed"] - template["ssim_reconstructed"])
    assert "reader_acc_template_reconstructed" in template and "ssim_distorted" not in template
    for name in ("report.md", "grid.png", "unlinkability.png"):
        assert (tmp_path / name).is_file()


def test_privacy_report_on_faces(tiny, tmp_path) -> None:
    main(["privacy", "--model.ckpt", str(tiny["ckpt"]), "--renewed_ckpt", str(tiny["ckpt"]),
          "--data", str(tiny["out"] / "data"), "--cache", str(tiny["out"] / "cache"), "--attack.steps", "2",
          "--attack.batch_size", "4", "--attack.depth", "2", "--attack.width", "4", "--faces.images", "5",
          "--faces.cnn_images", "2",
          "--out", str(tmp_path), "--wandb", "false"])  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pairs"] == 20  # the tiny View 2
    inversion = report["inversion"]
    assert inversion["face_detected/original/dlib_hog"] == 1.0 and inversion["face_detected/images/dlib_hog"] == 5
    assert inversion["face_detected/images/dlib_cnn"] == 2
    assert {"face_detected/reconstructed/dlib_hog", "face_detected/reconstructed/mtcnn"} <= inversion.keys()
    template = report["template_inversion"]
    assert {"face_detected/template_reconstructed/dlib_hog", "face_detected/images/mtcnn"} <= template.keys()
    assert 0 <= inversion["accepted_other_image_reconstructed"] <= 1 and inversion["ssim_distorted"] < 1
    for name in ("ssim_distorted", "ssim_reconstructed", "psnr_distorted"):  # each beside another person's photo
        own, mismatched = inversion[name], inversion[f"{name}_mismatched"]
        assert inversion[f"{name}_leak"] == pytest.approx(own - mismatched) and mismatched == mismatched  # not NaN
    assert 0 <= report["unlinkability"]["d_sys"] <= 1
    assert (tmp_path / "grid.png").is_file() and (tmp_path / "unlinkability.png").is_file()
