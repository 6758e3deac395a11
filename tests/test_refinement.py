"""Refinement: a few steps on the pixels move F's embedding to the target, from G's output or from noise."""

from __future__ import annotations

import pytest
import torch
from torchvision.datasets import MNIST

from distortion.deployment.distorter import Distorter
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.refinement import noise_images, refine
from distortion.imaging.statistics import pearson
from distortion.imaging.storage import store
from distortion.models import ConvEmbedding
from distortion.objective.losses import squared_distance
from tests.conftest import DATA


@pytest.fixture(scope="module")
def setting() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    embedding = ConvEmbedding(width=8, dim=16).eval().requires_grad_(False)
    x = MNIST(str(DATA), train=False).data[:16].unsqueeze(1).float() / 255
    return embedding, x


def test_refinement_from_noise_reaches_the_embedding_of_an_unrelated_image(setting) -> None:
    embedding, x = setting
    target = embedding(x)
    start = noise_images(x.shape)
    before = squared_distance(embedding(start), target)
    refined = refine(start, embedding, target, steps=60, lr=0.05)
    after = squared_distance(embedding(refined), target)
    assert (after < 0.05 * before).all() and float(after.max()) < 0.01
    assert float(pearson(x, refined).abs().max()) < 0.2  # nothing of the digit in it
    assert refined.shape == x.shape and 0 <= float(refined.min()) and float(refined.max()) <= 1
    assert refine(start, embedding, target, steps=0) is start


@pytest.mark.slow
def test_robust_refinement_keeps_the_match_once_stored(setting) -> None:
    embedding, x = setting
    target = embedding(x)
    torch.manual_seed(1)
    start = noise_images(x.shape)
    plain = refine(start, embedding, target, steps=60, robust=False)
    robust = refine(start, embedding, target, steps=60, robust=True)
    for refined in (plain, robust):
        assert float(squared_distance(embedding(store(refined, "png")), target).mean()) < 0.02
    resized = {name: float(squared_distance(embedding(store(r, "resize0.8")), target).mean())
               for name, r in (("plain", plain), ("robust", robust))}  # fmt: skip
    assert resized["robust"] < 0.8 * resized["plain"]  # trained through the round trips, it survives them better


def test_a_distorter_without_g_starts_from_noise_and_refuses_bad_settings(setting) -> None:
    embedding, x = setting
    torch.manual_seed(2)
    stored = Distorter(embedding, None, Enrolment(refine_steps=40, storage="png"))(x)
    assert torch.equal(stored, torch.round(stored * 255) / 255)
    assert float(squared_distance(embedding(stored), embedding(x)).mean()) < 0.05
    with pytest.raises(ValueError, match="refine_steps must be >= 0"):
        Enrolment(refine_steps=-1)
    with pytest.raises(ValueError, match="unknown storage"):
        Enrolment(storage="bmp")
    with pytest.raises(ValueError, match="without a G, images start from noise"):
        Distorter(embedding, None)
