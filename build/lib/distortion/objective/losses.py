"""Training losses on embeddings and predictions as plain, batch-wise, differentiable functions.

Example:
    >>> a = torch.zeros(2, 3); b = torch.ones(2, 3)
    >>> hinge_loss(a, b, tau=1.0)
    tensor(2.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def uniform_prediction_loss(logits: Tensor) -> Tensor:
    """``KL(uniform || softmax(logits))`` per sample, ``(B, C) -> (B,)``: 0 when a classifier cannot tell.

    Used to make a perceptual network P unable to read G(x); equals ``-log C - mean_c log p_c``.
    """
    log_p = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)
    return -math.log(logits.shape[-1]) - log_p.mean(-1)


def squared_distance(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distance between embeddings: ``(B, D), (B, D) -> (B,)``."""
    return (a - b).pow(2).sum(-1)


def hinge_loss(emb_x: Tensor, emb_gx: Tensor, tau: float) -> Tensor:
    """The paper's embedding term ``mean(relu(||F(x) - F(G(x))||^2 - tau))``: free below ``tau``."""
    return F.relu(squared_distance(emb_x, emb_gx) - tau).mean()


def triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float) -> Tensor:
    """``mean(relu(||a - p||^2 - ||a - n||^2 + margin))`` over a batch of ``(B, D)`` triplets."""
    return F.relu(squared_distance(anchor, positive) - squared_distance(anchor, negative) + margin).mean()


def mined_triplet_loss(
    anchor: Tensor, positive: Tensor, labels: Tensor, pool: Tensor, pool_labels: Tensor, margin: float
) -> Tensor:
    """Triplet loss with in-batch negative mining.

    Each anchor keeps its own positive and is compared with every embedding of the pool whose
    label differs; :func:`triplet_loss` terms are averaged over the triplets that still violate the
    margin. Averaging over all violators (not only the hardest) does not collapse the embedding.

    Args:
        anchor, positive: ``(B, D)`` embeddings of anchors and their positives.
        labels: ``(B,)`` labels of the anchors.
        pool, pool_labels: ``(N, D)`` candidate negatives and their ``(N,)`` labels.
        margin: margin on squared distances.
    """
    d_ap = squared_distance(anchor, positive)[:, None]
    d_an = torch.cdist(anchor, pool).pow(2)
    negative = labels[:, None] != pool_labels[None, :]
    violation = F.relu(d_ap - d_an + margin) * negative
    return violation.sum() / (violation > 0).sum().clamp_min(1)
