"""When G has collapsed: it lost F (deployment EER far above F's own) or it draws nearly the same image
for every input. Both are failures, never results; :class:`~callbacks.CollapseGuard` says so."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["CollapseError", "collapse_reasons", "output_diversity"]


class CollapseError(RuntimeError):
    """G collapsed; the message says how."""


def output_diversity(x: Tensor, g: Tensor) -> Tensor:
    """How much G's outputs differ from each other, relative to how much the inputs do: the mean over
    pixels of the variance across the batch of ``g``, divided by that of ``x`` (both ``(B, C, H, W)``,
    B >= 2). 1 for the identity, 0 for a constant image; pixel noise in ``g`` raises it."""
    if x.shape[0] < 2 or x.shape != g.shape:
        raise ValueError(f"need two batches of one shape, 2 images or more, got {tuple(x.shape)}, {tuple(g.shape)}")
    spread = torch.var(g.float(), dim=0).mean()
    return spread / torch.var(x.float(), dim=0).mean().clamp_min(1e-12)


def collapse_reasons(
    orig_eer: float, deploy_eer: float, diversity: float, max_eer_gap: float = 0.03, min_diversity: float = 0.1
) -> list[str]:
    """Why a G counts as collapsed (an empty list when it does not): its deployment EER is more than
    ``max_eer_gap`` above F's own, or its ``diversity`` (:func:`output_diversity`) is below ``min_diversity``."""
    reasons = []
    if deploy_eer - orig_eer > max_eer_gap:
        reasons.append(
            f"G lost F: deployment EER {100 * deploy_eer:.2f}% against F's own {100 * orig_eer:.2f}% "
            f"(more than {100 * max_eer_gap:.1f} points above)"
        )
    if diversity < min_diversity:
        reasons.append(
            f"G draws nearly the same image for every input: output diversity {diversity:.3f} "
            f"(below {min_diversity}; 1 = as varied as the inputs)"
        )
    return reasons
