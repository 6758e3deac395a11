"""Content statistics beside their mismatched baseline: known leaks on real digits."""

from __future__ import annotations

import pytest
import torch
from torchvision.datasets import MNIST

from distortion.metrics.content import CONTENT_STATISTICS, SIMILARITIES, ContentMeans, MismatchedPartners
from tests.conftest import DATA


def distinct_digits(count: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """One test image of each of ``count`` classes (labels all different)."""
    ds = MNIST(str(DATA), train=False)
    first = [int((ds.targets == c).nonzero()[0]) for c in range(count)]
    return ds.data[first].unsqueeze(1).float() / 255, ds.targets[first]


def test_g_that_keeps_x_leaks_the_full_value() -> None:
    x, y = distinct_digits()
    means = ContentMeans()
    means.update(x, x, y)
    values = means.compute()
    assert values["content_change_pct"] == pytest.approx(0.0, abs=1e-3)
    assert values["content_change_pct_leak"] == pytest.approx(values["content_change_pct_mismatched"])
    assert values["content_change_pct_leak"] > 50  # two different digits share little
    assert values["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert values["ssim_leak"] == pytest.approx(1.0 - values["ssim_mismatched"], abs=1e-4)
    assert all(values[f"{name}_leak"] > 0 for name in CONTENT_STATISTICS)


def test_one_shared_pattern_leaks_nothing() -> None:
    """A G that draws the same image for everyone meets every photo alike: zero difference, whatever the value."""
    x, y = distinct_digits()
    pattern = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0)).expand_as(x)
    means = ContentMeans()
    means.update(x, pattern, y)
    values = means.compute()
    for name in CONTENT_STATISTICS:
        assert values[f"{name}_leak"] == pytest.approx(0.0, abs=1e-4 * max(1.0, abs(values[name]))), name
    assert values["content_change_pct"] > 50  # read alone, the value says nothing


def test_the_mismatched_value_is_the_statistic_against_the_next_other_label() -> None:
    x, y = distinct_digits()
    g = (x + 0.3 * torch.rand_like(x)).clamp(0, 1)
    means = ContentMeans()
    means.update(x, g, y)
    values = means.compute()
    for name, fn in CONTENT_STATISTICS.items():
        expected = float(fn(x.roll(-1, 0), g).mean())
        assert values[f"{name}_mismatched"] == pytest.approx(expected, rel=1e-5), name
        sign = 1 if name in SIMILARITIES else -1
        assert values[f"{name}_leak"] == pytest.approx(sign * (values[name] - expected), rel=1e-5, abs=1e-6)


def test_partners_always_have_another_label_and_batches_of_one_person_use_the_pool() -> None:
    x, y = distinct_digits(4)
    partners = MismatchedPartners(pool=8)
    one_person = torch.zeros(3, dtype=torch.long)
    _, found = partners(x[:3], one_person)
    assert not found.any()  # nobody else seen yet
    other, found = partners(x, y)
    assert found.all()
    chosen = [int((x == o).flatten(1).all(1).nonzero()[0]) for o in other]
    assert all(int(y[c]) != int(y[i]) for i, c in enumerate(chosen))
    other, found = partners(x[:2], torch.tensor([int(y[0]), int(y[0])]))  # a batch of one person
    assert found.all() and not any(torch.equal(o, x[0]) for o in other)


def test_without_labels_only_the_statistics_are_reported() -> None:
    x, _ = distinct_digits()
    means = ContentMeans()
    means.update(x, x.flip(-1))
    assert set(means.compute()) == set(CONTENT_STATISTICS)
    means.reset()
    assert means.compute() == {}
