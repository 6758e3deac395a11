"""A cache of aligned face chips: built once (``distortion align``), read by every LFW run.

Layout of a cache folder:

- ``chips.npy``: ``(N, S, S, 3)`` uint8 RGB chips, opened memory-mapped;
- ``index.csv``: one row per input file: ``row`` (into ``chips.npy``, -1 when skipped), ``path``,
  ``name`` (the person, i.e. the parent folder), ``number`` (``NAME_0003.jpg`` -> 3), ``method``
  (how the face was found: ``hog``, ``cnn``, ``mtcnn``, ``centre``, or ``skipped``), ``box`` and
  ``note`` (a conversion or the reason a file was skipped);
- ``meta.json``: backbone, chip size, counts per method.

Work is split into chunks written to ``parts/`` as they finish, so a killed run resumes where it
stopped; chunks are aligned by a pool of processes (default: every core).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from torch import Tensor
from tqdm import tqdm

from distortion.faces.alignment import ALIGNERS, ImageReadError, align_photo
from distortion.imaging.image_io import chips_to_tensor

__all__ = ["ChipCache", "build_chip_cache", "image_folder", "list_images", "person_and_number"]

INDEX_FIELDS = ("row", "path", "name", "number", "method", "box", "note")
_NUMBER = re.compile(r"_(\d+)$")


def image_folder(data: str | Path) -> Path:
    """The folder of photos: ``data`` itself, or ``data/lfw-deepfunneled`` for an LFW root."""
    data = Path(data)
    folder = data / "lfw-deepfunneled" if (data / "lfw-deepfunneled").is_dir() else data
    if not folder.exists():
        raise FileNotFoundError(f"image folder not found: {folder}")
    return folder


def list_images(data: str | Path) -> list[Path]:
    """Every file under :func:`image_folder` (or the file itself), sorted; hidden and .txt files excluded."""
    folder = image_folder(data)
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix != ".txt")


def person_and_number(path: Path) -> tuple[str, int]:
    """LFW naming: ``NAME/NAME_0003.jpg`` -> ``("NAME", 3)``; other files -> ``(parent, 0)``."""
    match = _NUMBER.search(path.stem)
    return path.parent.name, int(match.group(1)) if match else 0


@dataclass
class ChipCache:
    """A built cache: memory-mapped chips, the index rows and the metadata."""

    root: Path
    chips: np.ndarray
    index: list[dict]
    meta: dict

    @classmethod
    def load(cls, root: str | Path) -> ChipCache:
        root = Path(root)
        if not (root / "meta.json").is_file():
            raise FileNotFoundError(f"no finished chip cache in {root}: build it with `distortion align --out {root}`")
        with open(root / "index.csv", newline="") as f:
            index = [dict(row, row=int(row["row"]), number=int(row["number"])) for row in csv.DictReader(f)]
        meta = json.loads((root / "meta.json").read_text())
        return cls(root, np.load(root / "chips.npy", mmap_mode="r"), index, meta)

    def rows(self) -> dict[tuple[str, int], int]:
        """``(name, number) -> row`` for every aligned image."""
        return {(r["name"], r["number"]): r["row"] for r in self.index if r["row"] >= 0}

    def batches(self, rows: Sequence[int], batch_size: int) -> Iterator[Tensor]:
        """The chips of ``rows``, in that order, as float batches ``(B, 3, S, S)`` in ``[0, 1]``."""
        for start in range(0, len(rows), batch_size):
            yield chips_to_tensor(self.chips[np.asarray(rows[start : start + batch_size])])


def _plan_id(files: list[Path], folder: Path, backbone: str, chunk_size: int) -> str:
    """Identifies the work (which files, relative to their folder, and how) so a resume can trust its parts."""
    digest = hashlib.sha256(f"{backbone}:{chunk_size}".encode())
    for path in files:
        digest.update(str(path.relative_to(folder) if folder.is_dir() else path.name).encode() + b"\0")
    return digest.hexdigest()[:16]


_ALIGNER = None


def _init_worker(backbone: str, single_thread: bool = True) -> None:
    """Create this process's aligner; pool workers use one thread each (the pool spreads the cores)."""
    global _ALIGNER
    if single_thread:
        import torch

        torch.set_num_threads(1)
    _ALIGNER = ALIGNERS[backbone]()


