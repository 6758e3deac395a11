"""``distortion evaluate`` on a tiny real LFW."""

from __future__ import annotations

import json

import pytest

from distortion.cli import main


def test_evaluate_writes_the_lfw_report(tiny) -> None:
    out = tiny["out"] / "report"
    main(
        [
            "evaluate",
            "--model.ckpt",
            str(tiny["ckpt"]),
            "--data",
            str(tiny["root"]),
            "--cache",
            str(tiny["out"] / "cache"),
            "--out",
            str(out),
            "--wandb",
            "false",
            "--faces.seen",
            "[mtcnn]",
        ]
    )
    report = json.loads((out / "report.json").read_text())
    for comparison in ("orig", "deploy", "distorted"):
        for view, keys in (
            ("view2", ("accuracy_mean", "accuracy_std", "eer", "auroc", "tar_far_1e-3")),
            ("view1", ("accuracy", "eer", "auroc", "tar_far_1e-3")),
        ):
            assert all(0 <= report[comparison][view][k] <= 1 for k in keys), (comparison, view)
    assert report["orig"]["view2"]["accuracy_mean"] >= 0.9  # F alone on real faces
    for key in ("content_change_pct", "d_l1_pct", "d_mse_pct", "d_dssim_pct", "psnr"):
        assert key in report["content"]
    detected = report["face_detected"]
    assert detected["original/dlib_hog"] == 1.0 and "seen_in_training/distorted/mtcnn" in detected
    assert {"distorted/dlib_hog", "distorted/dlib_cnn"} <= detected.keys()
    assert report["embedding_shift"]["mean"] > 0
    for name in ("report.md", "roc.png", "grid.png", "distances.png"):
        assert (out / name).stat().st_size > 500, name


def test_evaluate_without_image_metrics_or_detectors_scores_storage_variants(tiny) -> None:
    out = tiny["out"] / "report_jpeg75"
    main(["evaluate", "--model.ckpt", str(tiny["ckpt"]), "--enrolment.storage", "jpeg75", "--image_metrics", "false",
          "--faces.names", "[]", "--data", str(tiny["root"]), "--cache", str(tiny["out"] / "cache"),
          "--out", str(out), "--wandb", "false"])  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["storage"] == "jpeg75" and report["face_detected"] == {}
    assert set(report["content"]) == {"images"} and report["content"]["images"] > 0
    assert 0 <= report["deploy"]["view2"]["accuracy_mean"] <= 1


@pytest.mark.slow
def test_evaluate_f_alone_refining_from_noise(tiny) -> None:
    """No G at all: noise refined against dlib's ResNet, stored as PNG, is matched and shows no face."""
    out = tiny["out"] / "report_refined"
    main(["evaluate", "--model.embedding", "dlib", "--enrolment.refine_steps", "60", "--enrolment.storage", "png",
          "--data", str(tiny["root"]), "--cache", str(tiny["out"] / "cache"), "--out", str(out),
          "--wandb", "false", "--faces.names", "[dlib_hog]"])  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["refine_steps"] == 60 and report["storage"] == "png" and report["checkpoint"] is None
    assert report["deploy"]["view2"]["accuracy_mean"] >= report["orig"]["view2"]["accuracy_mean"] - 0.05
    assert report["embedding_shift"]["p95"] < 0.3  # well inside dlib's same-person distance 0.6
    assert report["content"]["registered_content_change_pct"] > 90
    assert report["face_detected"] == {"original/dlib_hog": 1.0, "distorted/dlib_hog": 0.0, "images/dlib_hog": 20}
