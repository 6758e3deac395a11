"""Readers of a kind the project never trains: what a person with a pile of labelled digits and no model reads.

A nearest-neighbour reader on pixels labels an image with the label of the closest reference image. It
never saw a carrier and shares nothing with F, P or the evaluation readers, so what it reads of carriers
is read by pixels alone (docs/keyed.md judges the keyed carriers with it). :func:`relabelled_accuracy` says
how much of the digit a reader's answers hold once a consistent relabelling (what a key does) is undone.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["nearest_neighbour_accuracy", "nearest_neighbour_labels", "relabelled_accuracy", "standardise"]


def standardise(images: Tensor) -> Tensor:
    """Each image to zero mean and unit variance over its pixels: a reader that ignores brightness and contrast."""
    flat = images.flatten(1).double()
    return (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp_min(1e-8)


def nearest_neighbour_labels(
    reference: Tensor, reference_labels: Tensor, images: Tensor, neighbours: int = 1
) -> Tensor:
    """The label each of ``images`` gets from its ``neighbours`` nearest ``reference`` images (L2 on pixels,
    scikit-learn's ``KNeighborsClassifier``, majority vote)."""
    from sklearn.neighbors import KNeighborsClassifier

    if len(reference) != len(reference_labels) or len(images) == 0:
        raise ValueError("reference images need one label each, and there must be at least one image to read")
    knn = KNeighborsClassifier(n_neighbors=neighbours, algorithm="brute")
    knn.fit(reference.flatten(1).double().cpu().numpy(), reference_labels.cpu().numpy())
    return torch.from_numpy(knn.predict(images.flatten(1).double().cpu().numpy()))


def nearest_neighbour_accuracy(
    reference: Tensor, reference_labels: Tensor, images: Tensor, labels: Tensor, neighbours: int = 1
) -> float:
    """Share of ``images`` that :func:`nearest_neighbour_labels` labels with their own label."""
    if len(images) != len(labels):
        raise ValueError("every image needs a label")
    predicted = nearest_neighbour_labels(reference, reference_labels, images, neighbours)
    return float((predicted == labels.cpu()).double().mean())


def relabelled_accuracy(predicted: Tensor, labels: Tensor, leaked: int, classes: int = 10) -> float:
    """Accuracy on images ``leaked:`` of ``predicted`` mapped through the majority true label of each predicted
    label among the first ``leaked`` (an unseen predicted label keeps its value): what a reader's answers say
    of the digit once an insider with ``leaked`` labelled images undoes a consistent relabelling (a key's)."""
    if not 0 < leaked < len(labels) or len(predicted) != len(labels):
        raise ValueError(f"need one prediction per label and 0 < leaked < {len(labels)}, got leaked={leaked}")
    counts = torch.zeros(classes, classes).index_put_(
        (predicted[:leaked], labels[:leaked]), torch.ones(leaked), accumulate=True
    )
    mapping = torch.where(counts.sum(1) > 0, counts.argmax(1), torch.arange(classes))
    return float((mapping[predicted[leaked:]] == labels[leaked:]).double().mean())
