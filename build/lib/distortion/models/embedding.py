"""Embedding networks F for MNIST-sized images, with unit-norm output."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


class MLPEmbedding(nn.Module):
    """The paper's MLP: flatten -> linear(hidden) -> LeakyReLU -> linear(dim) -> L2 normalise.

    Args:
        image_shape: ``(C, H, W)`` of the input.
        hidden: width of the hidden layer (2048 in the paper).
        dim: embedding size (10 in the paper).
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), hidden: int = 2048, dim: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(image_shape), hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` in ``[0, 1]`` -> ``(B, dim)`` unit vectors."""
        return F.normalize(self.net(x), dim=-1)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ConvEmbedding(nn.Module):
    """A small CNN: three stages of two 3x3 conv blocks, 4x4 adaptive pooling, linear, L2 normalise.

    Works for any input size and channel count.

    Args:
        in_channels: input channels (1 for MNIST, 3 for colour).
        width: channels of the first stage; doubled at each later stage.
        dim: embedding size.
    """

    def __init__(self, in_channels: int = 1, width: int = 32, dim: int = 64) -> None:
        super().__init__()
        w = (width, 2 * width, 4 * width)
        self.features = nn.Sequential(
            _conv_block(in_channels, w[0]),
            _conv_block(w[0], w[0]),
            nn.MaxPool2d(2, ceil_mode=True),
            _conv_block(w[0], w[1]),
            _conv_block(w[1], w[1]),
            nn.MaxPool2d(2, ceil_mode=True),
            _conv_block(w[1], w[2]),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Linear(w[2] * 16, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` in ``[0, 1]`` -> ``(B, dim)`` unit vectors."""
        return F.normalize(self.head(self.features(x).flatten(1)), dim=-1)
