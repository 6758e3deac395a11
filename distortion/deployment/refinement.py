"""Per-image refinement: optimise an image's pixels until the frozen F embeds it where it embeds x.

F is not robust: a few steps of gradient descent on the pixels move F(image) anywhere, starting from
G's output or from pure noise. Refining from noise, with no G at all, is the reference for what
identifiability costs (nothing visible) and for speed; refining G's output closes what is left of
G's embedding distance.

The pixels are parametrised as ``sigmoid(logits)`` (always in ``[0, 1]``) and optimised with Adam on
``||F(image) - target||^2``, summed over the batch so that each image follows its own gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distortion.imaging.storage import simulate_storage
from distortion.objective.losses import squared_distance
from distortion.precision import Precision, autocast

__all__ = ["noise_images", "refine"]

_EPS = 1e-3


def noise_images(shape: tuple[int, ...], device: torch.device | str = "cpu") -> Tensor:
    """Images of pure noise, ``sigmoid(N(0, 1))`` per pixel and channel (from the global random state):
    where refinement from nothing starts."""
    return torch.sigmoid(torch.randn(shape, device=device))


def refine(
    images: Tensor,
    embedding: nn.Module,
    target: Tensor,
    steps: int,
    lr: float = 0.05,
    robust: bool = False,
    precision: Precision = "auto",
) -> Tensor:
    """``images`` ``(B, C, H, W)`` in ``[0, 1]`` after ``steps`` Adam steps on ``||F(image) - target||^2``.

    Args:
        images: where to start (G's output, or :func:`noise_images`).
        embedding: the frozen F; its weights receive no gradient.
        target: ``(B, D)`` embeddings to reach, F(x) of the originals.
        steps: optimisation steps (0 returns ``images`` unchanged).
        lr: Adam's learning rate on the logits.
        robust: optimise through :func:`~distortion.imaging.storage.simulate_storage` (a random 8-bit, JPEG or
            resize round trip each step), so that the result keeps its embedding once stored.
        precision: F's arithmetic: ``bf16`` autocast, ``32``, or ``auto``: bfloat16 where the device computes it
            natively (:mod:`distortion.precision`); bfloat16 is faster there and slightly less exact.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if steps == 0:
        return images
    # inside Lightning's evaluation loops: leave inference mode and clone, so autograd may record
    with torch.inference_mode(False), torch.enable_grad():
        target = target.detach().float().clone()
        logits = torch.logit(images.detach().float().clone().clamp(_EPS, 1 - _EPS)).requires_grad_(True)
        optimizer = torch.optim.Adam([logits], lr=lr)
        for _ in range(steps):
            image = torch.sigmoid(logits)
            seen = simulate_storage(image) if robust else image
            with autocast(images.device, precision):
                emb = embedding(seen)
            loss = squared_distance(emb.float(), target).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return torch.sigmoid(logits).detach().to(images.dtype)
