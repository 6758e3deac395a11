"""``distortion align`` and ``evaluate-backbone`` on a tiny real LFW."""

from __future__ import annotations

import json

import numpy as np

from distortion.cli import main
from tests.lfw_fixtures import make_tiny_lfw


def test_align_and_evaluate_backbone_commands_on_a_tiny_lfw(tmp_path, capsys) -> None:
    root = make_tiny_lfw(tmp_path / "lfw")
    (root / "lfw-deepfunneled" / "Broken").mkdir()
    (root / "lfw-deepfunneled" / "Broken" / "Broken_0001.jpg").write_bytes(b"\xff\xd8\xff broken")
    main(["align", "--data", str(root), "--out", str(tmp_path / "cache"), "--workers", "1"])
    assert "skipped" in capsys.readouterr().out
    main(
        [
            "evaluate-backbone",
            "--data",
            str(root),
            "--cache",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "report"),
            "--reference",
            "true",
            "--workers",
            "2",
        ]
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["view2"]["pairs"] == 20 and report["view1"]["pairs"] == 4
    assert report["view2"]["accuracy_mean"] >= 0.9  # real faces, dlib's recognizer
    agreement = report["dlib_reference"]["agreement"]
    assert agreement["images"] == 20 and agreement["max_abs_diff"] < 1e-4
    assert report["dlib_reference"]["view2"]["accuracy_mean"] == report["view2"]["accuracy_mean"]
    assert report["alignment"]["methods"]["skipped"] == 1
    embeddings = np.load(tmp_path / "report" / "embeddings.npy")
    assert embeddings.shape == (20, 128)
    assert "view2" in (tmp_path / "report" / "report.md").read_text()
