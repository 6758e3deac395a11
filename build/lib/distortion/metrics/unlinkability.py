"""Unlinkability of protected templates (Gomez-Barrero et al., IEEE TIFS 2018; ISO/IEC 30136).

Given comparison scores between templates of the *same* subject made under two different keys
(mated, e.g. two generators with different seeds) and of *different* subjects under the two keys
(non-mated), the local measure

    D(s) = 0                                     if LR(s) * omega <= 1
    D(s) = 2 * LR(s) * omega / (1 + LR(s) * omega) - 1   otherwise,

with LR(s) = p(s | mated) / p(s | non-mated) and omega the prior ratio of the two hypotheses,
says how surely an attacker who sees score s can link the two templates; the global measure
D_sys = integral of p(s | mated) * D(s) ds lies in [0, 1]: 0 fully unlinkable, 1 fully linkable.
Densities are estimated with histograms on shared bins.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _score_densities(mated: Tensor, non_mated: Tensor, bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """Bin centres and the histogram densities of both score sets on shared equal-width bins."""
    if mated.numel() == 0 or non_mated.numel() == 0:
        raise ValueError("both mated and non-mated scores are needed")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    mated, non_mated = mated.double().flatten(), non_mated.double().flatten()
    lo = min(mated.min().item(), non_mated.min().item())
    hi = max(mated.max().item(), non_mated.max().item())
    hi = hi if hi > lo else lo + 1.0
    p_m = torch.histc(mated, bins, lo, hi) / mated.numel()
    p_nm = torch.histc(non_mated, bins, lo, hi) / non_mated.numel()
    centres = lo + (torch.arange(bins, dtype=torch.float64) + 0.5) * (hi - lo) / bins
    return centres, p_m, p_nm


def _local(p_m: Tensor, p_nm: Tensor, omega: float) -> Tensor:
    if omega <= 0:
        raise ValueError(f"omega must be > 0, got {omega}")
    lr_omega = omega * p_m / p_nm.clamp_min(1e-300)
    d = torch.where(lr_omega > 1, 2 * lr_omega / (1 + lr_omega) - 1, torch.zeros_like(lr_omega))
    return torch.where((p_nm == 0) & (p_m > 0), torch.ones_like(d), d)  # only mated scores: fully linkable


def local_unlinkability(mated: Tensor, non_mated: Tensor, bins: int = 100, omega: float = 1.0) -> tuple[Tensor, Tensor]:
    """``D(s)`` on ``bins`` equal-width bins spanning both score sets: returns ``(bin_centres, D)``."""
    centres, p_m, p_nm = _score_densities(mated, non_mated, bins)
    return centres, _local(p_m, p_nm, omega)


def global_unlinkability(mated: Tensor, non_mated: Tensor, bins: int = 100, omega: float = 1.0) -> Tensor:
    """``D_sys = sum_s p(s | mated) * D(s)`` over the bins of :func:`local_unlinkability`, in ``[0, 1]``."""
    _, p_m, p_nm = _score_densities(mated, non_mated, bins)
    return (p_m * _local(p_m, p_nm, omega)).sum()
