"""The evaluation core: the device reaches every network and tensor, faces are counted per detector."""

from __future__ import annotations

import pytest
import torch

from distortion.deployment.distorter import Distorter, embed_batches
from distortion.faces.detection import FaceDetectionRates, FaceDetectors
from distortion.models import ConvEmbedding, UNet
from distortion.runtime import Timer, place, resolve_device


def test_resolve_device() -> None:
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no GPU"):
            resolve_device("cuda")


def test_embed_batches_runs_every_network_on_the_chosen_device() -> None:
    """On the 'meta' device (shapes without numbers) a network or tensor left behind on the CPU fails
    with a device mismatch, as it would on a GPU."""
    embedding, generator = ConvEmbedding(width=4, dim=8), UNet(1, depth=2, width=4)
    device = torch.device("meta")
    place(device, embedding, generator)
    seen: set[torch.device] = set()
    for model in (embedding, generator):
        model.register_forward_pre_hook(lambda module, args: seen.update(a.device for a in args))
    batches = [torch.rand(4, 1, 28, 28) for _ in range(3)]
    results = list(embed_batches(batches, embedding, device, Distorter(embedding, generator), progress=False))
    assert len(results) == 3 and seen == {device}
    for r in results:
        assert {t.device for t in (r.x, r.stored, r.emb_x, r.emb_stored)} == {device}
        assert r.emb_x.shape == (4, 8) and r.stored.shape == (4, 1, 28, 28)
    assert all(not p.requires_grad for p in embedding.parameters()) and not generator.training


def test_face_detection_rates_respect_each_detectors_limit(photos) -> None:
    from distortion.faces.alignment import DlibAligner, read_rgb
    from distortion.imaging.image_io import chips_to_tensor

    aligner = DlibAligner()
    faces = chips_to_tensor(torch.stack([torch.from_numpy(aligner(read_rgb(p)[0]).chip) for p in photos]).numpy())
    noise = torch.rand_like(faces)
    rates = FaceDetectionRates({"dlib_hog": 0, "mtcnn": 2}, seen=["mtcnn"])
    for _ in range(2):
        rates.update("original", faces)
        rates.update("distorted", noise)
    result = rates.rates()
    assert result["original/dlib_hog"] == 1.0 and result["distorted/dlib_hog"] == 0.0
    assert result["images/dlib_hog"] == 2 * len(photos) and result["images/mtcnn"] == 2
    assert result["seen_in_training/original/mtcnn"] == 1.0 and "original/mtcnn" not in result


def test_face_detectors_settings_give_each_detector_its_limit() -> None:
    counter = FaceDetectors(images=300, cnn_images=20).counter()
    assert counter.limits == {"dlib_hog": 300, "dlib_cnn": 20, "mtcnn": 300}
    assert FaceDetectors(names=("mtcnn",), seen=("mtcnn",)).counter().seen == {"mtcnn"}
    assert FaceDetectors(names=()).counter().detectors == {}


def test_timer_reports_the_device_and_throughput() -> None:
    section = Timer(torch.device("cpu")).section(images=10)
    assert section["device"] == "cpu" and section["images"] == 10 and section["images_per_s"] > 0
