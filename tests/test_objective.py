"""The method's loss as a unit: its formula, the multiplier, the warm-up, the perceptual term, bad settings."""

from __future__ import annotations

import pytest
import torch
from torchvision.datasets import MNIST

from distortion.imaging.augment import local_contrast, percentile_stretch
from distortion.models import Generator, UNet
from distortion.objective import Budget, ImageTerm, Objective, PerceptualTerm
from distortion.objective.image_distances import mse_distance
from distortion.objective.losses import squared_distance, uniform_prediction_loss
from tests.conftest import DATA


class Projection(torch.nn.Module):
    """A fixed F: a random projection of the pixels to 16 dimensions."""

    def __init__(self, pixels: int = 784, dim: int = 16) -> None:
        super().__init__()
        self.register_buffer("weight", torch.randn(pixels, dim, generator=torch.Generator().manual_seed(0)) / 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight


class Darker(Generator):
    """G(x) = x / 2: a fixed, known change of the image."""

    def forward(self, x: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        return x / 2


def digits(count: int = 16) -> torch.Tensor:
    return MNIST(str(DATA), train=True).data[:count].unsqueeze(1).float() / 255


def test_the_penalty_loss_is_the_papers_formula() -> None:
    f, x = Projection(), digits()
    objective = Objective(ImageTerm("mse", alpha=2.0), Budget(tau=0.01, beta=3.0))
    terms = objective(Darker(), f, x)
    d_img = mse_distance(x, x / 2).mean()
    hinge = torch.relu(squared_distance(f(x), f(x / 2)) - 0.01).mean()
    assert float(terms["d_img"]) == pytest.approx(float(d_img), rel=1e-6)
    assert float(terms["threshold"]) == pytest.approx(float(hinge), rel=1e-6) and float(hinge) > 0
    assert float(terms["loss"]) == pytest.approx(float(-2.0 * d_img + 3.0 * hinge), rel=1e-5)
    assert float(terms["violation"]) == pytest.approx(float(hinge) / 0.01, rel=1e-5)


def test_the_hinge_is_measured_to_the_template_g_must_carry() -> None:
    f, x = Projection(), digits()
    target = f(x / 2)  # a template G's image reaches exactly
    terms = Objective(ImageTerm("mse"), Budget(tau=0.0))(Darker(), f, x, template=target)
    assert float(terms["threshold"]) == pytest.approx(0.0, abs=1e-6)
    assert float(Objective(ImageTerm("mse"), Budget(tau=0.0))(Darker(), f, x)["threshold"]) > 0


def test_the_multiplier_normalises_the_loss_moves_and_is_checkpointed() -> None:
    f, x = Projection(), digits()
    objective = Objective(ImageTerm("mse"), Budget(tau=1e-4, beta=2.0, constraint="lagrangian"))
    assert {"multiplier.value", "multiplier.average"} <= objective.state_dict().keys()
    terms = objective(Darker(), f, x)
    beta = float(objective.beta())
    assert beta == pytest.approx(2.0)
    expected = (-terms["d_img"] + beta * terms["threshold"]) / (1 + beta)
    assert float(terms["loss"]) == pytest.approx(float(expected), rel=1e-5)
    for _ in range(5):
        objective.update(terms["violation"])  # far over budget: lambda rises
    assert float(objective.beta()) > beta
    assert Objective(budget=Budget(beta=2.0)).state_dict() == {}  # a fixed penalty keeps no state


def test_alpha_and_gamma_warm_up_linearly() -> None:
    objective = Objective(ImageTerm("mse", alpha=2.0, warmup_steps=100))
    assert [objective.warmup(s) for s in (0, 50, 100, 500)] == [0.0, 0.5, 1.0, 1.0]
    assert Objective().warmup(0) == 1.0


@pytest.mark.parametrize("stretch, local", [(False, False), (True, False), (True, True), (False, True)])
def test_the_perceptual_term_reads_g_x_and_its_contrast_enhanced_views(stretch: bool, local: bool) -> None:
    torch.manual_seed(0)
    reader = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    x = 0.1 * digits()  # faint digits
    objective = Objective(perceptual=PerceptualTerm("p.ckpt", gamma=2.0, stretch=stretch, local_contrast=local),
                          reader=reader)  # fmt: skip
    g = Darker()
    gx = x / 2
    views = [gx] + [percentile_stretch(gx)] * stretch + [local_contrast(gx)] * local
    expected = torch.stack([uniform_prediction_loss(reader(v)).mean() for v in views]).mean()
    terms = objective(g, Projection(), x)
    assert float(terms["perceptual"]) == pytest.approx(float(expected), rel=1e-5)
    assert "perceptual" not in objective(g, Projection(), x, share=0.0)  # gamma ramps up with alpha
    assert not any(p.requires_grad for p in objective.reader.parameters())


def test_storage_is_simulated_in_training_only() -> None:
    f, x = Projection(), digits()
    objective = Objective(budget=Budget(robust_storage=True))
    torch.manual_seed(0)
    plain = objective(Darker(), f, x)["emb_gx"]
    assert torch.equal(plain, f(x / 2))
    torch.manual_seed(0)
    assert not torch.equal(objective(Darker(), f, x, training=True)["emb_gx"], plain)


def test_g_learns_under_the_objective_on_real_digits() -> None:
    torch.manual_seed(0)
    f, x, g = Projection(), digits(64), UNet(depth=2, width=8)
    objective = Objective(ImageTerm("mse"), Budget(tau=0.02, beta=10.0))
    optimizer = torch.optim.Adam(g.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = objective(g, f, x, training=True)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.01


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ImageTerm(alpha=-1.0), "alpha and warmup_steps must be >= 0"),
        (lambda: ImageTerm(warmup_steps=-1), "alpha and warmup_steps must be >= 0"),
        (lambda: ImageTerm("psnr"), "unknown image distance 'psnr'"),
        (lambda: Budget(tau=float("nan")), "tau and beta must be >= 0"),
        (lambda: Budget(constraint="hard"), "constraint must be 'penalty' or 'lagrangian'"),
        (lambda: PerceptualTerm(gamma=1.0), "needs perceptual.ckpt"),
        (lambda: Objective(perceptual=PerceptualTerm("p.ckpt", gamma=1.0)), "needs the reader P"),
    ],
)
def test_bad_settings_are_refused_with_their_name(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
