"""``distortion evaluate`` on a tiny real LFW."""

from __future__ import annotations

import json

from distortion.cli import main


def test_evaluate_writes_the_lfw_report(tiny) -> None:
    out = tiny["out"] / "report"
    main(
        [
            "evaluate",
            "--ckpt",
            str(tiny["ckpt"]),
            "--data",
            str(tiny["root"]),
            "--cache",
            str(tiny["out"] / "cache"),
            "--out",
            str(out),
            "--wandb",
            "false",
            "--seen_detectors",
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
        assert key in report["distortion"]
    detected = report["face_detected"]
    assert detected["original/dlib_hog"] == 1.0 and "seen_in_training/distorted/mtcnn" in detected
    assert {"distorted/dlib_hog", "distorted/dlib_cnn"} <= detected.keys()
    assert report["embedding_shift"]["mean"] > 0
    for name in ("report.md", "roc.png", "grid.png", "distances.png"):
        assert (out / name).stat().st_size > 500, name
