"""The inversion attack: an attacker who can query G learns an inverse network H with H(G(x)) ~ x.

The attacker owns images of other people (the training identities), runs them through G and
fits H on the pairs ``(G(x), x)``. The attack is then judged on people H never saw: how close
H(G(x)) comes to x (SSIM, PSNR), whether a person (stood in for by a reader or face detectors)
recognises the reconstruction, and whether the recognizer accepts it as the original person.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn
from tqdm import tqdm

from distortion.losses import dssim_l1_distance
from distortion.models import UNet


def make_inverter(channels: int, depth: int = 3, width: int = 32) -> UNet:
    """The attacker's H: a U-Net from G's image space back to images in ``[0, 1]``."""
    return UNet(in_channels=channels, depth=depth, width=width, norm=True)


def _forever(batches: Iterable[Tensor | tuple[Tensor, ...]]) -> Iterator[Tensor]:
    """The images of ``batches`` (the first item of tuple batches), pass after pass (a loader reshuffles each pass)."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch[0] if isinstance(batch, tuple | list) else batch
        if empty:
            raise ValueError("no training batches for the inversion attack")


def train_inverter(
    generator: nn.Module,
    inverter: nn.Module,
    batches: Iterable[Tensor | tuple[Tensor, ...]],
    steps: int,
    lr: float = 1e-3,
    autocast: bool = True,
    progress: bool = True,
) -> dict[str, float]:
    """Fit H on ``(G(x), x)`` for ``steps`` Adam steps, cycling through ``batches`` of originals ``x``
    (tensors, or tuples whose first item is ``x``, as a training loader yields).

    The loss is ``(d_DSSIM + d_L1) / 2`` of H(G(x)) against x (structure and pixels). G stays
    frozen; bfloat16 autocast speeds up the convolutions (CPUs with AVX-512 BF16, and GPUs).

    Returns:
        ``{"steps", "seconds", "final_loss"}`` (the last loss averaged over the last 50 steps).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    device = next(inverter.parameters()).device
    generator.eval().requires_grad_(False)
    inverter.train()
    optimizer = torch.optim.Adam(inverter.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr / 100)
    losses: list[float] = []
    start = time.perf_counter()
    stream = _forever(batches)
    for _ in tqdm(range(steps), desc="inversion attack", unit="step", disable=not progress):
        x = next(stream).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            with torch.no_grad():
                g = generator(x)
            loss = dssim_l1_distance(x, inverter(g).float()).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    inverter.eval()
    return {"steps": steps, "seconds": time.perf_counter() - start, "final_loss": sum(losses[-50:]) / len(losses[-50:])}
