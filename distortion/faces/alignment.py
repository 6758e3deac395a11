"""Face alignment: find the face in a photo and cut the chip each backbone expects.

- ``dlib``: dlib's frontal (HOG) detector, then its CNN detector (``mmod_human_face_detector``)
  where the HOG finds nothing, then a centred box; the 5-point shape predictor and
  ``get_face_chip`` at 150 px with padding 0.25, as dlib's own face recognition does.
- ``facenet``: facenet-pytorch's MTCNN, a 160 px crop of the detected box.

Several faces: the one nearest the image centre. No face: the centred box (placed where the HOG
detector puts faces on LFW's deep-funneled images), recorded as ``method="centre"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from distortion.backbones.dlib_resnet import dlib_model_path

__all__ = [
    "ALIGNERS",
    "AlignedFace",
    "DlibAligner",
    "ImageReadError",
    "ImageTooLargeError",
    "MTCNNAligner",
    "NoFaceError",
    "align_photo",
    "centre_box",
    "make_aligner",
    "read_rgb",
]

MIN_IMAGE_SIDE = 32
# Median HOG face box on 300 LFW deep-funneled images, relative to the image: left, top, right, bottom.
_CENTRE_BOX = (0.268, 0.32, 0.70, 0.748)


class ImageReadError(ValueError):
    """A file that cannot be used as a photo; the message is the reason recorded in the index."""


class ImageTooLargeError(ImageReadError):
    """An image of more pixels than the reader allows (a decompression bomb, or a photo far beyond need)."""


class NoFaceError(ValueError):
    """A photo in which no face was found."""


def read_rgb(path: str | Path | BinaryIO, max_pixels: int | None = None) -> tuple[np.ndarray, str]:
    """Read an image (a path or an open file) as ``(H, W, 3)`` uint8 RGB and a note on any conversion ('' when
    none). ``max_pixels`` refuses larger images from their header, before anything is decoded (a decompression
    bomb is a small file that decodes to a huge image).

    Raises:
        ImageReadError: not an image, corrupt or truncated, smaller than 32 px on a side, or over ``max_pixels``.
    """
    try:
        with Image.open(path) as image:
            if max_pixels is not None and image.width * image.height > max_pixels:
                raise ImageTooLargeError(f"too large: {image.width}x{image.height} px, at most {max_pixels:,} pixels")
            image.load()
            mode = image.mode
            rgb = image.convert("RGB")
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError("not an image") from None
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"too large: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"corrupt image: {error}") from None
    if min(rgb.size) < MIN_IMAGE_SIDE:
        raise ImageReadError(f"too small: {rgb.size[0]}x{rgb.size[1]} px, need {MIN_IMAGE_SIDE}")
    return np.asarray(rgb), ("" if mode == "RGB" else f"converted from {mode}")


def centre_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The fallback face box ``(left, top, right, bottom)`` for an image with no detected face."""
    left, top, right, bottom = _CENTRE_BOX
    return round(left * width), round(top * height), round(right * width), round(bottom * height)


def _nearest_centre(boxes: list[tuple[int, int, int, int]], height: int, width: int) -> tuple[int, int, int, int]:
    def distance(box: tuple[int, int, int, int]) -> float:
        return ((box[0] + box[2]) / 2 - width / 2) ** 2 + ((box[1] + box[3]) / 2 - height / 2) ** 2

    return min(boxes, key=distance)


@dataclass
class AlignedFace:
    """An aligned chip ``(S, S, 3)`` uint8, how the face was found and its box in the photo."""

    chip: np.ndarray
    method: str
    box: tuple[int, int, int, int]
    note: str = ""  # how the file was read (``converted from L``, say; :func:`read_rgb`)


