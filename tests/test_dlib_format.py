"""dlib's serialization format: primitives on hand-made bytes, and the released face model parsed whole."""

from __future__ import annotations

import numpy as np
import pytest

from distortion.backbones.dlib_format import DlibFormatError, DlibReader, read_dlib_net
from distortion.backbones.dlib_resnet import DLIB_RESNET_FILE, dlib_model_path


def test_integers_floats_bools_strings() -> None:
    data = bytes([0x01, 0x00, 0x01, 0x96, 0x02, 0x00, 0x01, 0x81, 0x1C, 0x01, 0x10, 0x81, 0x04])
    data += b"10" + bytes([0x01, 0x05]) + b"relu_"
    r = DlibReader(data)
    assert [r.int(), r.int(), r.int(), r.int()] == [0, 150, 256, -28]
    assert r.float() == 1.0  # 16 * 2**-4
    assert (r.bool(), r.bool(), r.string()) == (True, False, "relu_")
    assert r.at_end()


def test_tensor_is_version_2_shape_then_little_endian_float32() -> None:
    values = np.arange(6, dtype="<f4")
    data = bytes([0x01, 0x02, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x01]) + values.tobytes()
    tensor = DlibReader(data).tensor()
    assert tensor.shape == (1, 2, 3, 1)
    np.testing.assert_array_equal(tensor.ravel(), values)


def test_errors_name_the_problem_and_offset() -> None:
    with pytest.raises(DlibFormatError, match="file ends early.*at byte 1"):
        DlibReader(bytes([0x02, 0x00])).int()
    with pytest.raises(DlibFormatError, match="bad boolean"):
        DlibReader(b"x").bool()
    with pytest.raises(DlibFormatError, match="unsupported tensor version 3"):
        DlibReader(bytes([0x01, 0x03])).tensor()


def test_truncated_or_foreign_files_are_refused(tmp_path) -> None:
    data = dlib_model_path(DLIB_RESNET_FILE).read_bytes()
    (tmp_path / "cut.dat").write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibFormatError, match="file ends early"):
        read_dlib_net(tmp_path / "cut.dat")
    (tmp_path / "extra.dat").write_bytes(data + b"\x00")
    with pytest.raises(DlibFormatError, match="1 unread bytes"):
        read_dlib_net(tmp_path / "extra.dat")
    (tmp_path / "other.dat").write_bytes(bytes([0x01, 0x01, 0x01, 0x03]) + b"abc")
    with pytest.raises(DlibFormatError, match="expected loss layer 'loss_metric_2'"):
        read_dlib_net(tmp_path / "other.dat")
    with pytest.raises(FileNotFoundError, match="missing.dat"):
        read_dlib_net(tmp_path / "missing.dat")


def test_released_face_model_parses_to_the_documented_network() -> None:
    net = read_dlib_net(dlib_model_path(DLIB_RESNET_FILE))
    assert net.loss.fields["distance_threshold"] == pytest.approx(0.6)
    assert net.input.fields["nr"] == net.input.fields["nc"] == 150
    assert net.input.fields["mean_rgb"] == pytest.approx((122.782, 117.001, 104.298), abs=1e-3)
    names = [layer.name for layer in net.layers]
    counts = {name: names.count(name) for name in set(names)}
    assert counts == {
        "con_4": 29,
        "affine_": 29,
        "relu_": 29,
        "add_prev_": 14,
        "avg_pool_2": 5,
        "max_pool_2": 1,
        "fc_2": 1,
    }
    assert net.num_tag_or_skip_layers == 22  # 14 residual tags + 4 x (second tag + skip) in downsampling blocks
    stem = net.layers[0].fields
    assert (stem["num_filters"], stem["nr"], stem["stride_y"], stem["padding_y"]) == (32, 7, 2, 0)
    fc = net.layers[-1].fields
    assert (fc["num_inputs"], fc["num_outputs"], fc["params"].size) == (256, 128, 256 * 128)
