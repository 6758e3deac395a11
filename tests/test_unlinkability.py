import pytest
import torch

from distortion.metrics.unlinkability import global_unlinkability, local_unlinkability


def scores(mean: float, n: int = 20000, seed: int = 0) -> torch.Tensor:
    return mean + torch.randn(n, generator=torch.Generator().manual_seed(seed))


def test_identical_distributions_are_unlinkable() -> None:
    d_sys = global_unlinkability(scores(0.0, seed=1), scores(0.0, seed=2), bins=50)
    assert d_sys < 0.05


def test_disjoint_distributions_are_fully_linkable() -> None:
    d_sys = global_unlinkability(scores(100.0, seed=1), scores(0.0, seed=2))
    assert d_sys == pytest.approx(1.0)


def test_partial_overlap_matches_the_closed_form() -> None:
    # Two unit Gaussians 2 apart: LR(s) = exp(2s - 2); D_sys = E_m[max(0, tanh(s - 1))], s ~ N(2, 1)
    mated, non_mated = scores(2.0, n=400000, seed=1), scores(0.0, n=400000, seed=2)
    expected = torch.tanh(scores(2.0, n=400000, seed=3) - 1).clamp_min(0).mean()
    assert global_unlinkability(mated, non_mated, bins=200).item() == pytest.approx(expected.item(), abs=0.02)


def test_local_measure_is_zero_where_non_mated_dominate_and_one_where_only_mated_occur() -> None:
    centres, d = local_unlinkability(scores(5.0, seed=1), scores(0.0, seed=2), bins=40)
    assert d[centres < 1].max() == 0
    assert d[centres > 6].min() == 1
    assert ((d >= 0) & (d <= 1)).all()


def test_bad_arguments_are_reported() -> None:
    with pytest.raises(ValueError, match="both mated and non-mated scores are needed"):
        global_unlinkability(torch.tensor([]), scores(0.0))
    with pytest.raises(ValueError, match="omega must be > 0"):
        global_unlinkability(scores(0.0), scores(1.0), omega=0)