def _align_chunk(task: tuple[int, list[str]]) -> tuple[int, np.ndarray, list[dict]]:
    """Align one chunk of files; a file that fails is recorded as skipped, never raised."""
    part, paths = task
    chips, rows = [], []
    for path in map(Path, paths):
        name, number = person_and_number(path)
        row = dict(path=str(path), name=name, number=number, method="skipped", box="", note="")
        try:
            face = align_photo(path, _ALIGNER)
            row.update(method=face.method, box=" ".join(map(str, face.box)), row=len(chips), note=face.note)
            chips.append(face.chip)
        except ImageReadError as error:
            row.update(note=str(error), row=-1)
        rows.append(row)
    size = _ALIGNER.size
    return part, np.stack(chips) if chips else np.zeros((0, size, size, 3), np.uint8), rows


def build_chip_cache(
    data: str | Path,
    out: str | Path,
    backbone: str = "dlib",
    workers: int | None = None,
    chunk_size: int = 128,
    limit: int | None = None,
    progress: bool = True,
) -> ChipCache:
    """Align every image under ``data`` into a cache at ``out`` (resuming a killed build).

    Args:
        data: an image folder, or an LFW root holding ``lfw-deepfunneled``.
        out: the cache folder.
        backbone: whose alignment: ``"dlib"`` or ``"facenet"``.
        workers: processes aligning chunks in parallel (default: every core; 1 runs inline).
        chunk_size: files per chunk, the unit of resumption.
        limit: align only the first ``limit`` files (sorted), for quick looks and tests.
    """
    if backbone not in ALIGNERS:
        raise ValueError(f"unknown backbone {backbone!r}; known: {sorted(ALIGNERS)}")
    out = Path(out)
    files = list_images(data)[:limit]
    if not files:
        raise FileNotFoundError(f"no files under {data}")
    plan = _plan_id(files, image_folder(data), backbone, chunk_size)
    if (out / "meta.json").is_file():
        cache = ChipCache.load(out)
        if cache.meta.get("plan") == plan:
            return cache
        raise FileExistsError(f"{out} holds a cache of other files or settings; choose another --out or delete it")
    parts_dir = out / "parts" / plan
    parts_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(i, [str(p) for p in files[s : s + chunk_size]]) for i, s in enumerate(range(0, len(files), chunk_size))]
    todo = [t for t in tasks if not (parts_dir / f"{t[0]:05d}.npz").is_file()]
    bar = tqdm(
        total=len(files),
        initial=len(files) - sum(len(t[1]) for t in todo),
        desc=f"align ({backbone})",
        unit="img",
        disable=not progress,
    )
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        _init_worker(backbone, single_thread=False)
        results = map(_align_chunk, todo)
    else:
        pool = get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(backbone,))
        results = pool.imap_unordered(_align_chunk, todo)
    try:
        for part, chips, rows in results:
            tmp = parts_dir / f"{part:05d}.tmp.npz"
            np.savez(tmp, chips=chips, rows=json.dumps(rows))
            tmp.replace(parts_dir / f"{part:05d}.npz")
            bar.update(len(rows))
    finally:
        bar.close()
        if workers != 1:
            pool.terminate()
    return _assemble(out, parts_dir, len(tasks), backbone, plan)


def _assemble(out: Path, parts_dir: Path, n_parts: int, backbone: str, plan: str) -> ChipCache:
    """Join the finished chunks into ``chips.npy`` + ``index.csv``, then write ``meta.json`` last."""
    parts = [np.load(parts_dir / f"{i:05d}.npz") for i in range(n_parts)]
    total = sum(len(p["chips"]) for p in parts)
    size = ALIGNERS[backbone].size
    chips = np.lib.format.open_memmap(out / "chips.npy", mode="w+", dtype=np.uint8, shape=(total, size, size, 3))
    index, offset = [], 0
    for part in parts:
        rows = json.loads(str(part["rows"]))
        chips[offset : offset + len(part["chips"])] = part["chips"]
        for row in rows:
            index.append(dict(row, row=row["row"] + offset if row["row"] >= 0 else -1))
        offset += len(part["chips"])
    chips.flush()
    with open(out / "index.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_FIELDS)
        writer.writeheader()
        writer.writerows(index)
    methods = Counter(row["method"] for row in index)
    meta = dict(backbone=backbone, size=size, files=len(index), chips=total, methods=dict(methods), plan=plan)
    meta["converted"] = sum(1 for row in index if row["note"].startswith("converted"))
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return ChipCache.load(out)
