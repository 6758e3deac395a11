"""Reader of dlib's binary serialization format for DNN models (``*.dat`` files).

dlib writes a network recursively: the loss layer, then the version integer of every nested
layer from the output to the input, then the input layer, then one record per layer from the
input to the output (its details followed by the training state dlib keeps beside it). This
module reads that stream into plain Python records; :mod:`.dlib_resnet` maps them onto a
``torch.nn.Module``. Format facts come from dlib's ``serialize.h``, ``cuda/tensor.h`` and
``dnn/{core,layers,input,loss}.h``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["DlibFormatError", "DlibLayer", "DlibNet", "DlibReader", "read_dlib_net"]

# dlib encodes inf/nan as a float whose exponent is one of these sentinel values.
_SPECIAL_EXPONENTS = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}


class DlibFormatError(ValueError):
    """The bytes are not the dlib model this reader expects; the message names the offset."""


@dataclass
class DlibLayer:
    """One computational layer record: dlib's layer name (e.g. ``con_4``) and its fields."""

    name: str
    fields: dict = field(default_factory=dict)


@dataclass
class DlibNet:
    """A parsed network: loss and input layer settings, then layers from input to output."""

    loss: DlibLayer
    input: DlibLayer
    layers: list[DlibLayer]
    num_tag_or_skip_layers: int


class DlibReader:
    """Reads dlib's primitive types from a byte string, tracking the offset for error messages."""

    def __init__(self, data: bytes, source: str = "<bytes>") -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.source = source

    def error(self, message: str) -> DlibFormatError:
        return DlibFormatError(f"{self.source}: {message} at byte {self.pos}")

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise self.error(f"file ends early: wanted {n} bytes, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def int(self) -> int:
        """Control byte (bit 7 = sign, low 4 bits = byte count n), then |value| in n bytes LE."""
        control = self.take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            self.pos -= 1
            raise self.error(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        """A float is an integer mantissa then an integer exponent: mantissa * 2**exponent."""
        mantissa, exponent = self.int(), self.int()
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        value = bytes(self.take(1))
        if value not in (b"0", b"1"):
            self.pos -= 1
            raise self.error(f"bad boolean {value!r}")
        return value == b"1"

    def string(self) -> str:
        length = self.int()
        return bytes(self.take(length)).decode("ascii", errors="replace")

    def peek_string(self) -> str | None:
        """The string at the current offset if one plausibly starts there, without consuming it."""
        start = self.pos
        try:
            length = self.int()
            if not 0 < length < 64:
                return None
            text = bytes(self.take(length))
            return text.decode("ascii") if text.isascii() and text.replace(b"_", b"").isalnum() else None
        except (DlibFormatError, UnicodeDecodeError):
            return None
        finally:
            self.pos = start

    def tensor(self) -> np.ndarray:
        """Version 2, num_samples, k, nr, nc, then raw little-endian float32: shape (n, k, nr, nc)."""
        version = self.int()
        if version != 2:
            raise self.error(f"unsupported tensor version {version}")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """An alias tensor (a view into a layer's params): version 1, then its shape (n, k, nr, nc)."""
        version = self.int()
        if version != 1:
            raise self.error(f"unsupported alias_tensor version {version}")
        return tuple(self.int() for _ in range(4))


def _pool(r: DlibReader) -> dict:
    return dict(nr=r.int(), nc=r.int(), stride_y=r.int(), stride_x=r.int(), padding_y=r.int(), padding_x=r.int())


def _multipliers(r: DlibReader) -> dict:
    return dict(
        learning_rate_multiplier=r.float(),
        weight_decay_multiplier=r.float(),
        bias_learning_rate_multiplier=r.float(),
        bias_weight_decay_multiplier=r.float(),
    )


def _con(r: DlibReader, version: int) -> dict:
    fields = dict(params=r.tensor(), num_filters=r.int(), nr=r.int(), nc=r.int())
    fields |= dict(stride_y=r.int(), stride_x=r.int(), padding_y=r.int(), padding_x=r.int())
    fields |= dict(filters=r.alias_tensor(), biases=r.alias_tensor()) | _multipliers(r)
    fields["use_bias"] = r.bool() if version >= 5 else True
    return fields


def _fc(r: DlibReader) -> dict:
    fields = dict(num_outputs=r.int(), num_inputs=r.int(), params=r.tensor())
    fields |= dict(weights=r.alias_tensor(), biases=r.alias_tensor(), bias_mode=r.int()) | _multipliers(r)
    return fields


def _affine(r: DlibReader) -> dict:
    return dict(params=r.tensor(), gamma=r.alias_tensor(), beta=r.alias_tensor(), mode=r.int())


# Layer details by the name dlib writes first; each reads the fields that follow the name.
_LAYER_READERS = {
    "con_4": lambda r: _con(r, 4),
    "con_5": lambda r: _con(r, 5),
    "fc_2": _fc,
    "affine_": _affine,
    "relu_": lambda r: {},
    "add_prev_": lambda r: {},
    "max_pool_2": _pool,
    "avg_pool_2": _pool,
}


def _read_layer(r: DlibReader) -> DlibLayer:
    name = r.string()
    if name not in _LAYER_READERS:
        r.pos -= len(name) + 2
        raise r.error(f"unsupported layer {name!r} (known: {sorted(_LAYER_READERS)})")
    return DlibLayer(name, _LAYER_READERS[name](r))


def _read_training_state(r: DlibReader, add_layer_version: int, on_input: bool) -> None:
    """Skip what add_layer stores beside a layer's details: flags and (empty) work tensors."""
    for _ in range(3):
        r.bool()
    tensors = 3 if on_input or add_layer_version >= 2 else 2  # x_grad, cached_output, params_grad/grad_final
    for _ in range(tensors):
        r.tensor()
    if on_input and add_layer_version >= 3:
        r.int()  # sample expansion factor


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib DNN ``.dat`` file whose loss is ``loss_metric`` and input an RGB image.

    Raises :class:`FileNotFoundError` for a missing file and :class:`DlibFormatError` (naming the
    byte offset) for anything this reader does not understand, including trailing bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dlib model file not found: {path}")
    r = DlibReader(path.read_bytes(), str(path))
    loss_version = r.int()
    if loss_version != 1:
        raise r.error(f"unsupported add_loss_layer version {loss_version}")
    loss_name = r.string()
    if loss_name != "loss_metric_2":
        raise r.error(f"expected loss layer 'loss_metric_2', found {loss_name!r}")
    loss = DlibLayer(loss_name, dict(margin=r.float(), distance_threshold=r.float()))

    versions = []
    while r.peek_string() is None:
        versions.append(r.int())
    input_name = r.string()
    if input_name != "input_rgb_image_sized":
        raise r.error(f"expected input layer 'input_rgb_image_sized', found {input_name!r}")
    means = (r.float(), r.float(), r.float())
    input_layer = DlibLayer(input_name, dict(mean_rgb=means, nr=r.int(), nc=r.int()))

    # versions run output -> input; the last belongs to the add_layer that holds the input layer.
    # Tag and skip layers (version 1 here) write nothing after their version.
    layers, tag_or_skip = [], 0
    for depth, version in enumerate(reversed(versions)):
        on_input = depth == 0
        if not on_input and version == 1:
            tag_or_skip += 1
            continue
        layers.append(_read_layer(r))
        _read_training_state(r, version, on_input)
    if not r.at_end():
        raise r.error(f"{len(r.data) - r.pos} unread bytes after the last layer")
    return DlibNet(loss, input_layer, layers, tag_or_skip)
