"""The interface every face recognizer here shares."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

__all__ = ["FaceBackbone", "require_face_backbone"]


class FaceBackbone(nn.Module):
    """A pretrained face recognizer: ``(B, 3, S, S)`` RGB chips in ``[0, 1]`` -> ``(B, D)`` embeddings.

    Subclasses carry their preprocessing and say which alignment makes their chips (``aligner``, a key
    of :data:`distortion.faces.alignment.ALIGNERS`), the chip size ``input_size`` and ``embedding_dim``.
    A G trained through a ``FaceBackbone`` works on faces; any other F is an MNIST embedding net.
    """

    aligner: ClassVar[str]
    input_size: ClassVar[int]
    embedding_dim: ClassVar[int]


def require_face_backbone(embedding: nn.Module, what: str) -> FaceBackbone:
    """Return ``embedding`` if it is a face backbone, else raise saying that ``what`` needs faces."""
    if not isinstance(embedding, FaceBackbone):
        raise ValueError(f"{what} needs a face backbone as F; this F is {type(embedding).__name__}")
    return embedding
