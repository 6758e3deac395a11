"""Scoring embeddings on LFW's protocol: View 1 (DevTest) and View 2 (10 folds).

- View 2 (``pairs.txt``): accuracy mean and std over the 10 folds, each with the threshold chosen on
  the other 9; EER, ROC AUC and TAR at FAR 1% and 0.1% over all 6,000 pairs.
- View 1 (``pairsDevTest.txt``): accuracy with the threshold chosen on ``pairsDevTrain.txt``; EER,
  AUROC, TAR at FAR over its 1,000 pairs.

:class:`LFWProtocol` reads the three pair lists once; a command then scores as many sets of
embeddings as it likes against them. A pair whose image could not be read scores as the least
alike (a rejection), and is counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from distortion.faces.lfw_pairs import VIEW_FILES, LFWPair, read_pairs
from distortion.metrics.verification import (
    accuracy_at_threshold,
    best_threshold,
    kfold_accuracy,
    pair_scores,
    view_metrics,
)

__all__ = ["ImageKey", "LFWProtocol", "first_people"]

ImageKey = tuple[str, int]


@dataclass(frozen=True)
class LFWProtocol:
    """LFW's pair lists, read once: ``view2`` (10 folds), ``dev_train`` and ``dev_test`` (one fold each)."""

    root: Path
    view2: list[list[LFWPair]]
    dev_train: list[list[LFWPair]]
    dev_test: list[list[LFWPair]]

    @classmethod
    def load(cls, root: str | Path) -> LFWProtocol:
        """Read the lists of the LFW folder ``root``; a missing list raises with its path."""
        root = Path(root)
        return cls(root, *(read_pairs(root / VIEW_FILES[view]) for view in ("view2", "dev_train", "dev_test")))

    def images(self) -> list[ImageKey]:
        """Every image named in View 2 and View 1 (DevTrain and DevTest), sorted."""
        folds = [*self.view2, *self.dev_train, *self.dev_test]
        return sorted({key for fold in folds for pair in fold for key in pair.images})

    def view2_images(self) -> set[ImageKey]:
        """The images of View 2's pairs (the test images of the distortion statistics)."""
        return {key for fold in self.view2 for pair in fold for key in pair.images}

    def report(
        self, enrol: Mapping[ImageKey, Tensor], probe: Mapping[ImageKey, Tensor] | None = None
    ) -> dict[str, dict[str, float]]:
        """View 2 and View 1 numbers for embeddings keyed by ``(name, number)``; ``probe`` defaults to
        ``enrol`` (pass, e.g., distorted enrolment images and original probes to score a deployment)."""
        probe = enrol if probe is None else probe
        scores, same, folds, missing = pair_table(self.view2, enrol, probe)
        accuracies = kfold_accuracy(scores, same, folds)
        report = {
            "view2": dict(
                accuracy_mean=float(accuracies.mean()), accuracy_std=float(accuracies.std(unbiased=False)),
                pairs=len(scores), pairs_missing=missing, **view_metrics(scores, same),
            )
        }  # fmt: skip
        train_scores, train_same, _, _ = pair_table(self.dev_train, enrol, probe)
        scores, same, _, missing = pair_table(self.dev_test, enrol, probe)
        threshold = best_threshold(train_scores, train_same)
        report["view1"] = dict(
            accuracy=accuracy_at_threshold(scores, same, threshold), pairs=len(scores), pairs_missing=missing,
            **view_metrics(scores, same),
        )  # fmt: skip
        return report


def pair_table(
    folds: list[list[LFWPair]], enrol: Mapping[ImageKey, Tensor], probe: Mapping[ImageKey, Tensor]
) -> tuple[Tensor, Tensor, Tensor, int]:
    """Scores, labels and fold numbers of every pair (first image from ``enrol``, second from ``probe``).

    Returns ``(scores, same, fold, missing)``; a pair with an image missing from either mapping
    scores 0 (least alike) and is counted in ``missing``.
    """
    scores, same, fold_ids, missing = [], [], [], 0
    for f, fold in enumerate(folds):
        for pair in fold:
            a, b = pair.images
            if a in enrol and b in probe:
                scores.append(pair_scores(enrol[a][None], probe[b][None])[0])
            else:
                scores.append(torch.zeros(()))
                missing += 1
            same.append(pair.same)
            fold_ids.append(f)
    return torch.stack(scores), torch.tensor(same), torch.tensor(fold_ids), missing


def first_people(root: Path, count: int, min_images: int = 2, per_person: int = 2) -> dict[str, list[Path]]:
    """The first ``count`` people of the LFW folder ``root`` (alphabetically) with at least ``min_images``
    photos, each with their first ``per_person`` photos: a small, fixed slice of real faces."""
    chosen: dict[str, list[Path]] = {}
    for folder in sorted(p for p in (root / "lfw-deepfunneled").iterdir() if p.is_dir()):
        images = sorted(folder.glob("*.jpg"))
        if len(images) >= min_images:
            chosen[folder.name] = images[:per_person]
        if len(chosen) == count:
            break
    return chosen
