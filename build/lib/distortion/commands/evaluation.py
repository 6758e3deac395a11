"""The evaluation core of every command: distort and embed images on the chosen device, find faces in
them, and say how long it took.

``distortion evaluate``, ``privacy``, ``distort`` and ``evaluate-backbone`` all run their networks
through :func:`embed_batches` (G or a carrier, refinement and storage through a
:class:`~distortion.deployment.distorter.Distorter`; F on the originals and on what is stored), on a GPU when
one is present, and count faces with :class:`FaceDetectionRates`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from distortion.deployment.distorter import Distorter
from distortion.deployment.enrolment import Enrolment
from distortion.deployment.keyed_model import KeyedModel
from distortion.faces.detection import DETECTORS, make_detector
from distortion.imaging.image_io import tensor_to_chips
from distortion.modules.embedding import load_embedding
from distortion.modules.generator import load_generator_module

__all__ = [
    "EmbeddedBatch",
    "FaceDetectionRates",
    "FaceDetectors",
    "Timer",
    "default_out",
    "embed_batches",
    "load_distorter",
    "place",
    "resolve_device",
]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: the first GPU when torch sees one, else the CPU; a named device is checked to exist."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but torch sees no GPU here; use auto or cpu")
    return resolved


def place(device: torch.device, *models: nn.Module | None) -> None:
    """Move every given network to ``device`` in eval mode, without gradients (``None`` entries are skipped)."""
    for model in models:
        if model is not None:
            model.to(device).eval().requires_grad_(False)


@dataclass
class EmbeddedBatch:
    """One batch through the pipeline, on the device: originals ``x``, what is ``stored`` of them
    (``None`` without a distorter), and F of both."""

    x: Tensor
    stored: Tensor | None
    emb_x: Tensor
    emb_stored: Tensor | None


def embed_batches(
    batches: Iterable[Tensor],
    embedding: nn.Module,
    device: torch.device,
    distorter: Distorter | None = None,
    desc: str = "embed",
    progress: bool = True,
) -> Iterator[EmbeddedBatch]:
    """For each batch of originals ``(B, C, H, W)`` in ``[0, 1]`` (on any device): F(x), and with a
    ``distorter`` the stored image and F of it, all on ``device`` (float32 embeddings)."""
    for x in tqdm(batches, desc=desc, unit="batch", disable=not progress):
        x = x.to(device, non_blocking=True).float()
        with torch.no_grad():
            emb_x = embedding(x).float()
        if distorter is None:
            yield EmbeddedBatch(x, None, emb_x, None)
            continue
        stored = distorter(x, target=emb_x)
        with torch.no_grad():
            emb_stored = embedding(stored).float()
        yield EmbeddedBatch(x, stored, emb_x, emb_stored)


def default_out(ckpt: str | None, embedding: str | None, folder: str) -> Path:
    """``<run folder of the checkpoint>/<folder>``, or ``runs/<F>_refined/<folder>`` for F alone."""
    if ckpt is not None:
        return Path(ckpt).resolve().parent.parent / folder
    return Path("runs") / f"{Path(str(embedding)).stem}_refined" / folder


def load_distorter(
    ckpt: str | None,
    embedding: str | None,
    device: torch.device,
    enrolment: Enrolment = Enrolment(),
    keyed: str | None = None,
) -> Distorter:
    """The :class:`~distortion.deployment.distorter.Distorter` of a ``distortion fit`` checkpoint (its G and F), or
    of F alone (``embedding``: a backbone name or an EmbeddingModule checkpoint), refining from noise; on
    ``device``. Exactly one of ``ckpt`` and ``embedding`` is given. A keyed checkpoint (a keyed carrier) or
    ``keyed`` (a keyed model file, :mod:`distortion.deployment.keyed_model`) makes the store keyed, with the key
    of ``enrolment.key`` (or ``$DISTORTION_KEY_FILE``)."""
    if (ckpt is None) == (embedding is None):
        raise ValueError("give exactly one of ckpt (a trained G) or embedding (F alone, refined from noise)")
    transform = None
    if ckpt is not None:
        module = load_generator_module(ckpt)
        generator, f, transform = module.generator, module.embedding, module.template_transform
    else:
        generator, f = None, load_embedding(embedding)
    place(device, generator, f)
    if keyed is not None:
        transform = KeyedModel.load(keyed).transform
    return Distorter(f, generator, enrolment, transform=transform.to(device) if transform is not None else None)


class FaceDetectionRates:
    """The share of images in which each face detector finds a face, per kind of image (``original``,
    ``distorted``, ``reconstructed``, ...), each detector on at most its own number of images.

    Args:
        limits: detector name (a key of :data:`~distortion.faces.detection.DETECTORS`) -> how many images
            of each kind it looks at (0 = all).
        seen: detectors that were part of G's loss: reported under ``seen_in_training/``, never as
            independent judges.
    """

    def __init__(self, limits: dict[str, int], seen: Sequence[str] = ()) -> None:
        self.detectors = {name: make_detector(name) for name in limits}
        self.limits, self.seen = limits, set(seen)
        self.found: dict[str, list[bool]] = defaultdict(list)

    def update(self, kind: str, images: Tensor) -> None:
        """Run the detectors on a batch ``(B, 3, H, W)`` in ``[0, 1]`` of ``kind`` until their limits."""
        chips = None
        for name, detect in self.detectors.items():
            key = f"{kind}/{name}"
            room = max(0, self.limits[name] - len(self.found[key])) if self.limits[name] else len(images)
            if room:
                chips = tensor_to_chips(images) if chips is None else chips
                self.found[key] += list(detect(chips[:room]))

    def rates(self) -> dict[str, float | int]:
        """``<kind>/<detector>`` -> share of images with a face, and ``images/<detector>`` -> how many."""
        result: dict[str, float | int] = {}
        for key, found in self.found.items():
            prefix = "seen_in_training/" if key.split("/")[1] in self.seen else ""
            result[prefix + key] = float(np.mean(found))
        for name in self.detectors:
            result[f"images/{name}"] = max((len(v) for k, v in self.found.items() if k.endswith(f"/{name}")), default=0)
        return result


@dataclass(frozen=True)
class FaceDetectors:
    """Which face detectors a command runs, and on how many images of each kind (``--faces.*`` flags).

    Args:
        names: the detectors (default: dlib_hog, dlib_cnn, mtcnn; ``[]`` for none).
        images: run them on the first N images of each kind (0 = all).
        cnn_images: of those, dlib's CNN detector (0.07 s an image on a CPU core) on the first N only.
        seen: detectors used in G's loss; reported apart, never in the verdict.
    """

    names: tuple[str, ...] | None = None
    images: int = 2000
    cnn_images: int = 500
    seen: tuple[str, ...] = ()

    def counter(self) -> FaceDetectionRates:
        """A fresh :class:`FaceDetectionRates` with these settings."""
        names = DETECTORS if self.names is None else self.names
        return FaceDetectionRates({n: self.cnn_images if n == "dlib_cnn" else self.images for n in names}, self.seen)


class Timer:
    """Wall time and throughput of a command's main loop on its device, for its report."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        self.start = time.perf_counter()

    def section(self, images: int) -> dict[str, float | int | str]:
        """``{device, seconds, images, images_per_s[, cuda_peak_memory_mib]}`` since the timer started."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - self.start
        section: dict[str, float | int | str] = {"device": str(self.device), "seconds": seconds, "images": images,
                                                 "images_per_s": images / max(seconds, 1e-9)}  # fmt: skip
        if self.device.type == "cuda":
            section["cuda_peak_memory_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            section["gpu"] = torch.cuda.get_device_name(self.device)
        return section
