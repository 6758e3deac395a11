"""What a deployment stores for a photo x: G(x), optionally refined against F, as it comes back from
storage. Every command that distorts images (and the Lightning test stage) goes through it."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distortion.deployment.keyed_templates import TemplateTransform
from distortion.deployment.keys import Key
from distortion.deployment.refinement import noise_images, refine
from distortion.imaging.storage import check_storage, store
from distortion.models.carrier import CarrierGenerator

__all__ = ["Distorter"]


class Distorter:
    """``stored(x) = store(refine(G(x) or noise, target), storage)`` with ``target = F(x)``, or
    ``T_k(F(x))`` for a keyed store (``transform`` and ``key``): then a carrier generator draws the keyed
    template (or refinement starts from noise), and the matcher keys every probe (:meth:`probe`).

    Args:
        embedding: the frozen F (refinement's target and guide).
        generator: G; ``None`` starts every image from pure noise (then ``refine_steps`` should be > 0).
        refine_steps: per-image optimisation steps against F (0: G's output as it is).
        refine_lr: Adam's learning rate of the refinement.
        refine_robust: refine through random storage round trips (see :func:`~distortion.deployment.refinement.refine`).
        refine_autocast: run F in bfloat16 during refinement.
        storage: how the image is stored (``none``, ``png``, ``jpeg75``, ``resize0.8``, ...; see
            :mod:`distortion.imaging.storage`).
        transform: a fitted keyed transform (:mod:`distortion.deployment.keyed_templates`); needs ``key``.
        key: the deployment's secret key.

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
        transform: TemplateTransform | None = None,
        key: Key | None = None,
    ) -> None:
        if refine_steps < 0 or refine_lr <= 0:
            raise ValueError(f"refine_steps must be >= 0 and refine_lr > 0, got {refine_steps}, {refine_lr}")
        if (transform is None) != (key is None):
            raise ValueError("a keyed store needs both a fitted transform and a key")
        if transform is not None and generator is not None and not isinstance(generator, CarrierGenerator):
            raise ValueError(f"a keyed store draws T_k(F(x)): it needs a carrier generator or refinement from noise, "
                             f"not {type(generator).__name__}, which reads x itself")  # fmt: skip
        if transform is not None:
            transform.check_fitted()
        self.transform, self.key = transform, key
        self.embedding, self.generator = embedding, generator
        self.refine_steps, self.refine_lr = refine_steps, refine_lr
        self.refine_robust, self.refine_autocast = refine_robust, refine_autocast
        self.storage = check_storage(storage)

    @property
    def is_identity_of_g(self) -> bool:
        """Whether the stored image is G's output unchanged (no refinement, no storage, no key)."""
        return self.generator is not None and self.refine_steps == 0 and self.storage == "none" and not self.keyed

    @property
    def keyed(self) -> bool:
        return self.transform is not None

    @property
    def fingerprint(self) -> str | None:
        """The key's fingerprint (recorded beside every carrier), ``None`` when not keyed."""
        return self.key.fingerprint if self.key is not None else None

    def probe(self, emb: Tensor) -> Tensor:
        """What the matcher compares F(stored) with, for a fresh photo's F(x): ``T_k(F(x))``, or F(x) unkeyed."""
        return self.transform(emb, self.key) if self.transform is not None else emb

    def finish(self, x: Tensor, start: Tensor, emb: Tensor | None = None) -> Tensor:
        """Refine ``start`` (G's output for ``x``) towards the target of ``emb`` = F(x) (computed when
        ``None``), then store it."""
        if self.refine_steps:
            if emb is None:
                with torch.no_grad():
                    emb = self.embedding(x)
            start = refine(start, self.embedding, self.probe(emb.float()), self.refine_steps, self.refine_lr,
                           self.refine_robust, self.refine_autocast)  # fmt: skip
        return store(start.float().clamp(0, 1), self.storage)

    def __call__(self, x: Tensor, target: Tensor | None = None) -> Tensor:
        """The stored images for originals ``x`` ``(B, C, H, W)`` in ``[0, 1]``; ``target`` is F(x) when
        the caller has it already."""
        with torch.no_grad():
            if self.keyed and self.generator is not None:
                target = self.embedding(x).float() if target is None else target
                start = self.generator.decode(self.probe(target))
            elif self.generator is not None:
                start = self.generator(x)
            else:
                start = noise_images(x.shape, x.device)
        return self.finish(x, start, target)
