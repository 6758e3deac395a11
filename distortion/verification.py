"""Verification metrics for pairs of embeddings: scores, EER, ROC AUC and TAR at a fixed FAR.

A comparison scores a pair by ``1 / (1 + ||a - b||)``: higher means more alike, and the score lies
in ``(0, 1]`` so torchmetrics uses it as is (it applies a sigmoid to scores outside ``[0, 1]``).
All metric states are concatenated across processes (``dist_reduce_fx="cat"``), so a run on
several processes scores all pairs, never a per-process subset.
"""

from __future__ import annotations

from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAUROC, BinaryEER, BinaryROC


def pair_scores(emb_a: Tensor, emb_b: Tensor) -> Tensor:
    """Similarity scores ``1 / (1 + ||a - b||)`` of embedding pairs: ``(B, D), (B, D) -> (B,)``."""
    return 1.0 / (1.0 + (emb_a.float() - emb_b.float()).norm(dim=-1))


def tar_at_far(fpr: Tensor, tpr: Tensor, far: float) -> Tensor:
    """True accept rate at the largest threshold whose false accept rate is at most ``far``."""
    allowed = fpr <= far
    return tpr[allowed].max() if allowed.any() else tpr.new_zeros(())


class BinaryTARAtFAR(BinaryROC):
    """True accept rate at a fixed false accept rate, computed from the exact ROC curve."""

    def __init__(self, far: float, **kwargs) -> None:
        if not 0.0 < far < 1.0:
            raise ValueError(f"far must lie in (0, 1), got {far}")
        super().__init__(thresholds=None, **kwargs)
        self.far = far

    def compute(self) -> Tensor:
        fpr, tpr, _ = super().compute()
        return tar_at_far(fpr, tpr, self.far)


def verification_metrics() -> MetricCollection:
    """EER, ROC AUC and TAR at FAR 1% and 0.1% over one set of pairs; the states are shared."""
    return MetricCollection(
        {
            "eer": BinaryEER(thresholds=None),
            "auroc": BinaryAUROC(thresholds=None),
            "tar_far_1e-2": BinaryTARAtFAR(0.01),
            "tar_far_1e-3": BinaryTARAtFAR(0.001),
        },
        compute_groups=[["eer", "auroc", "tar_far_1e-2", "tar_far_1e-3"]],
    )
