"""facenet-pytorch's InceptionResnetV1 behind the backbone interface: [0, 1] RGB -> 512-d embeddings.

Weights come from a local file (``weights_path``), from torch hub's cache, or are downloaded by
facenet-pytorch on machines with internet. Without any of those it raises, never running on
random weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from .base import FaceBackbone

__all__ = ["FacenetBackbone", "facenet_cache_path"]

_WEIGHT_FILES = {
    "vggface2": "20180402-114759-vggface2.pt",
    "casia-webface": "20180408-102900-casia-webface.pt",
}


def facenet_cache_path(pretrained: str) -> Path:
    """Where facenet-pytorch caches (and looks for) the weights of ``pretrained``."""
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(home).expanduser() / "checkpoints" / _WEIGHT_FILES[pretrained]


class FacenetBackbone(FaceBackbone):
    """InceptionResnetV1 on MTCNN-aligned 160x160 chips: ``(B, 3, 160, 160)`` in [0, 1] -> ``(B, 512)``.

    Preprocessing is facenet-pytorch's fixed standardisation ``(pixel - 127.5) / 128``; the
    embeddings are L2-normalised by the network.

    Args:
        pretrained: the training set of the weights, ``"vggface2"`` or ``"casia-webface"``.
        weights_path: a local state dict file (facenet-pytorch's ``.pt``); the classifier head
            (``logits.*``) is ignored.
        download: fetch the weights from facenet-pytorch's release page when not cached.
    """

    aligner = "facenet"
    input_size = 160
    embedding_dim = 512

    def __init__(self, pretrained: str = "vggface2", weights_path: str | Path | None = None, download: bool = True):
        super().__init__()
        from facenet_pytorch import InceptionResnetV1

        if pretrained not in _WEIGHT_FILES:
            raise ValueError(f"pretrained must be one of {sorted(_WEIGHT_FILES)}, got {pretrained!r}")
        self.net = InceptionResnetV1(pretrained=None, classify=False)
        path = Path(weights_path) if weights_path is not None else facenet_cache_path(pretrained)
        if weights_path is None and not path.is_file():
            if not download:
                raise FileNotFoundError(
                    f"no {pretrained} weights for InceptionResnetV1 at {path}; pass weights_path=<file> "
                    "or download=True on a machine with internet"
                )
            try:
                InceptionResnetV1(pretrained=pretrained)  # downloads into facenet_cache_path
            except OSError as error:
                raise RuntimeError(
                    f"could not download the {pretrained} weights of InceptionResnetV1 ({error}); "
                    f"place the file at {path} or pass weights_path=<file>"
                ) from error
        self.load_weights(path)

    def load_weights(self, path: str | Path) -> None:
        """Load a facenet-pytorch state dict, dropping its classifier head; strict otherwise."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"facenet weights file not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{path} is not an InceptionResnetV1 state dict: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        return self.net((x * 255.0 - 127.5) / 128.0)
