"""Open-set identification metrics on generated galleries with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distortion.metrics.open_set import open_set_metrics, open_set_rates, open_set_split


def test_split_enrols_one_image_of_half_the_repeated_people() -> None:
    names = ["a", "a", "a", "b", "b", "c", "d", "d", "e"]
    gallery, mated, non_mated = open_set_split(names, 0.5, seed=0)
    enrolled = {names[i] for i in gallery}
    assert len(enrolled) == len(gallery) == 2 and enrolled <= {"a", "b", "d"}
    assert {names[i] for i in mated} == enrolled and not enrolled & {names[i] for i in non_mated}
    assert sorted(gallery + mated + non_mated) == list(range(len(names)))


def test_perfect_and_chance_identification() -> None:
    g = torch.Generator().manual_seed(0)
    gallery = torch.randn(50, 8, generator=g) * 5
    ids = [f"p{i}" for i in range(50)]
    mated = gallery + 0.01 * torch.randn(50, 8, generator=g)
    outsiders = torch.randn(200, 8, generator=g) * 5
    perfect = open_set_metrics(gallery, ids, mated, ids, outsiders, fpir=0.01)
    assert perfect["rank1"] == 1.0 and perfect["dir_at_fpir_0.01"] == 1.0 and perfect["fpir"] <= 0.01
    shuffled = open_set_metrics(gallery, ids, torch.randn(50, 8, generator=g) * 5, ids, outsiders)
    assert shuffled["rank1"] < 0.2 and shuffled["dir_at_fpir_0.01"] < 0.05


def test_dir_matches_a_direct_count() -> None:
    rng = np.random.default_rng(1)
    gallery = torch.from_numpy(rng.standard_normal((30, 4)))
    ids = [str(i) for i in range(30)]
    mated = gallery + 0.7 * torch.from_numpy(rng.standard_normal((30, 4)))
    outsiders = torch.from_numpy(rng.standard_normal((400, 4)))
    result = open_set_metrics(gallery, ids, mated, ids, outsiders, fpir=0.05)
    scores = 1 / (1 + torch.cdist(mated, gallery))
    outsider_best = (1 / (1 + torch.cdist(outsiders, gallery))).max(1).values
    t = result["threshold"]
    expected = np.mean([int(s.argmax()) == i and float(s.max()) >= t for i, s in enumerate(scores)])
    assert result["dir_at_fpir_0.05"] == pytest.approx(expected)
    assert float((outsider_best >= t).double().mean()) <= 0.05


def test_unreadable_probes_are_misses_and_rejections() -> None:
    """A probe in which the system found no face (score -inf) is never identified nor accepted."""
    mated = torch.tensor([0.9, 0.8, float("-inf"), 0.7])
    correct = torch.tensor([True, True, False, True])
    non_mated = torch.tensor([0.5, 0.4, float("-inf")] + [0.1] * 97)
    result = open_set_rates(mated, correct, non_mated, fpir=0.01)
    assert result["rank1"] == 0.75 and result["dir_at_fpir_0.01"] == 0.75
    assert 0.4 < result["threshold"] <= 0.5 and result["fpir"] == 0.01
