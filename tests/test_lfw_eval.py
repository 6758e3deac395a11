"""LFW pair lists, the 10-fold protocol, and ``distortion align`` / ``evaluate-backbone`` on a tiny real LFW."""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score

from datamodules.lfw_pairs import lfw_image_path, read_pairs
from distortion.cli import main
from distortion.lfw_eval import lfw_report
from distortion.verification import best_threshold, kfold_accuracy
from tests.lfw_fixtures import LFW, make_tiny_lfw


def test_official_pair_lists_have_the_documented_shape() -> None:
    view2 = read_pairs(LFW / "pairs.txt")
    assert len(view2) == 10 and all(len(fold) == 600 and sum(p.same for p in fold) == 300 for fold in view2)
    dev_test = read_pairs(LFW / "pairsDevTest.txt")
    assert len(dev_test) == 1 and len(dev_test[0]) == 1000
    pair = view2[0][0]
    assert lfw_image_path(LFW, pair.name1, pair.number1).is_file()


def test_malformed_pair_list_names_the_line(tmp_path) -> None:
    (tmp_path / "pairs.txt").write_text("1\nAnn 1 2\nAnn 1\n")
    with pytest.raises(ValueError, match="line 3: not a mismatched pair"):
        read_pairs(tmp_path / "pairs.txt")
    (tmp_path / "short.txt").write_text("2\nAnn 1 2\nBob 1 Ann 2\n")
    with pytest.raises(ValueError, match="header promises"):
        read_pairs(tmp_path / "short.txt")


def _brute_force_best_accuracy(scores: np.ndarray, same: np.ndarray) -> float:
    candidates = np.concatenate([[scores.min() - 1], scores, [scores.max() + 1]])
    return max(accuracy_score(same, scores >= t) for t in candidates)


@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_reaches_the_brute_force_accuracy(seed) -> None:
    g = torch.Generator().manual_seed(seed)
    same = torch.rand(200, generator=g) < 0.5
    scores = torch.round((torch.rand(200, generator=g) + 0.6 * same) * 20) / 20  # many ties
    t = best_threshold(scores, same)
    ours = accuracy_score(same.numpy(), (scores.double() >= t).numpy())
    assert ours == pytest.approx(_brute_force_best_accuracy(scores.numpy(), same.numpy()))


def test_kfold_accuracy_chooses_each_threshold_on_the_other_folds() -> None:
    g = torch.Generator().manual_seed(0)
    same = torch.rand(600, generator=g) < 0.5
    scores = torch.rand(600, generator=g) + 0.8 * same
    folds = torch.arange(600) % 10
    accuracies = kfold_accuracy(scores, same, folds)
    for k in range(10):
        train, test = folds != k, folds == k
        best = _brute_force_best_accuracy(scores[train].numpy(), same[train].numpy())
        t = best_threshold(scores[train], same[train])
        assert accuracy_score(same[train].numpy(), (scores[train].double() >= t).numpy()) == pytest.approx(best)
        assert accuracies[k] == pytest.approx(accuracy_score(same[test].numpy(), (scores[test].double() >= t).numpy()))


def test_lfw_report_on_synthetic_embeddings(tmp_path) -> None:
    root = make_tiny_lfw(tmp_path / "lfw")
    names = sorted(p.name for p in (root / "lfw-deepfunneled").iterdir())
    g = torch.Generator().manual_seed(0)
    centres = {name: torch.randn(16, generator=g) for name in names}
    enrol = {(n, i): centres[n] + 0.05 * torch.randn(16, generator=g) for n, i in product(names, (1, 2))}
    report = lfw_report(root, enrol)
    assert report["view2"]["accuracy_mean"] == 1.0 and report["view2"]["eer"] == 0.0
    assert report["view1"]["accuracy"] == 1.0
    missing = dict(enrol)
    del missing[(names[0], 2)]  # in fold 0 (matched) and fold 9 (mismatched)
    report = lfw_report(root, missing)
    assert report["view2"]["pairs_missing"] == 2 and report["view2"]["accuracy_mean"] < 1.0


def test_align_and_evaluate_backbone_commands_on_a_tiny_lfw(tmp_path, capsys) -> None:
    root = make_tiny_lfw(tmp_path / "lfw")
    (root / "lfw-deepfunneled" / "Broken").mkdir()
    (root / "lfw-deepfunneled" / "Broken" / "Broken_0001.jpg").write_bytes(b"\xff\xd8\xff broken")
    main(["align", "--data", str(root), "--out", str(tmp_path / "cache"), "--workers", "1"])
    assert "skipped" in capsys.readouterr().out
    main(["evaluate-backbone", "--data", str(root), "--cache", str(tmp_path / "cache"), "--out",
          str(tmp_path / "report"), "--reference", "true", "--workers", "2"])
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
