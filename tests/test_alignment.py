"""Alignment and the chip cache on real LFW photos and on broken files made for the test."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from distortion.alignment import DlibAligner, ImageReadError, MTCNNAligner, centre_box, read_rgb
from distortion.chip_cache import ChipCache, build_chip_cache, person_and_number
from tests.lfw_fixtures import people_with_images


@pytest.fixture(scope="module")
def photos() -> list:
    return [p for images in people_with_images(3).values() for p in images]


@pytest.fixture(scope="module")
def dlib_aligner() -> DlibAligner:
    return DlibAligner()


def _broken_files(folder) -> dict[str, str]:
    """Files that must be skipped or converted, with the reason expected in the index."""
    folder.mkdir(parents=True, exist_ok=True)
    good = next(iter(people_with_images(1).values()))[0]
    data = good.read_bytes()
    (folder / "truncated_0001.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes_0001.jpg").write_bytes(b"this is not a photo")
    Image.open(good).convert("L").save(folder / "grey_0001.png")
    Image.new("RGB", (20, 16)).save(folder / "tiny_0001.png")
    Image.new("RGB", (250, 250), (128, 128, 128)).save(folder / "blank_0001.png")
    return {"truncated_0001.jpg": "corrupt image", "notes_0001.jpg": "not an image",
            "tiny_0001.png": "too small: 20x16", "grey_0001.png": "converted from L", "blank_0001.png": ""}


def test_read_rgb_reports_why_a_file_cannot_be_used(tmp_path) -> None:
    expected = _broken_files(tmp_path)
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


def test_person_and_number_follow_lfw_naming(tmp_path) -> None:
    assert person_and_number(tmp_path / "Ann_Lee" / "Ann_Lee_0003.jpg") == ("Ann_Lee", 3)
    assert person_and_number(tmp_path / "misc" / "holiday.jpg") == ("misc", 0)


def test_cache_records_every_file_and_resumes_after_a_kill(tmp_path, photos) -> None:
    folder = tmp_path / "photos"
    for p in photos:
        (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, folder / p.parent.name / p.name)
    expected = _broken_files(folder / "odd")
    cache = build_chip_cache(folder, tmp_path / "cache", "dlib", workers=1, chunk_size=3, progress=False)
    rows = {row["path"].split("/")[-1]: row for row in cache.index}
    assert len(rows) == len(photos) + len(expected)
    for name, note in expected.items():
        assert note in rows[name]["note"]
    skipped = {n for n, r in rows.items() if r["method"] == "skipped"}
    assert skipped == {"truncated_0001.jpg", "notes_0001.jpg", "tiny_0001.png"}
    assert rows["blank_0001.png"]["method"] == "centre"
    assert cache.chips.shape == (len(rows) - 3, 150, 150, 3)
    first = rows[photos[0].name]
    assert first["name"] == photos[0].parent.name and first["number"] == 1 and first["method"] == "hog"
    assert (tmp_path / "cache" / "meta.json").is_file() and cache.meta["methods"]["skipped"] == 3

    # simulate a kill: the finished cache files and one chunk are gone, the other chunks remain
    parts = sorted((tmp_path / "cache" / "parts").glob("*/*.npz"))
    kept = {p: p.stat().st_mtime_ns for p in parts[1:]}
    for name in ("meta.json", "chips.npy", "index.csv"):
        (tmp_path / "cache" / name).unlink()
    parts[0].unlink()
    resumed = build_chip_cache(folder, tmp_path / "cache", "dlib", workers=1, chunk_size=3, progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # finished chunks were not redone
    np.testing.assert_array_equal(resumed.chips, cache.chips)
    assert resumed.index == cache.index


def test_a_finished_cache_is_reused_and_a_different_one_refused(tmp_path, photos) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in photos[:2]:
        shutil.copy(p, folder / p.name)
    cache = build_chip_cache(folder, tmp_path / "cache", "dlib", workers=2, chunk_size=1, progress=False)
    assert len(cache.chips) == 2 and ChipCache.load(tmp_path / "cache").meta == cache.meta
    assert build_chip_cache(folder, tmp_path / "cache", "dlib", workers=1, chunk_size=1).meta == cache.meta
    with pytest.raises(FileExistsError, match="choose another --out"):
        build_chip_cache(folder, tmp_path / "cache", "dlib", workers=1, chunk_size=2)
    with pytest.raises(FileNotFoundError, match="build it with `distortion align"):
        ChipCache.load(tmp_path / "nothing")
