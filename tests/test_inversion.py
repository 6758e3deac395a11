"""The attackers learn on real MNIST: H undoes an invertible distortion, H' reconstructs from a template."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.datasets import MNIST

from distortion.attacks.inversion import TemplateInverter, make_inverter, train_inverter
from distortion.imaging.statistics import ssim
from tests.conftest import DATA


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return MNIST(str(DATA), train=True).data[:512].unsqueeze(1).float() / 255


@pytest.mark.slow  # H's training also runs, smaller, in tests/commands/test_privacy.py
def test_the_inverter_learns_to_undo_an_invertible_distortion(digits) -> None:
    negatives = 1 - digits  # an invertible stand-in for G: the photographic negative
    inverter = make_inverter(1, depth=2, width=16)
    before = ssim(digits[:128], inverter(negatives[:128]).detach()).mean()
    torch.manual_seed(0)
    pairs = list(zip(negatives.split(64), digits.split(64)))
    result = train_inverter(inverter, pairs, steps=150, lr=1e-2, progress=False)
    after = ssim(digits[:128], inverter(negatives[:128]).detach()).mean()
    assert result["steps"] == 150 and result["final_loss"] < 0.05
    assert before < 0.2 and after > 0.9  # H(G(x)) is x again


def test_the_template_inverter_learns_to_draw_a_digit_from_its_template(digits) -> None:
    templates = F.avg_pool2d(digits, 4).flatten(1)  # a 49-d template that keeps the layout of the digit
    torch.manual_seed(0)
    inverter = TemplateInverter(49, (1, 28, 28), depth=2, width=8)
    before = ssim(digits[:128], inverter(templates[:128]).detach()).mean()
    pairs = list(zip(templates.split(64), digits.split(64)))
    result = train_inverter(inverter, pairs, steps=150, lr=1e-2, progress=False)
    after = ssim(digits[:128], inverter(templates[:128]).detach()).mean()
    assert inverter(templates[:2]).shape == (2, 1, 28, 28) and result["final_loss"] < 0.3
    assert before < 0.1 and after > 0.5


def test_the_inverter_needs_training_data() -> None:
    with pytest.raises(ValueError, match="no training batches"):
        train_inverter(make_inverter(1, depth=2, width=4), [], steps=1, progress=False)
