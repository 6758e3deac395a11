"""What storing an image does to it, exactly (for evaluation) and differentiably (for training).

A deployment keeps the distorted image as a file: 8-bit PNG (lossless on 8-bit levels), JPEG at
some quality, or a smaller copy. :func:`store` is the exact round trip through PIL's encoders;
:func:`simulate_storage` a random, differentiable stand-in for training a generator (or refining an
image) that must survive it: straight-through 8-bit rounding, kornia's differentiable JPEG, and a
down- and up-sampling.

Formats are named ``none``, ``png``, ``jpeg<q>`` (quality 1-100, e.g. ``jpeg75``) and
``resize<s>`` (a copy at ``s`` times the size, 0 < s < 1, stored as PNG and brought back to the
size F takes, e.g. ``resize0.8``).
"""

from __future__ import annotations

import io
import re

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from distortion.imaging.image_io import chips_to_tensor, tensor_to_chips

__all__ = ["check_storage", "simulate_storage", "store"]

_FORMAT = re.compile(r"^(none|png|jpeg(\d{1,3})|resize(0?\.\d+))$")


def check_storage(name: str) -> str:
    """Return ``name`` if it names a storage format, else raise with the accepted names."""
    match = _FORMAT.match(name)
    if not match or (match.group(2) and not 1 <= int(match.group(2)) <= 100):
        raise ValueError(f"unknown storage {name!r}: use none, png, jpeg<quality> (jpeg75), resize<s> (resize0.8)")
    return name


def _encode(chip: np.ndarray, format: str, **options) -> np.ndarray:
    image = Image.fromarray(chip[..., 0] if chip.shape[-1] == 1 else chip)
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        array = np.asarray(decoded.convert(image.mode))
    return array[..., None] if array.ndim == 2 else array


@torch.no_grad()
def store(images: Tensor, storage: str) -> Tensor:
    """``images`` ``(B, C, H, W)`` in ``[0, 1]`` (C = 1 or 3) as they come back from ``storage``: same
    shape, device and float dtype, values on 8-bit levels (``none`` returns them unchanged)."""
    match = _FORMAT.match(check_storage(storage))
    if storage == "none":
        return images
    chips = tensor_to_chips(images)
    if match.group(2):
        stored = [_encode(chip, "JPEG", quality=int(match.group(2))) for chip in chips]
    elif match.group(3):
        h, w = chips.shape[1:3]
        scale = float(match.group(3))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        smaller = [np.asarray(Image.fromarray(c.squeeze(-1) if c.shape[-1] == 1 else c).resize(size, Image.BICUBIC))
                   for c in chips]  # fmt: skip
        small = chips_to_tensor(np.stack([s[..., None] if s.ndim == 2 else s for s in smaller]))
        back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        return chips_to_tensor(tensor_to_chips(back)).to(images.device, images.dtype)
    else:
        stored = [_encode(chip, "PNG") for chip in chips]
    return chips_to_tensor(np.stack(stored)).to(images.device, images.dtype)


def _quantize(x: Tensor) -> Tensor:
    """8-bit rounding with the identity as its gradient (straight-through)."""
    return x + (torch.round(x * 255) / 255 - x).detach()


def _jpeg(x: Tensor, quality: Tensor) -> Tensor:
    rgb = x if x.shape[1] == 3 else x.expand(-1, 3, -1, -1)
    out = kornia.enhance.jpeg_codec_differentiable(rgb.float(), quality)
    return out if x.shape[1] == 3 else out.mean(1, keepdim=True)


def _resize(x: Tensor, scale: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    small = F.interpolate(x, scale_factor=float(scale), mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def simulate_storage(images: Tensor, min_quality: float = 70.0, min_scale: float = 0.75) -> Tensor:
    """A random, differentiable storage round trip for each image of ``(B, C, H, W)`` in ``[0, 1]``:
    a quarter each keep the image, are rounded to 8 bits, JPEG-coded at a quality drawn from
    ``[min_quality, 95]``, or resized by a scale drawn from ``[min_scale, 0.95]`` and back; all but
    the first are rounded to 8 bits at the end. Gradients flow to ``images`` through every branch."""
    b = images.shape[0]
    x = images.float()
    quality = torch.empty(b, device=x.device).uniform_(min_quality, 95.0)
    scale = torch.empty(1).uniform_(min_scale, 0.95)
    variants = torch.stack([x, _quantize(x), _quantize(_jpeg(x, quality).clamp(0, 1)), _quantize(_resize(x, scale))])
    choice = torch.randint(0, 4, (b,), device=x.device)
    return variants[choice, torch.arange(b, device=x.device)]
