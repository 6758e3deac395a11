"""The chip cache on real LFW photos and on broken files made for the test."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from distortion.faces.chip_cache import ChipCache, build_chip_cache, person_and_number
from tests.lfw_fixtures import broken_files


def test_person_and_number_follow_lfw_naming(tmp_path) -> None:
    assert person_and_number(tmp_path / "Ann_Lee" / "Ann_Lee_0003.jpg") == ("Ann_Lee", 3)
    assert person_and_number(tmp_path / "misc" / "holiday.jpg") == ("misc", 0)


def test_cache_records_every_file_and_resumes_after_a_kill(tmp_path, photos) -> None:
    folder = tmp_path / "photos"
    for p in photos:
        (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, folder / p.parent.name / p.name)
    expected = broken_files(folder / "odd")
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
