"""The pixel nearest-neighbour reader on real MNIST digits: it reads digits, faint digits once standardised,
not noise; it agrees with a brute-force search."""

from __future__ import annotations

import torch
from torchvision.datasets import MNIST

from distortion.metrics.readers import nearest_neighbour_accuracy, relabelled_accuracy, standardise
from tests.conftest import DATA


def _digits():
    train, test = MNIST(str(DATA), train=True), MNIST(str(DATA), train=False)
    reference = train.data[:5000].unsqueeze(1).float() / 255
    return reference, train.targets[:5000], test.data[:500].unsqueeze(1).float() / 255, test.targets[:500]


def test_reads_digits_and_faint_digits_only_when_standardised_and_not_noise() -> None:
    reference, ref_labels, images, labels = _digits()
    assert nearest_neighbour_accuracy(reference, ref_labels, images, labels) > 0.85
    faint = 0.4 + 0.05 * images  # a washed-out copy: every pixel near 0.4
    assert nearest_neighbour_accuracy(reference, ref_labels, faint, labels) < 0.3
    assert nearest_neighbour_accuracy(standardise(reference), ref_labels, standardise(faint), labels) > 0.85
    noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(0))
    assert nearest_neighbour_accuracy(reference, ref_labels, noise, labels) < 0.2


def test_agrees_with_brute_force_search() -> None:
    reference, ref_labels, images, labels = _digits()
    nearest = torch.cdist(images.flatten(1).double(), reference.flatten(1).double()).argmin(1)
    expected = float((ref_labels[nearest] == labels).double().mean())
    assert abs(nearest_neighbour_accuracy(reference, ref_labels, images, labels) - expected) < 1e-9


def test_relabelling_undoes_a_consistent_permutation_and_not_noise() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (2000,), generator=g)
    permuted = (labels * 3 + 1) % 10  # a reader that reads every digit as another one, consistently
    assert float((permuted == labels).double().mean()) == 0.0
    assert relabelled_accuracy(permuted, labels, 100) == 1.0
    guesses = torch.randint(0, 10, (2000,), generator=g)
    assert relabelled_accuracy(guesses, labels, 1000) < 0.15
