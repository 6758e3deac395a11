"""Pretrained face recognizers behind one interface: ``(B, 3, S, S)`` RGB in [0, 1] -> ``(B, D)``.

Each backbone carries its preprocessing, its chip size (``input_size``) and the name of the
alignment it expects (``aligner``, a key of :data:`distortion.faces.alignment.ALIGNERS`).
"""

from __future__ import annotations

from .base import FaceBackbone, require_face_backbone
from .dlib_resnet import DlibResNet
from .facenet import FacenetBackbone

__all__ = ["BACKBONES", "DlibResNet", "FaceBackbone", "FacenetBackbone", "create_backbone", "require_face_backbone"]

BACKBONES = {
    "dlib": DlibResNet,
    "facenet": FacenetBackbone,
}


def create_backbone(name: str, **kwargs) -> FaceBackbone:
    """Build a registered backbone by name, e.g. ``create_backbone("facenet", pretrained="casia-webface")``."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)
