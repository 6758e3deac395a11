"""Logs verification metrics (EER, ROC AUC, TAR at FAR) for the three ways a system compares images."""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryROC

from distortion.callbacks.run_dir import run_dir
from distortion.callbacks.stage_metrics import StageMetricsCallback
from distortion.metrics.verification import COMPARISONS, pair_scores, verification_metrics
from distortion.reporting.plots import plot_roc


class VerificationMetrics(StageMetricsCallback):
    """Scores every verification pair for each comparison whose embeddings the step returns (a keyed
    module's deployment: the carrier against the keyed probe ``probe_b``).

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
        for name, comparison in COMPARISONS.items():
            enrol, probe = comparison.sides(("emb_a", "emb_b"), ("emb_ga", "emb_gb"))
            if name == "deploy" and "probe_b" in outputs:  # a keyed store compares with T_k(F(probe))
                probe = "probe_b"
            if enrol in outputs and probe in outputs:
                self.metrics[name].update(pair_scores(outputs[enrol], outputs[probe]), outputs["same"].long())

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
            plot_roc(self.curves, directory / "roc.png")
