"""``distortion align``: write aligned face chips of a folder (default: LFW) to a cache, once."""

from __future__ import annotations

from pathlib import Path

from distortion.faces.chip_cache import build_chip_cache
from distortion.paths import default_cache_dir, lfw_root

__all__ = ["align"]


def align(
    data: str | None = None,
    backbone: str = "dlib",
    out: str | None = None,
    workers: int | None = None,
    chunk_size: int = 128,
    limit: int | None = None,
) -> dict:
    """Align every photo under ``data`` into a chip cache; a killed run resumes from its finished chunks.

    Args:
        data: an image folder or an LFW root; default ``$DISTORTION_DATA/lfw``.
        backbone: whose alignment: ``dlib`` (150 px, dlib's detector and landmarks) or
            ``facenet`` (160 px, MTCNN).
        out: the cache folder; default ``$DISTORTION_CACHE/lfw_<backbone>`` (``./cache``).
        workers: processes (default: every core).
        chunk_size: files per chunk, the unit of resumption after a killed run.
        limit: only the first ``limit`` files.
    """
    root = Path(data) if data else lfw_root()
    cache = build_chip_cache(root, out or default_cache_dir(backbone), backbone, workers, chunk_size, limit)
    meta = cache.meta
    print(f"{cache.root}: {meta['chips']} chips of {meta['files']} files, by method {meta['methods']}")
    for row in cache.index:
        if row["row"] < 0:
            print(f"  skipped {row['path']}: {row['note']}")
    return meta
