"""LFW's pair lists and its protocol on synthetic embeddings."""

from __future__ import annotations

from itertools import product

import pytest
import torch

from distortion.faces.lfw_pairs import lfw_image_path, read_pairs
from distortion.faces.lfw_protocol import LFWProtocol
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


def test_lfw_report_on_synthetic_embeddings(tmp_path) -> None:
    root = make_tiny_lfw(tmp_path / "lfw")
    names = sorted(p.name for p in (root / "lfw-deepfunneled").iterdir())
    g = torch.Generator().manual_seed(0)
    centres = {name: torch.randn(16, generator=g) for name in names}
    enrol = {(n, i): centres[n] + 0.05 * torch.randn(16, generator=g) for n, i in product(names, (1, 2))}
    protocol = LFWProtocol.load(root)
    report = protocol.report(enrol)
    assert report["view2"]["accuracy_mean"] == 1.0 and report["view2"]["eer"] == 0.0
    assert report["view1"]["accuracy"] == 1.0
    missing = dict(enrol)
    del missing[(names[0], 2)]  # in fold 0 (matched) and fold 9 (mismatched)
    report = protocol.report(missing)
    assert report["view2"]["pairs_missing"] == 2 and report["view2"]["accuracy_mean"] < 1.0
