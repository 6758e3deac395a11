"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as a torch module.

The network of dlib's ``dnn_face_recognition_ex.cpp``: a 7x7/2 convolution, then 14 residual
blocks in stages of 32, 64, 128 and 256 channels, a global average pool and a 256 -> 128 linear
layer without bias. Batch norm was folded into per-channel ``affine`` layers before release.
Input: RGB 150x150 face chips aligned by :func:`distortion.faces.alignment.dlib_face_chip`; output: a
128-d embedding, same person when the Euclidean distance is below 0.6. LFW accuracy 99.38% as
reported by dlib.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import FaceBackbone
from .dlib_format import DlibLayer, DlibNet, read_dlib_net

__all__ = ["DlibResNet", "dlib_model_path", "zero_fill_add"]

DLIB_RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"


def dlib_model_path(filename: str) -> Path:
    """Path of a model file shipped in the PyPI package ``face-recognition-models``.

    The package is located with importlib without importing it (its ``__init__`` imports
    ``pkg_resources``, which current setuptools no longer provides).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{filename} comes with the package 'face-recognition-models', which is not installed: "
            "pip install face-recognition-models"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise FileNotFoundError(f"{filename} is missing from the face-recognition-models install: {path}")
    return path


def zero_fill_add(a: Tensor, b: Tensor) -> Tensor:
    """dlib's ``add_prev``: sum of two (B, C, H, W) tensors, the smaller zero-filled at the end."""
    if a.shape == b.shape:
        return a + b
    shape = [max(sa, sb) for sa, sb in zip(a.shape, b.shape)]

    def fill(t: Tensor) -> Tensor:
        pad = []
        for dim in (3, 2, 1):
            pad += [0, shape[dim] - t.shape[dim]]
        return F.pad(t, pad)

    return fill(a) + fill(b)


class Affine(nn.Module):
    """Per-channel scale and shift: dlib's ``affine`` layer (a folded batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.bias.view(1, -1, 1, 1), x, self.weight.view(1, -1, 1, 1))


def _conv(c_in: int, c_out: int, k: int, stride: int) -> nn.Conv2d:
    # dlib pads k // 2 when the stride is 1 and 0 otherwise.
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2 if stride == 1 else 0)


class ResidualBlock(nn.Module):
    """relu(block(x) + shortcut(x)); a downsampling block shortcuts through a 2x2/2 average pool."""

    def __init__(self, c_in: int, c_out: int, downsample: bool) -> None:
        super().__init__()
        self.downsample = downsample
        stride = 2 if downsample else 1
        self.conv1, self.affine1 = _conv(c_in, c_out, 3, stride), Affine(c_out)
        self.conv2, self.affine2 = _conv(c_out, c_out, 3, 1), Affine(c_out)

    def forward(self, x: Tensor) -> Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.downsample else x
        return F.relu(zero_fill_add(y, shortcut))

    def dlib_layers(self) -> list[tuple[str, nn.Module | None]]:
        body = [("con_4", self.conv1), ("affine_", self.affine1), ("relu_", None)]
        body += [("con_4", self.conv2), ("affine_", self.affine2)]
        tail = [("add_prev_", None), ("relu_", None)]
        return body + ([("avg_pool_2", None)] if self.downsample else []) + tail


# dlib's per-channel input means (the released file carries them; these are for random weights)
_DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
# (channels, blocks, first block downsamples) per stage, input to output: the last stage is a
# single downsampling block.
_STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class DlibResNet(FaceBackbone):
    """dlib's face ResNet: (B, 3, 150, 150) RGB in [0, 1] -> (B, 128) embeddings (not normalised).

    Preprocessing travels with the weights: pixels are scaled to 0..255 and dlib's per-channel
    mean is subtracted before dividing by 256, exactly as ``input_rgb_image_sized`` does.

    Args:
        pretrained: load dlib's released weights (``pretrained=False`` gives random weights,
            for tests of shapes and gradients only).
        weights_path: a dlib ``.dat`` file; default: the one in ``face-recognition-models``.
    """

    aligner = "dlib"
    input_size = 150
    embedding_dim = 128
    same_person_distance = 0.6

    def __init__(self, pretrained: bool = True, weights_path: str | Path | None = None) -> None:
        super().__init__()
        self.register_buffer("mean_rgb", torch.tensor(_DLIB_MEAN_RGB).view(1, 3, 1, 1), persistent=False)
        self.stem_conv, self.stem_affine = _conv(3, 32, 7, 2), Affine(32)
        blocks, c_in = [], 32
        for channels, count, down in _STAGES:
            for i in range(count):
                blocks.append(ResidualBlock(c_in, channels, downsample=down and i == 0))
                c_in = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, self.embedding_dim, bias=False)
        if pretrained:
            path = weights_path if weights_path is not None else dlib_model_path(DLIB_RESNET_FILE)
            self.load_dlib(read_dlib_net(path))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        x = (x * 255.0 - self.mean_rgb) / 256.0
        x = F.max_pool2d(F.relu(self.stem_affine(self.stem_conv(x))), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    def dlib_layers(self) -> list[tuple[str, nn.Module | None]]:
        """Layers in dlib's record order (input to output), with the module holding their weights."""
        layers = [("con_4", self.stem_conv), ("affine_", self.stem_affine), ("relu_", None), ("max_pool_2", None)]
        for block in self.blocks:
            layers += block.dlib_layers()
        return layers + [("avg_pool_2", None), ("fc_2", self.fc)]

    @torch.no_grad()
    def load_dlib(self, net: DlibNet) -> None:
        """Copy a parsed dlib network's parameters, checking the layer sequence and every shape."""
        expected = self.dlib_layers()
        found = [layer.name for layer in net.layers]
        if found != [name for name, _ in expected]:
            raise ValueError(f"the dlib file's layers do not match {type(self).__name__}: {found}")
        size = net.input.fields["nr"], net.input.fields["nc"]
        if size != (self.input_size, self.input_size):
            raise ValueError(f"the dlib file expects {size} inputs, this network {self.input_size}")
        self.mean_rgb.copy_(torch.tensor(net.input.fields["mean_rgb"]).view(1, 3, 1, 1))
        for layer, (_, module) in zip(net.layers, expected):
            if isinstance(module, nn.Conv2d):
                _load_conv(module, layer)
            elif isinstance(module, Affine):
                _load_affine(module, layer)
            elif isinstance(module, nn.Linear):
                _load_fc(module, layer)
            elif layer.name in ("max_pool_2", "avg_pool_2"):
                _check_pool(layer)


