import pytest
import torch

from distortion.objective.image_distances import (
    IMAGE_DISTANCES,
    decorrelation_distance,
    dssim_distance,
    get_image_distance,
    l1_distance,
    lowfreq_decorrelation_distance,
    mse_distance,
    sobel_distance,
)
from distortion.objective.losses import hinge_loss, mined_triplet_loss, triplet_loss, uniform_prediction_loss


def binary_images(channels: int = 1, b: int = 3, size: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(b, channels, size, size, generator=g) > 0.6).float()


@pytest.mark.parametrize("name", sorted(IMAGE_DISTANCES))
@pytest.mark.parametrize("channels", [1, 3])
def test_identical_images_are_at_distance_zero(name: str, channels: int) -> None:
    x = binary_images(channels)
    d = get_image_distance(name)(x, x.clone())
    assert d.shape == (3,)
    # 8x pooling leaves 2x2 windows of a 16 px image, where the variance floor of the correlation shows
    assert torch.allclose(d, torch.zeros(3), atol=2e-3 if name == "coarse_decorrelation" else 1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_inverted_binary_image_is_maximally_distant_in_pixels(channels: int) -> None:
    x = binary_images(channels)
    assert torch.allclose(l1_distance(x, 1 - x), torch.ones(3))
    assert torch.allclose(mse_distance(x, 1 - x), torch.ones(3))
    assert torch.allclose(sobel_distance(x, 1 - x), torch.ones(3))
    # ... yet decorrelation gives no credit for an inversion: r_pix = -1
    assert (decorrelation_distance(x, 1 - x) <= 0.5 + 1e-5).all()


def test_dssim_of_unrelated_images_is_large() -> None:
    x = binary_images()
    noise = torch.rand_like(x)
    d = dssim_distance(x, noise)
    assert ((d > 0.3) & (d <= 1)).all()


def test_unknown_image_distance_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown image distance 'ssim2'.*'dssim'"):
        get_image_distance("ssim2")


def test_shape_mismatch_is_reported() -> None:
    with pytest.raises(ValueError, match=r"expected two batches of one shape, got \(2, 1, 8, 8\) and \(2, 3, 8, 8\)"):
        l1_distance(torch.zeros(2, 1, 8, 8), torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("name", sorted(IMAGE_DISTANCES))
def test_distances_are_differentiable_in_float64(name: str) -> None:
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    y = torch.rand(2, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    fn = get_image_distance(name)
    assert torch.autograd.gradcheck(lambda t: fn(x, t), (y,), eps=1e-6, atol=1e-4)


def test_hinge_loss_known_value() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 1.0]])  # squared distances 1 and 0
    assert hinge_loss(a, b, tau=0.25).item() == pytest.approx(0.375)
    assert hinge_loss(a, b, tau=2.0).item() == 0.0


def test_triplet_loss_known_value() -> None:
    a, p, n = torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    assert triplet_loss(a, p, n, margin=0.5).item() == 0.0  # 1 - 4 + 0.5 < 0
    assert triplet_loss(a, n, p, margin=0.5).item() == pytest.approx(3.5)  # 4 - 1 + 0.5


def test_mined_triplet_loss_matches_brute_force() -> None:
    g = torch.Generator().manual_seed(1)
    anchor, positive = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    pool, pool_labels = torch.randn(10, 4, generator=g), torch.randint(0, 3, (10,), generator=g)
    terms = [
        triplet_loss(anchor[i : i + 1], positive[i : i + 1], pool[j : j + 1], 0.5)
        for i in range(6)
        for j in range(10)
        if labels[i] != pool_labels[j]
    ]
    violating = [t for t in terms if t > 0]
    expected = torch.stack(violating).mean()
    assert mined_triplet_loss(anchor, positive, labels, pool, pool_labels, 0.5).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_weighted_sum_of_distances() -> None:
    x = binary_images()
    y = torch.rand_like(x)
    combined = get_image_distance({"mse": 1.0, "l1": 2.0})(x, y)
    assert torch.allclose(combined, mse_distance(x, y) + 2 * l1_distance(x, y))
    with pytest.raises(ValueError, match="weight of image distance 'l1' must be >= 0, got -1"):
        get_image_distance({"l1": -1})


def test_a_distance_takes_its_options_from_the_config() -> None:
    from distortion.objective.image_distances import local_decorrelation_distance

    x = binary_images()
    y = torch.rand_like(x)
    combined = get_image_distance({"mse": 1.0, "local_decorrelation": {"weight": 2.0, "window": 8, "factor": 2}})
    expected = mse_distance(x, y) + 2 * local_decorrelation_distance(x, y, window=8, factor=2)
    assert torch.allclose(combined(x, y), expected)
    assert not torch.allclose(expected, mse_distance(x, y) + 2 * local_decorrelation_distance(x, y))
    with pytest.raises(ValueError, match="has no option \\['windw'\\]"):
        get_image_distance({"local_decorrelation": {"windw": 8}})


