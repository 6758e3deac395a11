"""Logs verification metrics (EER, ROC AUC, TAR at FAR) for the three ways a system compares images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torchmetrics import MetricCollection  # noqa: E402
from torchmetrics.classification import BinaryROC  # noqa: E402

from callbacks.run_dir import run_dir  # noqa: E402
from callbacks.stage_metrics import StageMetricsCallback
from distortion.verification import pair_scores, verification_metrics  # noqa: E402

COMPARISONS = {
    "orig": ("emb_a", "emb_b"),  # F alone: original enrolment, original probe
    "deploy": ("emb_ga", "emb_b"),  # the store holds only G(x); probes are fresh originals
    "distorted": ("emb_ga", "emb_gb"),  # both sides distorted
}
TITLES = {
    "orig": "original vs original",
    "deploy": "distorted enrolment vs original probe",
    "distorted": "distorted vs distorted",
}


class VerificationMetrics(StageMetricsCallback):
    """Scores every verification pair for each comparison whose embeddings the step returns.

    Logs ``<stage>/<comparison>/{eer,auroc,tar_far_1e-2,tar_far_1e-3}``; the states are concatenated
    over processes, so a multi-process run scores all pairs. After testing, writes ``roc.png``.
    """

    def __init__(self) -> None:
        self.metrics = nn.ModuleDict({name: self._collection() for name in COMPARISONS})
        self.curves: dict[str, tuple] = {}

    @staticmethod
    def _collection() -> MetricCollection:
        collection = verification_metrics()
        collection.add_metrics({"roc": BinaryROC(thresholds=None)})
        return collection

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.metrics.to(pl_module.device)

    def update(self, outputs: dict[str, Any]) -> None:
        for name, (a, b) in COMPARISONS.items():
            if a in outputs and b in outputs:
                self.metrics[name].update(pair_scores(outputs[a], outputs[b]), outputs["same"].long())

    def log_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for name, collection in self.metrics.items():
            if not collection["eer"].update_count:
                continue
            values = collection.compute()
            fpr, tpr, _ = values.pop("roc")
            self.curves[name] = (fpr.cpu(), tpr.cpu())
            for key, value in values.items():
                pl_module.log(f"{stage}/{name}/{key}", value)
            collection.reset()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        directory = run_dir(trainer)
        if trainer.is_global_zero and self.curves and directory is not None:
            self.plot_roc(directory / "roc.png")

    def plot_roc(self, path: Path) -> None:
        """Plot TAR against FAR (log scale) for every comparison scored in the last epoch."""
        plot_roc(self.curves, path)


def plot_roc(curves: dict[str, tuple[Tensor, Tensor]], path: Path, min_far: float = 1e-4, title: str = "") -> None:
    """Save TAR against FAR (log scale) of each comparison's ``(fpr, tpr)`` curve, labelled by :data:`TITLES`."""
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    for name, (fpr, tpr) in curves.items():
        ax.plot(fpr.clamp_min(1e-5).numpy(), tpr.numpy(), label=TITLES[name])
    ax.set(xscale="log", xlim=(min_far, 1), ylim=(0, 1.01), xlabel="false accept rate", ylabel="true accept rate")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