def _load_conv(conv: nn.Conv2d, layer: DlibLayer) -> None:
    f = layer.fields
    geometry = (f["num_filters"], f["nr"], f["nc"], f["stride_y"], f["stride_x"], f["padding_y"], f["padding_x"])
    ours = (conv.out_channels, *conv.kernel_size, *conv.stride, *conv.padding)
    if geometry != ours or not f["use_bias"]:
        raise ValueError(f"convolution mismatch: dlib {geometry}, ours {ours}")
    params = torch.from_numpy(f["params"]).flatten()
    n_weight = conv.weight.numel()
    if params.numel() != n_weight + conv.out_channels:
        raise ValueError(f"convolution params: {params.numel()} values for weight {tuple(conv.weight.shape)} + bias")
    conv.weight.copy_(params[:n_weight].view_as(conv.weight))
    conv.bias.copy_(params[n_weight:])


def _load_affine(affine: Affine, layer: DlibLayer) -> None:
    if layer.fields["mode"] != 0:
        raise ValueError("only convolutional-mode affine layers are supported")
    params = torch.from_numpy(layer.fields["params"]).flatten()
    c = affine.weight.numel()
    if params.numel() != 2 * c:
        raise ValueError(f"affine params: {params.numel()} values for {c} channels")
    affine.weight.copy_(params[:c])
    affine.bias.copy_(params[c:])


def _load_fc(fc: nn.Linear, layer: DlibLayer) -> None:
    f = layer.fields
    if (f["num_inputs"], f["num_outputs"]) != (fc.in_features, fc.out_features) or fc.bias is not None:
        raise ValueError(f"fc mismatch: dlib {f['num_inputs']}->{f['num_outputs']}, ours {fc}")
    # dlib stores the weights as a (num_inputs, num_outputs) matrix and computes x @ W.
    fc.weight.copy_(torch.from_numpy(f["params"]).view(fc.in_features, fc.out_features).T)


def _check_pool(layer: DlibLayer) -> None:
    f = layer.fields
    geometry = (f["nr"], f["nc"], f["stride_y"], f["stride_x"], f["padding_y"], f["padding_x"])
    if geometry not in ((3, 3, 2, 2, 0, 0), (2, 2, 2, 2, 0, 0), (0, 0, 1, 1, 0, 0)):
        raise ValueError(f"unexpected pooling geometry {geometry}")
