"""Open-set 1:N identification (as in LFW's BLUFR protocol): rank-1 and the detection-and-identification
rate (DIR) at a false-positive identification rate (FPIR).

A gallery holds one template per enrolled person; mated probes are other images of enrolled people,
non-mated probes images of people who are not enrolled. For a probe the system returns the best-scoring
gallery entry and accepts it when its score reaches a threshold:

- rank-1: the share of mated probes whose best entry is their own person (no threshold);
- FPIR(t): the share of non-mated probes whose best score is >= t;
- DIR(t): the share of mated probes whose best entry is their own person with a score >= t;
  reported at the threshold where FPIR is at most the target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["open_set_metrics", "open_set_rates", "open_set_split"]


def open_set_split(
    names: Sequence[str], enrolled_share: float = 0.5, seed: int = 0
) -> tuple[list[int], list[int], list[int]]:
    """Indices ``(gallery, mated, non_mated)`` into ``names`` (one image's person each): a seeded share of the
    people with >= 2 images is enrolled with one image, their other images are mated probes; every image
    of everyone else is a non-mated probe."""
    by_person: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_person.setdefault(name, []).append(i)
    rng = np.random.default_rng(seed)
    repeated = sorted(p for p, images in by_person.items() if len(images) >= 2)
    enrolled = set(rng.permutation(repeated)[: round(enrolled_share * len(repeated))].tolist())
    gallery, mated, non_mated = [], [], []
    for person, images in sorted(by_person.items()):
        if person in enrolled:
            gallery.append(images[0])
            mated += images[1:]
        else:
            non_mated += images
    return gallery, mated, non_mated


def _best(gallery: Tensor, probes: Tensor) -> tuple[Tensor, Tensor]:
    best_scores, best_index = [], []
    for block in probes.split(1024):
        scores = 1.0 / (1.0 + torch.cdist(block.double(), gallery.double()))
        values, index = scores.max(1)
        best_scores.append(values)
        best_index.append(index)
    return torch.cat(best_scores), torch.cat(best_index)


def open_set_rates(
    mated_scores: Tensor, mated_correct: Tensor, non_mated_scores: Tensor, fpir: float = 0.01
) -> dict[str, float]:
    """Rank-1 and DIR at FPIR ``fpir`` from each probe's best gallery score (``mated_correct``: whether a mated
    probe's best entry is its own person); a probe the system could not read scores ``-inf``."""
    ranked = torch.sort(non_mated_scores.double(), descending=True).values
    allowed = int(fpir * len(ranked))  # non-mated probes that may be accepted
    threshold = torch.nextafter(ranked[allowed], ranked.new_tensor(float("inf"))) if allowed < len(ranked) else 0.0
    return {
        "rank1": float(mated_correct.double().mean()),
        f"dir_at_fpir_{fpir:g}": float((mated_correct & (mated_scores.double() >= threshold)).double().mean()),
        "threshold": float(threshold),
        "fpir": float((non_mated_scores.double() >= threshold).double().mean()),
    }


def open_set_metrics(
    gallery: Tensor, gallery_ids: Sequence[str], mated: Tensor, mated_ids: Sequence[str], non_mated: Tensor,
    fpir: float = 0.01,
) -> dict[str, float]:  # fmt: skip
    """Rank-1 and DIR at FPIR ``fpir`` (scores ``1 / (1 + distance)``) for gallery and probe templates."""
    mated_scores, mated_index = _best(gallery, mated)
    non_mated_scores, _ = _best(gallery, non_mated)
    correct = torch.tensor([gallery_ids[int(i)] == p for i, p in zip(mated_index, mated_ids)])
    return open_set_rates(mated_scores, correct, non_mated_scores, fpir) | {
        "gallery": len(gallery_ids), "mated_probes": len(mated_ids), "non_mated_probes": len(non_mated),
    }  # fmt: skip
