"""Two attackers on a stored image: an inverse network H with H(stored x) ~ x, and a template inverter
H' with H'(F(x)) ~ x.

H is the attack on the distortion: whoever can query G (or run the refinement) makes pairs
(stored image, x) from photos of other people and fits H on them. H' is the attack on the template
alone: whoever holds a stored image holds F(x) = F(stored), so nothing stored can leak less than
what H' recovers from F(x). Both get the same U-Net, the same pairs of photos, steps and loss; H'
only adds a linear map from the embedding to a coarse image in front. They are judged on people
they never saw: SSIM and PSNR to x, whether a person (a reader, face detectors) recognises the
reconstruction, and whether F accepts it as the person.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from distortion.models import UNet
from distortion.objective.image_distances import dssim_l1_distance
from distortion.precision import Precision, autocast

__all__ = ["AttackBudget", "TemplateInverter", "make_inverter", "train_inverter"]


@dataclass(frozen=True)
class AttackBudget:
    """The training of each attacker, H and H' alike (``--attack.*`` flags of ``distortion privacy``).

    Args:
        images: photos of the training identities the attackers learn from (0 = all).
        steps: optimisation steps.
        batch_size: photos per step.
        lr: Adam's learning rate.
        depth: the levels of their U-Net.
        width: the channels of its first level.
    """

    images: int = 0
    steps: int = 2000
    batch_size: int = 32
    lr: float = 3e-3
    depth: int = 3
    width: int = 32


def make_inverter(channels: int, depth: int = 3, width: int = 32) -> UNet:
    """The attacker's H: a U-Net from stored images back to images in ``[0, 1]``."""
    return UNet(in_channels=channels, depth=depth, width=width, norm=True)


class TemplateInverter(nn.Module):
    """The attacker's H': a linear map from an embedding ``(B, D)`` to a ``(C, H / 4, W / 4)`` image,
    upsampled (bilinear) to ``(C, H, W)``, then H's U-Net (:func:`make_inverter`) to the reconstruction."""

    def __init__(self, embedding_dim: int, image_shape: tuple[int, int, int], depth: int = 3, width: int = 32):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c, h, w = image_shape
        self.coarse = (c, math.ceil(h / 4), math.ceil(w / 4))
        self.project = nn.Linear(embedding_dim, math.prod(self.coarse))
        self.unet = make_inverter(c, depth, width)

    def forward(self, emb: Tensor) -> Tensor:
        """``(B, D)`` embeddings -> ``(B, C, H, W)`` images in ``[0, 1]``."""
        coarse = torch.sigmoid(self.project(emb.float()).view(-1, *self.coarse))
        return self.unet(F.interpolate(coarse, size=self.image_shape[1:], mode="bilinear", align_corners=False))


def _forever(batches: Iterable[tuple[Tensor, Tensor]]) -> Iterator[tuple[Tensor, Tensor]]:
    """``(input, target)`` batches, pass after pass (a shuffling loader reshuffles each pass)."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch[0], batch[1]
        if empty:
            raise ValueError("no training batches for the attack")


def train_inverter(
    inverter: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    steps: int,
    lr: float = 1e-3,
    precision: Precision = "auto",
    progress: bool = True,
) -> dict[str, float]:
    """Fit an attacker on ``(input, x)`` batches for ``steps`` Adam steps (cycling through ``batches``).

    ``input`` is what the attacker holds (a stored image for H, an embedding for H'), ``x`` the photo
    ``(B, C, H, W)`` in ``[0, 1]``; both move to the inverter's device. The loss is
    ``(d_DSSIM + d_L1) / 2`` of the reconstruction against x; bfloat16 autocast speeds up the convolutions
    where the device computes it natively (``precision``: :mod:`distortion.precision`); Adam's learning rate
    decays by a cosine.

    Returns:
        ``{"steps", "seconds", "final_loss"}`` (the loss averaged over the last 50 steps).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = next(inverter.parameters()).device
    inverter.train()
    optimizer = torch.optim.Adam(inverter.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr / 100)
    losses: list[Tensor] = []
    start = time.perf_counter()
    stream = _forever(batches)
    for _ in tqdm(range(steps), desc="attack", unit="step", disable=not progress):
        inputs, x = (t.to(device, non_blocking=True).float() for t in next(stream))
        with autocast(device, precision):
            loss = dssim_l1_distance(x, inverter(inputs).float()).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.detach())
    inverter.eval()
    final = float(torch.stack(losses[-50:]).mean())
    return {"steps": steps, "seconds": time.perf_counter() - start, "final_loss": final}
