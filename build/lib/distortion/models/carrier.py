"""A generator that sees a photo only through its template: the carrier of F(x) and nothing else."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distortion.models.generator import Generator

__all__ = ["CarrierGenerator"]


def _up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1),
                         nn.ReLU(inplace=True))  # fmt: skip


class CarrierGenerator(Generator):
    """``G(x) = sigmoid(noise_scale * n + D(F(x), z))``: a decoder ``D`` of the embedding F(x) and a noise
    code ``z``, on a background of pixel noise ``n``; ``n`` and ``z`` are drawn afresh at every call.

    x enters only through F(x), so G(x) can reveal nothing about x that the template does not (data
    processing), and two enrolments of one photo give two different images. The decoder projects
    ``[F(x), z]`` to a ``width * 2**stages``-channel map at ``1 / 2**stages`` of the image size, then
    ``stages`` times doubles the size (nearest) and convolves (3x3, ReLU, halving the channels), and a
    3x3 convolution gives the pattern, resized to the image size (bilinear) when the sizes differ.
    Patterns at ``1 / upsample`` of the resolution (``upsample > 1``) survive JPEG and resizing better.

    Called like every :class:`~distortion.models.generator.Generator`, ``G(x, template)``; it reads only
    the template (``reads_image = False``), so it may draw a keyed ``T_k(F(x))`` as well as F(x).

    Args:
        embedding_dim: size of F's embedding (10 for the paper's MNIST MLP, 128 for dlib's ResNet).
        image_shape: ``(C, H, W)`` of the images to produce (F's input).
        noise_dim: size of the noise code ``z``.
        width: channels of the last decoder stage.
        stages: number of doubling stages (0: a linear map to the pattern, then one convolution).
        upsample: the decoder works at ``1 / upsample`` of the image size (1 = full resolution).
        noise_scale: standard deviation of the pixel noise in logit space (0 = no background noise).
    """

    reads_image = False

    def __init__(
        self,
        embedding_dim: int,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        noise_dim: int = 16,
        width: int = 32,
        stages: int = 2,
        upsample: int = 1,
        noise_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if min(embedding_dim, width, upsample) < 1 or min(stages, noise_dim, noise_scale) < 0:
            raise ValueError("embedding_dim, width and upsample must be >= 1; stages, noise_dim, noise_scale >= 0")
        self.image_shape, self.noise_dim, self.noise_scale = tuple(image_shape), noise_dim, noise_scale
        channels, height, width_px = image_shape
        scale = upsample * 2**stages
        self.start = (width * 2**stages, math.ceil(height / scale), math.ceil(width_px / scale))
        self.project = nn.Linear(embedding_dim + noise_dim, math.prod(self.start))
        self.blocks = nn.Sequential(*(_up_block(width * 2 ** (s + 1), width * 2**s) for s in reversed(range(stages))))
        self.head = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, x: Tensor, template: Tensor) -> Tensor:
        """Carriers ``(B, C, H, W)`` in ``[0, 1]`` of the ``(B, D)`` templates, with fresh noise; ``x`` is not read."""
        b = template.shape[0]
        z = torch.randn(b, self.noise_dim, device=template.device)
        h = F.relu(self.project(torch.cat([template.float(), z], 1))).view(b, *self.start)
        pattern = self.head(self.blocks(h))
        if pattern.shape[-2:] != self.image_shape[1:]:
            pattern = F.interpolate(pattern.float(), size=self.image_shape[1:], mode="bilinear", align_corners=False)
        noise = self.noise_scale * torch.randn(b, *self.image_shape, device=template.device)
        return torch.sigmoid(pattern.float() + noise)
