"""What a deployment stores for a photo x: G(x), optionally refined against F, as it comes back from
storage. Every command that distorts images (and the Lightning test stage) goes through it."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distortion.refinement import noise_images, refine
from distortion.storage import check_storage, store

__all__ = ["Distorter"]


class Distorter:
    """``stored(x) = store(refine(G(x) or noise, F(x)), storage)``.

    Args:
        embedding: the frozen F (refinement's target and guide).
        generator: G; ``None`` starts every image from pure noise (then ``refine_steps`` should be > 0).
        refine_steps: per-image optimisation steps against F (0: G's output as it is).
        refine_lr: Adam's learning rate of the refinement.
        refine_robust: refine through random storage round trips (see :func:`~distortion.refinement.refine`).
        refine_autocast: run F in bfloat16 during refinement.
        storage: how the image is stored (``none``, ``png``, ``jpeg75``, ``resize0.8``, ...; see
            :mod:`distortion.storage`).

    Noise (the start without G, and a carrier generator's own) comes from the global random state,
    so ``torch.manual_seed`` makes a run repeatable. A plain object holding references: the networks
    stay registered (and checkpointed) where they belong.
    """

    def __init__(
        self,
        embedding: nn.Module,
        generator: nn.Module | None = None,
        refine_steps: int = 0,
        refine_lr: float = 0.05,
        refine_robust: bool = False,
        refine_autocast: bool = False,
        storage: str = "none",
    ) -> None:
        if refine_steps < 0 or refine_lr <= 0:
            raise ValueError(f"refine_steps must be >= 0 and refine_lr > 0, got {refine_steps}, {refine_lr}")
        self.embedding, self.generator = embedding, generator
        self.refine_steps, self.refine_lr = refine_steps, refine_lr
        self.refine_robust, self.refine_autocast = refine_robust, refine_autocast
        self.storage = check_storage(storage)

    @property
    def is_identity_of_g(self) -> bool:
        """Whether the stored image is G's output unchanged (no refinement, no storage)."""
        return self.generator is not None and self.refine_steps == 0 and self.storage == "none"

    def finish(self, x: Tensor, start: Tensor, target: Tensor | None = None) -> Tensor:
        """Refine ``start`` (G's output for ``x``) towards ``target`` = F(x) (computed when ``None``), then store it."""
        if self.refine_steps:
            if target is None:
                with torch.no_grad():
                    target = self.embedding(x)
            start = refine(start, self.embedding, target, self.refine_steps, self.refine_lr, self.refine_robust,
                           self.refine_autocast)  # fmt: skip
        return store(start.float().clamp(0, 1), self.storage)

    def __call__(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """The stored images for originals ``x`` ``(B, C, H, W)`` in ``[0, 1]``; ``target`` is F(x) when
        the caller has it already (refinement needs it)."""
        with torch.no_grad():
            start = self.generator(x) if self.generator is not None else noise_images(x.shape, x.device)
        return self.finish(x, start, target)
