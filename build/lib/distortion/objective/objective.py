"""The method's loss as one unit, built from three settings groups:

``L = -alpha * d_img(x, G(x)) + beta * mean(relu(||t - F(G(x))||^2 - tau)) [+ gamma * KL(uniform || P(G(x)))]``

with ``t`` the template G carries (F(x), or ``T_k(F(x))`` for a keyed store). :class:`ImageTerm` says what
change of the image is rewarded, :class:`Budget` how F's embedding is held (the paper's fixed penalty or a
Lagrange multiplier, :mod:`distortion.objective.constraint`), :class:`PerceptualTerm` whether a reader P
must fail on G(x). The LightningModule and the benchmark both call :class:`Objective`; changing the loss
means changing this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from distortion.imaging.augment import local_contrast, percentile_stretch
from distortion.imaging.storage import simulate_storage
from distortion.objective.constraint import LagrangeMultiplier
from distortion.objective.image_distances import get_image_distance
from distortion.objective.losses import hinge_loss, uniform_prediction_loss

__all__ = ["Budget", "ImageTerm", "Objective", "PerceptualTerm"]


@dataclass(frozen=True)
class ImageTerm:
    """``-alpha * d_img(x, G(x))``: the change of the image that is rewarded.

    Args:
        distance: d_img by name (:data:`~distortion.objective.image_distances.IMAGE_DISTANCES`) or a weighted
            sum, e.g. ``{mse: 1.0, decorrelation: 2.0}``.
        alpha: its weight (maximised).
        warmup_steps: ramp alpha (and gamma) linearly from 0 over this many training steps, so that G first
            learns to keep F's embedding before it is pushed away from x.
    """

    distance: str | dict[str, float | dict[str, int | float]] = "mse"
    alpha: float = 1.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if not (self.alpha >= 0 and self.warmup_steps >= 0):
            raise ValueError(f"alpha and warmup_steps must be >= 0, got {self.alpha}, {self.warmup_steps}")
        get_image_distance(self.distance)  # an unknown name fails here, with the names there are


@dataclass(frozen=True)
class Budget:
    """``beta * mean(relu(||t - F(G(x))||^2 - tau))``: how far F(G(x)) may move from the template.

    Args:
        tau: the budget: squared embedding distance below which G is not penalised.
        beta: the hinge's weight; with ``constraint="lagrangian"`` its starting value.
        constraint: ``penalty`` (the paper: beta fixed) or ``lagrangian`` (beta becomes a multiplier that
            rises while the mean relative excess ``mean(relu(d^2 - tau)) / tau`` is above
            ``multiplier_tolerance`` and falls while below; the loss is divided by ``1 + multiplier``, which
            keeps its gradients on one scale).
        multiplier_rate: speed of the multiplier's updates.
        multiplier_tolerance: the mean relative excess the multiplier tolerates.
        robust_storage: F reads G(x) through a random, differentiable storage round trip in training (8-bit,
            JPEG, resize), so that stored images keep their embedding.
    """

    tau: float = 0.0
    beta: float = 1.0
    constraint: Literal["penalty", "lagrangian"] = "penalty"
    multiplier_rate: float = 0.1
    multiplier_tolerance: float = 0.02
    robust_storage: bool = False

    def __post_init__(self) -> None:
        if not (self.tau >= 0 and self.beta >= 0):
            raise ValueError(f"tau and beta must be >= 0, got tau={self.tau}, beta={self.beta}")
        if self.constraint not in ("penalty", "lagrangian"):
            raise ValueError(f"constraint must be 'penalty' or 'lagrangian', got {self.constraint!r}")


@dataclass(frozen=True)
class PerceptualTerm:
    """``gamma * KL(uniform || P(G(x)))``: a perceptual network P (a digit reader) must not read G(x).

    Args:
        ckpt: checkpoint of the :class:`~distortion.modules.ReaderModule` used as P; never the evaluation
            reader (another seed and architecture).
        gamma: the term's weight (0: off).
        stretch: P also reads G(x) with its contrast stretched (a faint digit is no escape).
        local_contrast: P also reads G(x) with its local contrast normalised.
    """

    ckpt: str | None = None
    gamma: float = 0.0
    stretch: bool = False
    local_contrast: bool = False

    def __post_init__(self) -> None:
        if not self.gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")
        if self.gamma > 0 and self.ckpt is None:
            raise ValueError("perceptual.gamma > 0 needs perceptual.ckpt, the checkpoint of the perceptual network P")


class Objective(nn.Module):
    """The loss of one batch, and the state it keeps (the multiplier, a buffer that checkpoints carry).

    Args:
        image, budget, perceptual: the three settings groups.
        reader: the network P of ``perceptual`` (loaded by the caller from ``perceptual.ckpt``), frozen.
    """

    def __init__(
        self,
        image: ImageTerm = ImageTerm(),
        budget: Budget = Budget(),
        perceptual: PerceptualTerm = PerceptualTerm(),
        reader: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if perceptual.gamma > 0 and reader is None:
            raise ValueError("perceptual.gamma > 0 needs the reader P")
        self.image, self.budget, self.perceptual = image, budget, perceptual
        self.distance = get_image_distance(image.distance)
        self.multiplier = (
            LagrangeMultiplier(max(budget.beta, 1e-2), budget.multiplier_rate, budget.multiplier_tolerance)
            if budget.constraint == "lagrangian" else None
        )  # fmt: skip
        self.reader = reader.eval().requires_grad_(False) if reader is not None else None

    def warmup(self, step: int) -> float:
        """The share of alpha and gamma in force at training step ``step``."""
        return 1.0 if self.image.warmup_steps == 0 else min(1.0, step / self.image.warmup_steps)

    def beta(self) -> float | Tensor:
        """The hinge's weight now: beta, or the multiplier's value."""
        return self.budget.beta if self.multiplier is None else self.multiplier.value.clone()

    def forward(
        self,
        generator: nn.Module,
        embedding: nn.Module,
        x: Tensor,
        template: Tensor | None = None,
        share: float = 1.0,
        training: bool = False,
    ) -> dict[str, Tensor]:
        """G(x), F(x), F(G(x)) and the loss with its terms for originals ``x``.

        ``template``: what G must carry (default F(x)); ``share``: the warm-up's share of alpha and gamma;
        ``training``: F reads G(x) through random storage when ``budget.robust_storage``. Returns ``gx``,
        ``emb_x``, ``goal`` (the template), ``emb_gx``, ``d_img``, ``threshold`` (the hinge), ``violation``
        (the hinge over tau, what the multiplier follows), ``perceptual`` when on, and ``loss``."""
        with torch.no_grad():
            emb_x = embedding(x)
        goal = emb_x if template is None else template
        gx = generator(x, goal)
        emb_gx = embedding(simulate_storage(gx) if training and self.budget.robust_storage else gx)
        tau = self.budget.tau
        d_img = self.distance(x, gx.float()).mean()
        hinge = hinge_loss(goal.float(), emb_gx.float(), tau)
        terms = {"gx": gx, "emb_x": emb_x, "goal": goal, "emb_gx": emb_gx, "d_img": d_img, "threshold": hinge}
        terms["violation"] = hinge.detach() / tau if tau > 0 else hinge.detach()
        beta = self.beta()
        loss = -self.image.alpha * share * d_img + beta * hinge
        gamma = self.perceptual.gamma * share
        if self.reader is not None and gamma > 0:
            views = [gx]
            views += [percentile_stretch(gx.float())] if self.perceptual.stretch else []
            views += [local_contrast(gx.float())] if self.perceptual.local_contrast else []
            terms["perceptual"] = torch.stack([uniform_prediction_loss(self.reader(v)).mean() for v in views]).mean()
            loss = loss + gamma * terms["perceptual"]
        # a multiplier's scale must not reach the optimiser as a sudden jump in gradients (Adam would take one
        # huge step when beta jumps): divided by 1 + beta, it moves the balance of the terms, not their size
        terms["loss"] = loss / (1 + beta) if self.multiplier is not None else loss
        return terms

    def update(self, violation: Tensor) -> None:
        """The multiplier's step after a training step (nothing for a fixed penalty)."""
        if self.multiplier is not None:
            self.multiplier.update(violation)
