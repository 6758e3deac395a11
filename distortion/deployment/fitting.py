"""Fitting a keyed transform on F's embeddings of training people: its mean and principal axes are public, fitted
once before a keyed carrier trains (:class:`~distortion.callbacks.KeyedDeployment`) or by ``fit-transform``."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from distortion.data.subsets import first_batches
from distortion.deployment.keyed_templates import TemplateTransform

__all__ = ["fit_on_photos"]


@torch.no_grad()
def fit_on_photos(
    transform: TemplateTransform, embedding: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], images: int
) -> TemplateTransform:
    """Fit ``transform`` on F of the first ``images`` photos of ``batches`` (``(x, labels)`` of training people, on
    F's device), check that F spans its axes, and leave it on F's device."""
    device = next(embedding.parameters()).device
    embeddings, labels = [], []
    for x, y in first_batches(batches, images):
        embeddings.append(embedding(x.to(device).float()).float().cpu())
        labels.append(y.cpu())
    transform.fit(torch.cat(embeddings)[:images], torch.cat(labels)[:images]).check_drawable()
    return transform.to(device)
