import numpy as np
import pytest
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from distortion.imaging.augment import appearance_augment, emboss, outline
from distortion.imaging.statistics import content_change, local_content_change, local_correlation, pearson, psnr, ssim


def digits(n: int = 4) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        x[i, 0, 6 + i : 22, 10 + i : 14 + i] = 1.0  # bars at different places
        x[i, 0, 6:9, 8:20] = 1.0
    return x


def test_ssim_agrees_with_torchmetrics() -> None:
    x = digits()
    y = (x + 0.2 * torch.rand_like(x)).clamp(0, 1)
    ours = ssim(x, y)
    for i in range(len(x)):
        ref = structural_similarity_index_measure(y[i : i + 1], x[i : i + 1], data_range=1.0)
        assert ours[i].item() == pytest.approx(ref.item(), abs=2e-2)


def test_psnr_agrees_with_torchmetrics() -> None:
    x = digits()
    y = (x + 0.1 * torch.rand_like(x)).clamp(0, 1)
    for i in range(len(x)):
        ref = peak_signal_noise_ratio(y[i], x[i], data_range=1.0)
        assert psnr(x, y)[i].item() == pytest.approx(ref.item(), rel=1e-4)


def test_pearson_agrees_with_numpy() -> None:
    x, y = torch.rand(3, 3, 9, 9), torch.rand(3, 3, 9, 9)
    y = y + x
    for i in range(3):
        ref = np.corrcoef(x[i].flatten().numpy(), y[i].flatten().numpy())[0, 1]
        assert pearson(x, y)[i].item() == pytest.approx(ref, rel=1e-5)


@pytest.fixture(scope="module")
def mnist_digits() -> torch.Tensor:
    from torchvision.datasets import MNIST

    from tests.conftest import DATA

    return MNIST(str(DATA), train=False).data[:64].unsqueeze(1).float() / 255


@pytest.mark.parametrize(
    "transform, most",
    [(lambda x: 1 - x, 1), (lambda x: 0.3 * x + 0.2, 1), (outline, 60), (lambda x: 1 - outline(x), 60), (emboss, 60)],
    ids=["inversion", "contrast", "outline", "inverted-outline", "emboss"],
)
def test_readable_transforms_stay_below_the_70_percent_target(mnist_digits, transform, most: float) -> None:
    """Inversion and contrast count as no change; outlines and emboss of real digits get partial credit
    (about 40%, at most 60%), which is why the independent reader, not this number, is the verdict."""
    assert content_change(mnist_digits, transform(mnist_digits)).max() < most


def test_inversion_of_a_binary_image_is_no_change() -> None:
    x = digits()
    assert torch.allclose(content_change(x, 1 - x), torch.zeros(len(x)), atol=1e-3)


def test_unrelated_noise_is_near_total_change() -> None:
    x = digits()
    assert (content_change(x, torch.rand_like(x)) > 80).all()


def test_constant_output_is_total_change() -> None:
    x = digits()
    assert torch.allclose(content_change(x, torch.full_like(x, 0.5)), torch.full((len(x),), 100.0))


def test_augmentations_stay_in_range_and_keep_shape() -> None:
    x = digits(8).expand(-1, 3, -1, -1)
    for out in (appearance_augment(x), emboss(x), outline(x)):
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_autocontrast_stretches_a_faint_digit_back() -> None:
    from distortion.imaging.augment import autocontrast

    x = digits()
    faint = 0.45 + 0.05 * x  # a digit at 5% contrast
    assert torch.allclose(autocontrast(faint), x, atol=1e-5)


def test_percentile_stretch_recovers_a_faint_digit_behind_a_bright_border(mnist_digits) -> None:
    from distortion.imaging.augment import autocontrast, percentile_stretch

    faint = 0.3 + 0.05 * mnist_digits
    faint[..., :2, :] = 1.0  # a bright border defeats a min-max stretch
    core = (slice(None), slice(None), slice(2, None))
    assert autocontrast(faint)[core].max() < 0.5
    stretched = percentile_stretch(faint, 0.1, 0.9)[core]
    assert torch.corrcoef(torch.stack([stretched.flatten(), mnist_digits[core].flatten()]))[0, 1] > 0.9


