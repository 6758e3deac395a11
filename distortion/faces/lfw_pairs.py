"""LFW's pair lists: View 1 (``pairsDevTrain.txt``, ``pairsDevTest.txt``) and View 2 (``pairs.txt``).

A list starts with its header (``10 300``: folds and matched pairs per fold; View 1: ``500``),
then per fold the matched pairs ``name i j`` followed by the mismatched pairs ``name1 i name2 j``.
Image ``i`` of ``NAME`` is ``lfw-deepfunneled/NAME/NAME_{i:04d}.jpg``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LFWPair", "lfw_image_path", "read_pairs", "training_images"]

VIEW_FILES = {"dev_train": "pairsDevTrain.txt", "dev_test": "pairsDevTest.txt", "view2": "pairs.txt"}


@dataclass(frozen=True)
class LFWPair:
    """Two images ``(name, number)`` and whether they show the same person."""

    name1: str
    number1: int
    name2: str
    number2: int

    @property
    def same(self) -> bool:
        return self.name1 == self.name2

    @property
    def images(self) -> tuple[tuple[str, int], tuple[str, int]]:
        return (self.name1, self.number1), (self.name2, self.number2)


def read_pairs(path: str | Path) -> list[list[LFWPair]]:
    """Pairs per fold (View 1 lists have one fold), checking the header's counts.

    Raises:
        FileNotFoundError: the list is missing.
        ValueError: a line or a count does not follow the format, naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LFW pair list not found: {path}")
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    header = [int(v) for v in lines[0]]
    folds, per_fold = (1, header[0]) if len(header) == 1 else header
    body = lines[1:]
    if len(body) != folds * 2 * per_fold:
        raise ValueError(f"{path}: header promises {folds} x 2 x {per_fold} pairs, found {len(body)} lines")
    result = []
    for f in range(folds):
        fold = []
        for k, fields in enumerate(body[f * 2 * per_fold : (f + 1) * 2 * per_fold]):
            try:
                if k < per_fold and len(fields) == 3:
                    fold.append(LFWPair(fields[0], int(fields[1]), fields[0], int(fields[2])))
                elif k >= per_fold and len(fields) == 4:
                    fold.append(LFWPair(fields[0], int(fields[1]), fields[2], int(fields[3])))
                else:
                    raise ValueError
            except ValueError:
                line = 2 + f * 2 * per_fold + k
                raise ValueError(
                    f"{path}, line {line}: not a {'matched' if k < per_fold else 'mismatched'} pair: "
                    f"{' '.join(fields)!r}"
                ) from None
        result.append(fold)
    return result


def lfw_image_path(root: str | Path, name: str, number: int) -> Path:
    """``root/lfw-deepfunneled/NAME/NAME_{number:04d}.jpg``."""
    return Path(root) / "lfw-deepfunneled" / name / f"{name}_{number:04d}.jpg"


def training_images(images: Iterable[tuple[str, int]], root: str | Path) -> list[tuple[str, int]]:
    """The images ``(name, number)`` of the people who appear in none of View 1's DevTest pairs, sorted: LFW's
    training people, on whom G trains, the keyed transform is fitted and thresholds are calibrated, so that
    DevTest scores people none of them saw."""
    dev_test = read_pairs(Path(root) / VIEW_FILES["dev_test"])
    held_out = {name for fold in dev_test for pair in fold for name in (pair.name1, pair.name2)}
    return sorted(key for key in images if key[0] not in held_out)
