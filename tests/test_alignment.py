"""Alignment and the chip cache on real LFW photos and on broken files made for the test."""

from __future__ import annotations

import numpy as np
import pytest

from distortion.faces.alignment import DlibAligner, ImageReadError, MTCNNAligner, centre_box, read_rgb
from tests.lfw_fixtures import broken_files


@pytest.fixture(scope="module")
def dlib_aligner() -> DlibAligner:
    return DlibAligner()


def test_read_rgb_reports_why_a_file_cannot_be_used(tmp_path) -> None:
    expected = broken_files(tmp_path)
    for name in ("truncated_0001.jpg", "notes_0001.jpg", "tiny_0001.png"):
        with pytest.raises(ImageReadError, match=expected[name]):
            read_rgb(tmp_path / name)
    image, note = read_rgb(tmp_path / "grey_0001.png")
    assert image.shape == (250, 250, 3) and image.dtype == np.uint8 and note == "converted from L"


def test_dlib_alignment_finds_lfw_faces_and_falls_back_to_the_centre(photos, dlib_aligner) -> None:
    faces = [dlib_aligner(read_rgb(p)[0]) for p in photos]
    assert all(f.method == "hog" and f.chip.shape == (150, 150, 3) for f in faces)
    blank = dlib_aligner(np.full((250, 250, 3), 128, np.uint8))
    assert blank.method == "centre" and blank.box == centre_box(250, 250)


def test_several_faces_pick_the_one_nearest_the_centre(photos, dlib_aligner) -> None:
    face = read_rgb(photos[0])[0][40:210, 40:210]  # 170 px crops around two different faces
    other = read_rgb(photos[2])[0][40:210, 40:210]
    canvas = np.zeros((400, 700, 3), np.uint8)
    canvas[115:285, 265:435] = face  # centred
    canvas[0:170, 0:170] = other  # corner
    method, box = dlib_aligner.detect(canvas)
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    assert method == "hog" and 265 < centre_x < 435 and 115 < centre_y < 285


def test_mtcnn_alignment_gives_160px_chips(photos) -> None:
    face = MTCNNAligner()(read_rgb(photos[0])[0])
    assert face.method == "mtcnn" and face.chip.shape == (160, 160, 3) and face.chip.dtype == np.uint8
    assert face.chip.std() > 20  # a photo, not a blank crop


def test_fast_dlib_alignment_cuts_nearly_the_same_chip(photos) -> None:
    import numpy as np

    from distortion.faces.alignment import DlibAligner, read_rgb

    plain, fast = DlibAligner(), DlibAligner(fast=True)
    for path in photos[:4]:
        image, _ = read_rgb(path)
        a, b = plain(image), fast(image)
        assert a.method == b.method == "hog"
        assert np.abs(a.chip.astype(int) - b.chip.astype(int)).mean() < 8
