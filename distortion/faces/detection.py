"""Face detectors as stand-ins for a person: does a distorted image still look like a face?

- ``dlib_hog``: dlib's frontal face detector (HOG + linear SVM), upsampling the image once;
- ``dlib_cnn``: dlib's CNN detector (``mmod_human_face_detector``), no upsampling (slow: ~0.1 s
  per 150 px chip on one core);
- ``mtcnn``: facenet-pytorch's MTCNN. It is differentiable, so a G may be trained against it;
  report it as "seen in training" then, and judge G only by the detectors it never saw.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from torch import Tensor

from distortion.backbones.dlib_resnet import dlib_model_path
from distortion.imaging.image_io import tensor_to_chips

__all__ = ["DETECTORS", "FaceDetectionRates", "FaceDetectors", "make_detector"]

Detector = Callable[[np.ndarray], np.ndarray]


def _dlib_hog() -> Detector:
    import dlib

    hog = dlib.get_frontal_face_detector()
    return lambda images: np.array([len(hog(np.ascontiguousarray(im), 1)) > 0 for im in images])


def _dlib_cnn() -> Detector:
    import dlib

    cnn = dlib.cnn_face_detection_model_v1(str(dlib_model_path("mmod_human_face_detector.dat")))
    return lambda images: np.array([len(cnn(np.ascontiguousarray(im), 0)) > 0 for im in images])


def _mtcnn() -> Detector:
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True)

    def detect(images: np.ndarray) -> np.ndarray:
        boxes, _ = mtcnn.detect([Image.fromarray(np.ascontiguousarray(im)) for im in images])
        return np.array([b is not None and len(b) > 0 for b in boxes])

    return detect


DETECTORS: dict[str, Callable[[], Detector]] = {"dlib_hog": _dlib_hog, "dlib_cnn": _dlib_cnn, "mtcnn": _mtcnn}


def make_detector(name: str) -> Detector:
    """A function ``(N, H, W, 3) uint8 -> (N,) bool``: whether each image contains a face."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; known: {sorted(DETECTORS)}")
    return DETECTORS[name]()


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
