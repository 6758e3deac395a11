"""U-Net generator G: image in, image of the same shape out, values in ``[0, 1]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distortion.models.generator import Generator

_EPS = 1e-3  # logit(x) is clamped at logit(1e-3) = -6.9 so that black and white pixels stay finite


def _double_conv(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in (c_in, c_out):
        layers.append(nn.Conv2d(c, c_out, 3, padding=1, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(Generator):
    """U-Net with ``depth`` levels of two 3x3 convolutions; channels ``width * 2**level``.

    The encoder halves the resolution between levels (max pooling, ``ceil_mode`` so odd sizes work);
    the decoder upsamples (nearest) to the exact size of the skip connection, concatenates it and
    applies two convolutions. A 1x1 convolution and a sigmoid give the output image. With
    ``depth=3, width=64`` this is the paper's MNIST generator (64-128-256 channels).

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image; defaults to ``in_channels``.
        depth: number of resolution levels (>= 1).
        width: channels at the first level.
        norm: add batch normalisation after each convolution.
        residual: predict a change of ``x`` in logit space, ``sigmoid(logit(x) + head)``, rather than
            the image itself, so that G starts near the identity (where F still identifies every
            image) and the image loss moves it away gradually; needs ``out_channels == in_channels``.
        channels_last: keep weights and activations in channels-last memory format, which oneDNN's
            bfloat16 convolutions run fastest in on CPU (see ``make bench``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        depth: int = 3,
        width: int = 64,
        norm: bool = False,
        residual: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be >= 1, got depth={depth}, width={width}")
        if residual and out_channels not in (None, in_channels):
            raise ValueError(f"residual=True needs out_channels == in_channels, got {out_channels} != {in_channels}")
        self.residual = residual
        channels = [width * 2**i for i in range(depth)]
        self.down = nn.ModuleList()
        c_prev = in_channels
        for c in channels:
            self.down.append(_double_conv(c_prev, c, norm))
            c_prev = c
        self.up = nn.ModuleList(
            _double_conv(channels[i + 1] + channels[i], channels[i], norm) for i in reversed(range(depth - 1))
        )
        self.head = nn.Conv2d(channels[0], out_channels or in_channels, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def forward(self, x: Tensor, template: Tensor | None = None) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H, W)`` in ``[0, 1]``; the template is not read (G reads x)."""
        x = x.contiguous(memory_format=self.memory_format)
        base = torch.logit(x.float().clamp(_EPS, 1 - _EPS)) if self.residual else 0.0
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
        return torch.sigmoid(self.head(x) + base).contiguous()
