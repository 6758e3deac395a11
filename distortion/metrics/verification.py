"""Verification metrics for pairs of embeddings: scores, EER, ROC AUC and TAR at a fixed FAR.

A comparison scores a pair by ``1 / (1 + ||a - b||)``: higher means more alike, and the score lies
in ``(0, 1]`` so torchmetrics uses it as is (it applies a sigmoid to scores outside ``[0, 1]``).
All metric states are concatenated across processes (``dist_reduce_fx="cat"``), so a run on
several processes scores all pairs, never a per-process subset.
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

import torch
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAUROC, BinaryEER, BinaryROC

T = TypeVar("T")
FAR = 1e-3  # a deployment's operating point: false accepts at 0.1%


class Comparison(NamedTuple):
    """How a system compares a pair: whether the enrolment and the probe are distorted images."""

    enrol_distorted: bool
    probe_distorted: bool
    title: str

    def sides(self, original: tuple[T, T], distorted: tuple[T, T]) -> tuple[T, T]:
        """The enrolment and the probe of this comparison, from ``(enrolment, probe)`` of originals and
        of distorted images (embeddings, mappings of them, or the keys that hold them)."""
        return (
            distorted[0] if self.enrol_distorted else original[0],
            distorted[1] if self.probe_distorted else original[1],
        )


# The three comparisons every report scores, by name.
COMPARISONS: dict[str, Comparison] = {
    "orig": Comparison(False, False, "original vs original"),  # F alone
    "deploy": Comparison(True, False, "distorted enrolment vs original probe"),  # the store holds only G(x)
    "distorted": Comparison(True, True, "distorted vs distorted"),
}


def pair_scores(emb_a: Tensor, emb_b: Tensor) -> Tensor:
    """Similarity scores ``1 / (1 + ||a - b||)`` of embedding pairs: ``(B, D), (B, D) -> (B,)``."""
    return 1.0 / (1.0 + (emb_a.float() - emb_b.float()).norm(dim=-1))


def accuracy_at_threshold(scores: Tensor, same: Tensor, threshold: float | Tensor) -> float:
    """Accuracy of deciding "same identity when score >= threshold" on pairs with labels ``same``."""
    return float(((scores.double() >= threshold) == same.bool()).double().mean())


def accept_rate(scores: Tensor, threshold: float | Tensor) -> float:
    """The share of ``scores`` at or above ``threshold``: accepted as the same identity."""
    return float((scores.double() >= threshold).double().mean())


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


def threshold_at_far(impostor_scores: Tensor, far: float) -> Tensor:
    """The lowest threshold at which "same person when score >= threshold" accepts at most a share
    ``far`` of the impostor scores: the operating point of a deployed system at that FAR."""
    if not 0.0 <= far < 1.0:
        raise ValueError(f"far must lie in [0, 1), got {far}")
    if impostor_scores.numel() == 0:
        raise ValueError("no impostor scores")
    ranked = torch.sort(impostor_scores.double().flatten(), descending=True).values
    allowed = int(far * len(ranked))  # impostors that may be accepted
    return torch.nextafter(ranked[allowed], ranked.new_tensor(float("inf")))


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


def view_metrics(scores: Tensor, same: Tensor) -> dict[str, float]:
    """EER, ROC AUC, TAR at FAR 1% and 0.1% of one set of scored pairs (torchmetrics)."""
    metrics = verification_metrics()
    metrics.update(scores.float(), same.long())
    return {k: float(v) for k, v in metrics.compute().items()}


def best_threshold(scores: Tensor, same: Tensor) -> Tensor:
    """The threshold maximising the accuracy of "same person when score >= threshold".

    Candidates lie midway between consecutive distinct scores (and beyond both ends), so the
    chosen threshold sits in the gap it separates rather than on a training score.

    Args:
        scores: ``(N,)`` pair scores, higher means more alike.
        same: ``(N,)`` bool or 0/1 labels.
    """
    s, order = torch.sort(scores.double())
    y = same[order].bool()
    n = len(s)
    # accepting s[i:] is right for the genuine pairs in s[i:] and the impostors in s[:i]
    genuine_accepted = torch.cat([torch.flip(torch.cumsum(torch.flip(y, [0]).double(), 0), [0]), s.new_zeros(1)])
    impostor_rejected = torch.cat([s.new_zeros(1), torch.cumsum((~y).double(), 0)])
    correct = genuine_accepted + impostor_rejected
    distinct = torch.ones(n + 1, dtype=torch.bool)
    distinct[1:n] = s[1:] != s[:-1]  # a cut between equal scores is not a threshold
    best = int(torch.argmax(torch.where(distinct, correct, correct.new_full((), -1.0))))
    if best == 0:
        return s[0] - 1.0
    if best == n:
        return s[-1] + 1.0
    return (s[best - 1] + s[best]) / 2


def kfold_accuracy(scores: Tensor, same: Tensor, folds: Tensor) -> Tensor:
    """LFW's protocol: per-fold accuracy with the threshold chosen on all the other folds.

    Args:
        scores: ``(N,)`` pair scores, higher means more alike.
        same: ``(N,)`` labels.
        folds: ``(N,)`` fold number of every pair.

    Returns:
        ``(K,)`` accuracies in [0, 1], one per fold in ascending fold order.
    """
    accuracies = []
    for fold in torch.unique(folds):
        test = folds == fold
        threshold = best_threshold(scores[~test], same[~test])
        accuracies.append(accuracy_at_threshold(scores[test], same[test], threshold))
    return torch.tensor(accuracies, dtype=torch.float64)


def cross_impostor_scores(
    enrolled: Tensor, probes: Tensor, enrolled_labels: Tensor, probe_labels: Tensor, max_rows: int = 2000
) -> Tensor:
    """Scores ``1 / (1 + ||a - b||)`` of every (enrolled, probe) pair of different people: ``(N, D), (M, D)``
    with their identity labels ``(N,), (M,)`` (at most ``max_rows`` of each) -> ``(P,)``. Every impostor
    pair a set of templates holds, not only a pair list's: a false accept rate of 0.1% then rests on
    hundreds of pairs, not on one."""
    enrolled, enrolled_labels = enrolled[:max_rows], enrolled_labels[:max_rows]
    probes, probe_labels = probes[:max_rows], probe_labels[:max_rows]
    scores = 1.0 / (1.0 + torch.cdist(enrolled.double(), probes.double()))
    return scores[enrolled_labels[:, None] != probe_labels[None, :]]


def calibrate_threshold(
    stored: Tensor, probes: Tensor, labels: Tensor, far: float = FAR, max_people: int = 2000
) -> Tensor:
    """The deployment's operating threshold: FAR ``far`` over every pair of ``stored`` templates and keyed
    ``probes`` of different people (training people; at most ``max_people`` rows)."""
    return threshold_at_far(cross_impostor_scores(stored, probes, labels, labels, max_people), far)
