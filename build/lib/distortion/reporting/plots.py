"""The figures of the reports: ROC curves, embedding distances, unlinkability scores and the insider's curve."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402

from distortion.metrics.unlinkability import local_unlinkability  # noqa: E402
from distortion.metrics.verification import COMPARISONS  # noqa: E402

__all__ = ["plot_distances", "plot_insider", "plot_roc", "plot_unlinkability"]


def plot_roc(curves: dict[str, tuple[Tensor, Tensor]], path: Path, min_far: float = 1e-4, title: str = "") -> None:
    """Save TAR against FAR (log scale) of each comparison's ``(fpr, tpr)`` curve, labelled by its title."""
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    for name, (fpr, tpr) in curves.items():
        label = COMPARISONS[name].title if name in COMPARISONS else name
        ax.plot(fpr.clamp_min(1e-5).numpy(), tpr.numpy(), label=label)
    ax.set(xscale="log", xlim=(min_far, 1), ylim=(0, 1.01), xlabel="false accept rate", ylabel="true accept rate")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_distances(shift: Tensor, genuine: Tensor, impostor: Tensor, path: Path, title: str = "") -> None:
    """Histogram of ``||F(x) - F(stored x)||`` beside the genuine and impostor distances of original pairs."""
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    top = float(max(shift.max(), genuine.max(), impostor.max())) if len(impostor) else 1.4
    bins = np.linspace(0, max(top, 1e-3), 71)
    ax.hist(shift.numpy(), bins=bins, alpha=0.6, density=True, label="||F(x) - F(stored)||, same image")
    ax.hist(genuine.numpy(), bins=bins, alpha=0.5, density=True, label="genuine pairs, originals")
    ax.hist(impostor.numpy(), bins=bins, alpha=0.5, density=True, label="impostor pairs, originals")
    ax.set(xlabel="embedding distance", ylabel="density", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_unlinkability(mated: Tensor, non_mated: Tensor, path: Path, d_sys: float, bins: int = 100) -> None:
    """The two score distributions and the local measure D(s), as in Gomez-Barrero et al. (2018)."""
    centres, local = local_unlinkability(mated, non_mated, bins)
    half = float(centres[1] - centres[0]) / 2
    edges = np.linspace(float(centres[0]) - half, float(centres[-1]) + half, bins + 1)  # the bins of D(s)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.hist(mated.numpy(), bins=edges, alpha=0.5, density=True, label="mated (same person, G1 vs G2)")
    ax.hist(non_mated.numpy(), bins=edges, alpha=0.5, density=True, label="non-mated")
    ax.set(xlabel="score 1 / (1 + ||F(G1(a)) - F(G2(b))||)", ylabel="density", title=f"D_sys = {d_sys:.3f}")
    occupied = (np.histogram(mated.numpy(), edges)[0] + np.histogram(non_mated.numpy(), edges)[0]) > 0
    twin = ax.twinx()  # D(s) where a score fell; an empty bin has no likelihood ratio
    twin.plot(centres.numpy()[occupied], local.numpy()[occupied], color="black", lw=1.2, label="D(s)")
    twin.set(ylim=(0, 1.05), ylabel="D(s)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_insider(curves: dict[str, dict[int, float]], path: Path, title: str = "") -> None:
    """The insider's EER (estimate of F(x) from stored templates) against leaked pairs, one line per transform,
    with the 20% line a transform must stay above."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, curve in curves.items():
        counts = sorted(curve)
        ax.plot(counts, [100 * curve[n] for n in counts], marker="o", markersize=3, label=name)
    ax.axhline(20, color="black", linestyle="--", linewidth=0.8)
    ax.set(xscale="log", xlabel="leaked (photo, carrier) pairs", ylabel="insider's EER (%)", ylim=(0, 55))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
