"""The Lagrange multiplier keeps F's budget where the paper's fixed penalty gives it up."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from distortion.objective.constraint import LagrangeMultiplier
from distortion.objective.image_distances import mse_distance
from distortion.objective.losses import squared_distance


def test_the_multiplier_rises_while_the_budget_is_broken_and_falls_while_it_is_kept() -> None:
    multiplier = LagrangeMultiplier(init=1.0, rate=0.5, tolerance=0.05, smoothing=0.5, max_value=100.0)
    for _ in range(20):
        multiplier.update(torch.tensor(1.0))
    high = float(multiplier.value)
    assert high > 10
    for _ in range(200):
        multiplier.update(torch.tensor(0.0))
    assert float(multiplier.value) < high / 2
    for _ in range(1000):
        multiplier.update(torch.tensor(50.0))
    assert float(multiplier.value) == pytest.approx(100.0)  # bounded
    assert set(multiplier.state_dict()) == {"value", "average"}  # checkpoints carry it
    with pytest.raises(ValueError, match="min_value <= init"):
        LagrangeMultiplier(init=0.0)


def _run(constraint: str, steps: int = 300) -> float:
    """Free images pushed away from x by an MSE term against a fixed random embedding: the mean excess
    over the budget at the end."""
    torch.manual_seed(0)
    x = torch.rand(32, 1, 12, 12)
    projection = torch.randn(144, 8)

    def embed(images: torch.Tensor) -> torch.Tensor:
        return F.normalize(images.flatten(1) @ projection, dim=1)

    logits = torch.logit(x.clamp(0.01, 0.99)).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=0.05)
    multiplier = LagrangeMultiplier(init=0.1, rate=0.2) if constraint == "lagrangian" else None
    tau = 0.01
    for _ in range(steps):
        g = torch.sigmoid(logits)
        hinge = F.relu(squared_distance(embed(x), embed(g)) - tau).mean()
        beta = 0.1 if multiplier is None else multiplier.value
        loss = -mse_distance(x, g).mean() + beta * hinge
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if multiplier is not None:
            multiplier.update(hinge.detach() / tau)
    g = torch.sigmoid(logits).detach()
    return float(F.relu(squared_distance(embed(x), embed(g)) - tau).mean() / tau)


def test_a_fixed_penalty_gives_the_budget_up_where_the_multiplier_keeps_it() -> None:
    assert _run("penalty") > 1.0  # the image term wins: the embeddings drift far past tau
    assert _run("lagrangian") < 0.2
