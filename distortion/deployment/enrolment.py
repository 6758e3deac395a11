"""One settings group for what happens to an image on its way into the store: refined against F (or not),
stored in a format, and, for a keyed store, under which key.

The LightningModule (validation and test), the :class:`~distortion.deployment.distorter.Distorter` and every
command take it; on the command line it is ``--enrolment.storage png --enrolment.refine_steps 150``. It never
enters a checkpoint: how a G's images are stored is a choice of each evaluation, not of training.
"""

from __future__ import annotations

from dataclasses import dataclass

from distortion.imaging.storage import check_storage
from distortion.precision import Precision, resolve_autocast

__all__ = ["Enrolment"]


@dataclass(frozen=True)
class Enrolment:
    """How a deployment turns G's output into what it keeps.

    Args:
        refine_steps: per-image Adam steps on ``||F(image) - target||^2`` (0: G's output as it is; without a G,
            images start from noise and need >= 1), see :mod:`distortion.deployment.refinement`.
        refine_lr: the refinement's learning rate.
        refine_robust: refine through random storage round trips, so that the stored file keeps its template.
        refine_precision: F's arithmetic while refining: ``auto`` (bfloat16 where the device computes it natively,
            float32 elsewhere; :mod:`distortion.precision`), ``bf16`` or ``32``.
        storage: the file format kept: ``none``, ``png``, ``jpeg<q>`` (``jpeg75``), ``resize<s>`` (``resize0.8``).
        key: a keyed store's key file (``None``: ``$DISTORTION_KEY_FILE`` or ``$DISTORTION_KEY``); a path, never
            the key itself, so that no config, checkpoint or log holds key bytes.
    """

    refine_steps: int = 0
    refine_lr: float = 0.05
    refine_robust: bool = False
    refine_precision: Precision = "auto"
    storage: str = "none"
    key: str | None = None

    def __post_init__(self) -> None:
        if self.refine_steps < 0 or not self.refine_lr > 0:
            raise ValueError(f"refine_steps must be >= 0 and refine_lr > 0, got {self.refine_steps}, {self.refine_lr}")
        check_storage(self.storage)
        resolve_autocast("cpu", self.refine_precision)  # an unknown precision fails here, before any work
