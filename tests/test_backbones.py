"""Face backbones: the dlib ResNet port against dlib itself on real LFW chips, and the facenet wrapper."""

from __future__ import annotations

import dlib
import numpy as np
import pytest
import torch

from distortion.backbones import BACKBONES, DlibResNet, FacenetBackbone, create_backbone
from distortion.backbones.dlib_resnet import DLIB_RESNET_FILE, dlib_model_path, zero_fill_add
from distortion.faces.alignment import DlibAligner, read_rgb
from tests.lfw_fixtures import people_with_images


@pytest.fixture(scope="module")
def lfw_chips() -> np.ndarray:
    """60 real LFW face chips (30 people x 2 images) aligned the way dlib aligns them."""
    aligner = DlibAligner()
    paths = [p for images in people_with_images(30).values() for p in images]
    return np.stack([aligner(read_rgb(p)[0]).chip for p in paths])


@pytest.fixture(scope="module")
def dlib_resnet() -> DlibResNet:
    return DlibResNet().eval()


def test_port_matches_dlib_compute_face_descriptor_on_60_lfw_chips(lfw_chips, dlib_resnet) -> None:
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_path(DLIB_RESNET_FILE)))
    theirs = np.stack([np.asarray(recognizer.compute_face_descriptor(chip)) for chip in lfw_chips])
    x = torch.from_numpy(lfw_chips).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        ours = dlib_resnet(x).numpy()
    assert len(lfw_chips) >= 50
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    # and the embeddings mean something: the two images of a person are closer than dlib's 0.6
    same = np.linalg.norm(ours[0::2] - ours[1::2], axis=1)
    assert (same < 0.6).mean() > 0.9


def test_gradients_reach_the_input(lfw_chips, dlib_resnet) -> None:
    x = (torch.from_numpy(lfw_chips[:4]).permute(0, 3, 1, 2).float() / 255).requires_grad_(True)
    target = dlib_resnet(x.detach().flip(0)).detach()
    ((dlib_resnet(x) - target) ** 2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_architecture_and_parameter_count() -> None:
    model = DlibResNet(pretrained=False)
    assert sum(p.numel() for p in model.parameters()) == 5_614_592  # convolutions, affines and fc
    assert model(torch.rand(2, 3, 150, 150)).shape == (2, 128)
    with pytest.raises(ValueError, match=r"expected \(B, 3, H, W\)"):
        model(torch.rand(2, 1, 150, 150))


def test_zero_fill_add_pads_the_smaller_tensor_at_the_end() -> None:
    a, b = torch.ones(1, 2, 3, 3), torch.full((1, 4, 4, 4), 2.0)
    out = zero_fill_add(a, b)
    assert out.shape == (1, 4, 4, 4)
    assert (out[:, :2, :3, :3] == 3).all() and (out[:, 2:] == 2).all() and (out[:, :, 3] == 2).all()


def test_missing_weights_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.dat"):
        DlibResNet(weights_path=tmp_path / "nothing.dat")


def test_registry_names_and_unknown_backbone() -> None:
    assert set(BACKBONES) == {"dlib", "facenet"}
    with pytest.raises(ValueError, match="unknown backbone 'arcface'; known: \\['dlib', 'facenet'\\]"):
        create_backbone("arcface")


def test_facenet_without_weights_fails_clearly(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pass weights_path"):
        FacenetBackbone(download=False)
    with pytest.raises(ValueError, match="pretrained must be one of"):
        FacenetBackbone(pretrained="imagenet", download=False)


def test_facenet_loads_a_local_state_dict(tmp_path) -> None:
    from facenet_pytorch import InceptionResnetV1

    source = InceptionResnetV1(pretrained=None, classify=True, num_classes=7).eval()
    torch.save(source.state_dict(), tmp_path / "weights.pt")  # with a classifier head, as released files have
    model = FacenetBackbone(weights_path=tmp_path / "weights.pt").eval()
    for (name, ours), theirs in zip(model.net.state_dict().items(), source.state_dict().values()):
        assert torch.equal(ours, theirs), name
    x = torch.rand(2, 3, 160, 160)
    with torch.no_grad():
        emb = model(x)
    assert emb.shape == (2, 512)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="not an InceptionResnetV1 state dict"):
        FacenetBackbone(weights_path=tmp_path / "wrong.pt")
