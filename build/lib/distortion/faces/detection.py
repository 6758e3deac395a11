"""Face detectors as stand-ins for a person: does a distorted image still look like a face?

- ``dlib_hog``: dlib's frontal face detector (HOG + linear SVM), upsampling the image once;
- ``dlib_cnn``: dlib's CNN detector (``mmod_human_face_detector``), no upsampling (slow: ~0.1 s
  per 150 px chip on one core);
- ``mtcnn``: facenet-pytorch's MTCNN. It is differentiable, so a G may be trained against it;
  report it as "seen in training" then, and judge G only by the detectors it never saw.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from distortion.backbones.dlib_resnet import dlib_model_path

__all__ = ["DETECTORS", "make_detector"]

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
