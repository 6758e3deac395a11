"""Small real LFW slices for tests: a handful of people, and a tiny LFW root with its own pair lists."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import DATA

LFW = DATA / "lfw"


def people_with_images(count: int, min_images: int = 2, per_person: int = 2) -> dict[str, list[Path]]:
    """The first ``count`` people (alphabetically) with at least ``min_images`` images."""
    chosen = {}
    for folder in sorted((LFW / "lfw-deepfunneled").iterdir()):
        images = sorted(folder.glob("*.jpg"))
        if len(images) >= min_images:
            chosen[folder.name] = images[:per_person]
        if len(chosen) == count:
            break
    return chosen


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
