"""EmbeddingModule: trains the embedding network F with a triplet loss and in-batch mining."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distortion.data.batches import PairBatch, TripletBatch
from distortion.modules.base import TrainableModule, load_frozen, network_arguments
from distortion.objective.losses import mined_triplet_loss


class EmbeddingModule(TrainableModule):
    """Train F on triplets (:class:`~distortion.data.batches.TripletBatch`).

    Each anchor keeps its positive and is compared with every other-label embedding of the batch
    (anchors, positives and negatives alike): in-batch negative mining, see
    :func:`distortion.objective.losses.mined_triplet_loss`.

    Args:
        net: the embedding network F (unit-norm output).
        margin: triplet margin on squared distances.
        lr: Adam learning rate.
        weight_decay: L2 penalty on the weights.
    """

    def __init__(self, net: nn.Module, margin: float = 0.2, lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        if margin <= 0:
            raise ValueError(f"margin must be > 0, got {margin}")
        self.save_hyperparameters(ignore=network_arguments("net"))
        self.net = net
        self.margin = margin

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: TripletBatch, batch_idx: int) -> Tensor:
        emb = self.net(torch.cat([batch.anchor, batch.positive, batch.negative])).float()
        pool_labels = torch.cat([batch.label_a, batch.label_a, batch.label_n])
        emb_a, emb_p, _ = emb.chunk(3)
        loss = self.checked(mined_triplet_loss(emb_a, emb_p, batch.label_a, emb, pool_labels, self.margin))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _eval_step(self, batch: PairBatch) -> dict[str, Tensor]:
        emb_a, emb_b = self.net(torch.cat([batch.x_a, batch.x_b])).chunk(2)
        return {"x_a": batch.x_a, "y_a": batch.y_a, "same": batch.same, "emb_a": emb_a, "emb_b": emb_b}

    def validation_step(self, batch: PairBatch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch)

    def test_step(self, batch: PairBatch, batch_idx: int) -> dict[str, Tensor]:
        return self._eval_step(batch)


def load_embedding(spec: str) -> nn.Module:
    """A frozen F from an :class:`EmbeddingModule` checkpoint (a path ending in ``.ckpt``) or a registered
    face backbone name (``dlib``, ``facenet``)."""
    from distortion.backbones import create_backbone

    if spec.endswith(".ckpt"):
        return load_frozen(EmbeddingModule, spec, "net")
    return create_backbone(spec).eval().requires_grad_(False)