class DlibAligner:
    """dlib's alignment for its face ResNet: HOG, then CNN, then centred box; 5 landmarks; chip.

    ``fast``: the HOG detector first looks at the photo as it is and upsamples it only when it finds no
    face there (1.5x the photos per second on LFW; the landmarks, not the box, place the chip).
    """

    size = 150
    padding = 0.25

    def __init__(self, upsample: int = 1, cnn_fallback: bool = True, fast: bool = False) -> None:
        import dlib

        self.dlib = dlib
        self.upsample, self.fast = upsample, fast
        self.hog = dlib.get_frontal_face_detector()
        self.cnn = (
            dlib.cnn_face_detection_model_v1(str(dlib_model_path("mmod_human_face_detector.dat")))
            if cnn_fallback
            else None
        )
        self.landmarks = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))

    def detect(self, image: np.ndarray) -> tuple[str, tuple[int, int, int, int]]:
        """``(method, box)`` of the face nearest the centre: ``hog``, ``cnn`` or ``centre``."""
        height, width = image.shape[:2]
        found = []
        for upsample in (0, self.upsample) if self.fast and self.upsample else (self.upsample,):
            found = found or [(r.left(), r.top(), r.right(), r.bottom()) for r in self.hog(image, upsample)]
        if found:
            return "hog", _nearest_centre(found, height, width)
        if self.cnn is not None:
            found = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in self.cnn(image, 1)]
            if found:
                return "cnn", _nearest_centre(found, height, width)
        return "centre", centre_box(height, width)

    def shape(self, image: np.ndarray, box: tuple[int, int, int, int]):
        """dlib's 5-point landmarks (a ``full_object_detection``) inside ``box``."""
        return self.landmarks(image, self.dlib.rectangle(*box))

    def __call__(self, image: np.ndarray) -> AlignedFace:
        method, box = self.detect(image)
        chip = self.dlib.get_face_chip(image, self.shape(image, box), size=self.size, padding=self.padding)
        return AlignedFace(np.ascontiguousarray(chip), method, box)


class MTCNNAligner:
    """facenet-pytorch's alignment for InceptionResnetV1: MTCNN box, 160 px crop (weights ship with it)."""

    size = 160

    def __init__(self, margin: int = 0) -> None:
        from facenet_pytorch import MTCNN
        from facenet_pytorch.models.utils.detect_face import extract_face

        self.mtcnn = MTCNN(image_size=self.size, margin=margin, keep_all=True, post_process=False)
        self.extract_face = extract_face
        self.margin = margin

    def __call__(self, image: np.ndarray) -> AlignedFace:
        height, width = image.shape[:2]
        boxes, _ = self.mtcnn.detect(Image.fromarray(image))
        if boxes is not None and len(boxes):
            method, box = "mtcnn", _nearest_centre([tuple(int(round(v)) for v in b) for b in boxes], height, width)
        else:
            method, box = "centre", centre_box(height, width)
        face = self.extract_face(Image.fromarray(image), box, self.size, self.margin)
        chip = face.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
        return AlignedFace(np.ascontiguousarray(chip), method, box)


ALIGNERS = {"dlib": DlibAligner, "facenet": MTCNNAligner}


def make_aligner(name: str, fast: bool = False) -> DlibAligner | MTCNNAligner:
    """The aligner of the alignment ``name`` (a backbone's ``aligner``: ``dlib``, ``facenet``); ``fast``: dlib's HOG
    first looks at the photo as it is (:class:`DlibAligner`), as the store aligns one photo at a time."""
    if name not in ALIGNERS:
        raise ValueError(f"unknown aligner {name!r}; known: {sorted(ALIGNERS)}")
    return DlibAligner(fast=fast) if name == "dlib" else ALIGNERS[name]()


def align_photo(
    path: str | Path | BinaryIO, aligner: DlibAligner | MTCNNAligner, require_face: bool = False,
    max_pixels: int | None = None,
) -> AlignedFace:  # fmt: skip
    """The one way a photo file becomes an aligned chip: read (:func:`read_rgb`), find the face, cut the chip.

    Raises:
        ImageReadError: the file is no usable photo (the reason, without the path).
        NoFaceError: ``require_face`` and no face was found (a centred crop would have been cut).
    """
    image, note = read_rgb(path, max_pixels)
    face = aligner(image)
    if require_face and face.method == "centre":
        raise NoFaceError("no face found (take a photo with the face in view)")
    face.note = note
    return face
