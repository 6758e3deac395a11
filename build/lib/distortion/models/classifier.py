"""Digit classifiers used as stand-ins for a human reader (never as F, never inside G's loss)."""

from __future__ import annotations

from torch import Tensor, nn


class ConvClassifier(nn.Module):
    """Two 5x5 conv stages with max pooling and dropout, then a two-layer head.

    Args:
        in_channels: input channels.
        num_classes: number of classes (10 digits).
        width: channels of the first conv stage (the second has twice as many).
        dropout: dropout before the classifier head.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, 2 * width, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * width * 16, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` in ``[0, 1]`` -> ``(B, num_classes)`` logits."""
        return self.head(self.features(x))


class VGGClassifier(nn.Module):
    """A VGG-style classifier: two stages of two 3x3 conv + batch norm + ReLU, max pooling, linear head.

    A different architecture from :class:`ConvClassifier`, for a perceptual network P that must
    not share the evaluation reader's design.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 24) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_prev = in_channels
        for c in (width, 2 * width):
            for _ in range(2):
                layers += [nn.Conv2d(c_prev, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_prev = c
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2))
        self.head = nn.Linear(2 * width * 4, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` in ``[0, 1]`` -> ``(B, num_classes)`` logits."""
        return self.head(self.features(x).flatten(1))
