"""Storage round trips: exact (PIL) for evaluation, differentiable for training."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import MNIST

from distortion.imaging.image_io import chips_to_tensor, tensor_to_chips
from distortion.imaging.storage import check_storage, simulate_storage, store
from tests.conftest import DATA


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return MNIST(str(DATA), train=False).data[:8].unsqueeze(1).float() / 255


def smooth_colour(n: int = 4, size: int = 48) -> torch.Tensor:
    """Colour images that vary slowly, which JPEG and resizing keep well."""
    ramp = torch.linspace(0, 1, size)
    across, down = ramp[None, :].expand(size, -1), ramp[:, None].expand(-1, size)
    base = torch.stack([across, down, 0.5 + 0.3 * across])
    return torch.stack([(base * (0.5 + 0.1 * k)).clamp(0, 1) for k in range(n)])


@pytest.mark.parametrize("storage", ["png", "jpeg90", "jpeg75", "resize0.8"])
def test_storage_keeps_shape_and_puts_values_on_8_bit_levels(digits, storage) -> None:
    for images in (digits, smooth_colour()):
        stored = store(images, storage)
        assert stored.shape == images.shape and stored.dtype == images.dtype
        assert torch.equal(stored, torch.round(stored * 255) / 255)


def test_png_is_lossless_on_8_bit_images_and_jpeg_matches_pil(digits) -> None:
    assert torch.equal(store(digits, "png"), digits)  # MNIST is 8-bit already
    colour = smooth_colour()
    chip = tensor_to_chips(colour[:1])[0]
    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, format="JPEG", quality=75)
    expected = chips_to_tensor(np.asarray(Image.open(buffer))[None])
    assert torch.equal(store(colour[:1], "jpeg75"), expected)
    assert store(colour, "none") is colour


def test_lower_quality_and_resizing_lose_fine_detail(digits) -> None:
    noise = torch.rand(4, 3, 48, 48)
    err = {s: float((store(noise, s) - noise).abs().mean()) for s in ("png", "jpeg90", "jpeg75", "resize0.8")}
    assert err["png"] < 0.003 < err["jpeg90"] < err["jpeg75"] and err["resize0.8"] > 0.05
    smooth = smooth_colour()
    assert float((store(smooth, "resize0.8") - smooth).abs().mean()) < 0.02  # slow variation survives


@pytest.mark.parametrize("bad", ["gif", "jpeg0", "jpeg101", "resize1.5", "resize"])
def test_unknown_storage_is_refused_with_the_accepted_names(bad) -> None:
    with pytest.raises(ValueError, match="use none, png, jpeg<quality>"):
        check_storage(bad)


def test_simulated_storage_is_differentiable_and_takes_every_branch() -> None:
    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32, requires_grad=True)
    y = simulate_storage(x)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    y.sum().backward()
    assert x.grad is not None and (x.grad.flatten(1).abs().sum(1) > 0).all()  # every image gets a gradient
    kept = (y - x).detach().flatten(1).abs().amax(1) == 0
    rounded = ((y - x).detach().flatten(1).abs().amax(1) <= 0.5 / 255 + 1e-6) & ~kept
    assert 5 < int(kept.sum()) < 30 and 5 < int(rounded.sum()) < 30  # a quarter each, roughly
    grey = torch.rand(8, 1, 28, 28, requires_grad=True)
    simulate_storage(grey).mean().backward()
    assert grey.grad.abs().sum() > 0