def test_local_contrast_shows_a_faint_digit_beside_a_bright_patch_as_it_shows_the_digit(mnist_digits) -> None:
    from distortion.imaging.augment import local_contrast, percentile_stretch

    faint = 0.1 + 0.05 * mnist_digits
    faint[..., :12, :12] = 1.0  # a bright corner of 18% of the image defeats a 10% / 90% percentile stretch
    rest = (slice(None), slice(None), slice(18, None))  # rows beyond the corner's neighbourhood

    def r(a: torch.Tensor) -> float:
        return torch.corrcoef(torch.stack([a[rest].flatten(), local_contrast(mnist_digits)[rest].flatten()]))[0, 1]

    assert r(local_contrast(faint)) > 0.85
    assert percentile_stretch(faint)[rest].max() < 0.2  # what the percentile stretch leaves: a dark image


def test_local_correlation_ignores_contrast_and_sign_patch_by_patch() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 48, 48, generator=g)
    torch.testing.assert_close(local_correlation(x, x), torch.ones(2), atol=1e-4, rtol=0)
    assert local_content_change(x, 0.9 - 0.5 * x).max() < 0.1  # inverted, lower contrast: same content
    assert local_content_change(x, torch.rand(2, 3, 48, 48, generator=g)).min() > 80


def test_a_bright_frame_fools_the_global_content_change_but_not_the_local_one(mnist_digits) -> None:
    x = mnist_digits[:8].expand(-1, 3, -1, -1)
    framed = 0.3 * x.clone()
    framed[..., :, :5] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # a saturated red band
    assert content_change(x, framed).mean() > 40
    assert local_content_change(x, framed).mean() < 15


def test_local_correlation_is_differentiable_in_float64() -> None:
    x = torch.rand(2, 1, 20, 20, dtype=torch.float64)
    y = torch.rand(2, 1, 20, 20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: local_correlation(x, t, window=8), (y,), eps=1e-6, atol=1e-4)


def test_local_contrast_is_differentiable_in_float64() -> None:
    from distortion.imaging.augment import local_contrast

    y = torch.rand(2, 1, 14, 14, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
    assert torch.autograd.gradcheck(local_contrast, (y,), eps=1e-6, atol=1e-4)


def test_a_translation_fools_pixel_aligned_correlations_but_not_the_aligned_ones(mnist_digits) -> None:
    from distortion.imaging.statistics import aligned_local_correlation, registered_content_change

    x = mnist_digits[:8]
    moved = torch.roll(x, shifts=(3, -2), dims=(2, 3))  # the same digit, 3 px down and 2 px left
    assert content_change(x, moved).mean() > 40
    assert local_correlation(x, moved, window=8).mean() < 0.6
    assert aligned_local_correlation(x, moved, window=8, max_shift=4, step=1).min() > 0.97
    assert registered_content_change(x, moved).max() < 5.0  # only the wrapped-around edge differs
    assert registered_content_change(x, x).max() < 1e-3
    noise = torch.rand_like(x)
    assert registered_content_change(x, noise).min() > 60  # unrelated stays unrelated
    assert (registered_content_change(x, noise) <= content_change(x, noise) + 1e-4).all()


def test_aligned_local_correlation_is_differentiable_in_float64() -> None:
    from distortion.imaging.statistics import aligned_local_correlation

    x = torch.rand(2, 1, 20, 20, dtype=torch.float64)
    y = torch.rand(2, 1, 20, 20, dtype=torch.float64, requires_grad=True)
    fn = lambda t: aligned_local_correlation(x, t, window=8, max_shift=2)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (y,), eps=1e-6, atol=1e-4)


def test_shifted_pearson_equals_pearson_of_each_translated_image() -> None:
    from distortion.imaging.statistics import shifted, shifted_pearson

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 20, 24, generator=g), torch.rand(2, 3, 20, 24, generator=g)
    expected = torch.stack([pearson(x, moved) for moved in shifted(y, 3)], dim=1)
    torch.testing.assert_close(shifted_pearson(x, y, 3), expected, atol=1e-5, rtol=0)
