"""The operating threshold of a deployment: the score at FAR 0.1% of stored templates against the probes of
other people, both as the matcher compares them, on training people only. Every threshold the project
calibrates (the keyed carrier's checkpoint, ``fit-transform``'s keyed model, the keyed privacy report) is this one.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from distortion.data.subsets import first_batches
from distortion.deployment.distorter import Distorter
from distortion.deployment.keyed_templates import TemplateTransform
from distortion.deployment.keys import Key
from distortion.metrics.verification import FAR, calibrate_threshold

__all__ = ["calibrate_distorter", "operating_threshold"]


def operating_threshold(
    emb_stored: Tensor, emb_x: Tensor, labels: Tensor, transform: TemplateTransform | None = None,
    key: Key | None = None, far: float = FAR,
) -> Tensor:  # fmt: skip
    """The score at FAR ``far`` of templates of stored images ``emb_stored`` ``(N, D)`` against the probes made of
    F of the photos ``emb_x`` ``(N, D)`` of other people (``labels`` ``(N,)``); keyed (``transform`` and ``key``):
    probes are ``T_k(F(x))`` and both sides go where the matcher compares them."""
    if transform is not None:
        emb_stored, emb_x = transform.matched(emb_stored, key), transform.matched(transform(emb_x, key), key)
    return calibrate_threshold(emb_stored, emb_x, labels, far)


@torch.no_grad()
def calibrate_distorter(distorter: Distorter, batches: Iterable[tuple[Tensor, Tensor]], images: int) -> float:
    """:func:`operating_threshold` of what ``distorter`` stores for the first ``images`` photos of ``batches``
    (``(x, labels)`` of training people), under its own key."""
    stored, emb, labels = [], [], []
    device = next(distorter.embedding.parameters()).device
    for x, y in first_batches(batches, images):
        batch = distorter.embed(x.to(device).float())
        stored.append(batch.emb_stored)
        emb.append(batch.emb_x)
        labels.append(y.to(device))
    stored_all, emb_all, labels_all = (torch.cat(t)[:images] for t in (stored, emb, labels))
    return float(operating_threshold(stored_all, emb_all, labels_all, distorter.transform, distorter.key))