def test_lowfreq_decorrelation_ignores_fine_detail_but_not_layout() -> None:
    x = torch.zeros(2, 1, 28, 28)
    x[:, :, 4:24, 8:12] = 1.0  # a vertical bar on the left
    shifted = torch.roll(x, shifts=12, dims=-1)  # the same bar on the right
    noisy = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    assert (lowfreq_decorrelation_distance(x, noisy) < 0.05).all()
    assert (lowfreq_decorrelation_distance(x, 1 - x) < 1e-4).all()  # sign does not matter
    assert (lowfreq_decorrelation_distance(x, shifted) > 0.8).all()


def test_uniform_prediction_loss_known_values_and_gradient() -> None:
    assert torch.allclose(uniform_prediction_loss(torch.zeros(3, 10)), torch.zeros(3), atol=1e-6)
    logits = torch.tensor([[2.0, 0.0]])
    # KL(U || softmax) = -log 2 - (log p1 + log p2) / 2
    p = torch.softmax(logits, -1)
    expected = -torch.log(torch.tensor(2.0)) - torch.log(p).mean()
    assert uniform_prediction_loss(logits).item() == pytest.approx(expected.item(), rel=1e-6)
    z = torch.randn(4, 10, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: uniform_prediction_loss(t.double()), (z,))


def test_stripes_lower_local_but_not_coarse_correlation() -> None:
    from distortion.objective.image_distances import coarse_decorrelation_distance, local_decorrelation_distance

    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 10, 10, generator=g), size=80, mode="bilinear")  # smooth
    stripes = (torch.arange(80) % 2).float().view(1, 1, 1, 80)
    striped = 0.3 * x + 0.7 * stripes  # the layout of x survives under fine high-contrast stripes
    assert local_decorrelation_distance(x, striped).min() > 0.2
    assert coarse_decorrelation_distance(x, striped).max() < 0.05
    shuffled = x[..., torch.randperm(80, generator=g)][..., torch.randperm(80, generator=g), :]
    assert coarse_decorrelation_distance(x, shuffled).min() > 0.5


def test_a_distance_with_options_is_differentiable_in_float64() -> None:
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    y = torch.rand(2, 1, 16, 16, dtype=torch.float64, requires_grad=True)
    fn = get_image_distance({"local_decorrelation": {"weight": 2.0, "window": 8, "factor": 2}})
    assert torch.autograd.gradcheck(lambda t: fn(x, t), (y,), eps=1e-6, atol=1e-4)


def test_structure_decorrelation_sees_a_faint_recoloured_copy_in_any_channel() -> None:
    from distortion.objective.image_distances import structure_decorrelation_distance

    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8, generator=g), size=64, mode="bilinear")
    x = x.mean(1, keepdim=True).expand(-1, 3, -1, -1)  # grey, like a face's shared structure
    faint = torch.cat([0.9 - 0.05 * x[:, :1], torch.full_like(x[:, :1], 0.3), 0.5 + 0.05 * x[:, :1]], dim=1)
    in_green_only = torch.cat([torch.full_like(x[:, :1], 0.8), x[:, :1], torch.full_like(x[:, :1], 0.1)], dim=1)
    assert structure_decorrelation_distance(x, faint).max() < 0.05  # 5% contrast, inverted in red, colour-washed
    assert structure_decorrelation_distance(x, in_green_only).max() < 0.05
    moved = torch.roll(x, shifts=(3, 3), dims=(2, 3))  # a translation is no escape
    assert structure_decorrelation_distance(x, moved).max() < 0.05
    shuffled = x[..., torch.randperm(64, generator=g)][..., torch.randperm(64, generator=g), :]
    assert structure_decorrelation_distance(x, shuffled).min() > 0.5


def test_registered_decorrelation_sees_a_moved_copy_that_plain_decorrelation_misses() -> None:
    from distortion.objective.image_distances import registered_decorrelation_distance

    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(2, 1, 6, 6, generator=g), size=40, mode="bilinear")
    moved = torch.roll(x, shifts=(5, -4), dims=(2, 3))
    assert decorrelation_distance(x, moved).min() > 0.3  # pixel-aligned, the copy looks changed
    assert registered_decorrelation_distance(x, moved).max() < 0.15  # within 8 px, it is found
    assert registered_decorrelation_distance(x, 1 - moved).max() < 0.15  # inverted too
    noise = torch.rand(2, 1, 40, 40, generator=g)
    assert registered_decorrelation_distance(x, noise).min() > 0.8
