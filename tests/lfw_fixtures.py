"""Small real LFW slices for tests: a handful of people, and a tiny LFW root with its own pair lists."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from PIL import Image

from distortion.faces.lfw_protocol import first_people

LFW = Path(os.environ.get("DISTORTION_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "lfw"


def people_with_images(count: int, min_images: int = 2, per_person: int = 2) -> dict[str, list[Path]]:
    """The first ``count`` people (alphabetically) with at least ``min_images`` images."""
    return first_people(LFW, count, min_images, per_person)


def make_tiny_lfw(root: Path, people: int = 10) -> Path:
    """An LFW root with ``people`` real people (2 images each) and 10-fold / View 1 pair lists over them.

    Fold k holds one matched pair (person k) and one mismatched pair (person k vs person k+1).
    """
    chosen = people_with_images(people)
    for name, images in chosen.items():
        (root / "lfw-deepfunneled" / name).mkdir(parents=True, exist_ok=True)
        for image in images:
            shutil.copy(image, root / "lfw-deepfunneled" / name / image.name)
    names = list(chosen)
    lines = ["10 1"]
    for k in range(10):
        a, b = names[k % len(names)], names[(k + 1) % len(names)]
        lines += [f"{a} 1 2", f"{a} 1 {b} 2"]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    view1 = ["2", f"{names[0]} 1 2", f"{names[1]} 1 2", f"{names[0]} 1 {names[2]} 1", f"{names[1]} 2 {names[3]} 1"]
    (root / "pairsDevTrain.txt").write_text("\n".join(view1) + "\n")
    (root / "pairsDevTest.txt").write_text("\n".join(view1) + "\n")
    return root


def broken_files(folder) -> dict[str, str]:
    """Files that must be skipped or converted, with the reason expected in the index."""
    folder.mkdir(parents=True, exist_ok=True)
    good = next(iter(people_with_images(1).values()))[0]
    data = good.read_bytes()
    (folder / "truncated_0001.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes_0001.jpg").write_bytes(b"this is not a photo")
    Image.open(good).convert("L").save(folder / "grey_0001.png")
    Image.new("RGB", (20, 16)).save(folder / "tiny_0001.png")
    Image.new("RGB", (250, 250), (128, 128, 128)).save(folder / "blank_0001.png")
    return {
        "truncated_0001.jpg": "corrupt image",
        "notes_0001.jpg": "not an image",
        "tiny_0001.png": "too small: 20x16",
        "grey_0001.png": "converted from L",
        "blank_0001.png": "",
    }
