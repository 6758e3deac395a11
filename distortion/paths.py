"""Where data and caches live: a configured path, else an environment variable, else a default."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "DISTORTION_DATA"
CACHE_ENV = "DISTORTION_CACHE"


def resolve_data_root(data_dir: str | Path | None, required: str) -> Path:
    """Return the data root, checking that ``root / required`` exists.

    Raises:
        FileNotFoundError: naming the path that was looked for and how to point elsewhere.
    """
    root = data_dir or os.environ.get(DATA_ENV)
    if not root:
        raise FileNotFoundError(f"no data root: pass data_dir in the config or set {DATA_ENV}")
    path = Path(root).expanduser()
    if not (path / required).exists():
        raise FileNotFoundError(
            f"{path / required} not found: the data root {str(path)!r} (from data_dir or {DATA_ENV}) "
            f"must contain {required}"
        )
    return path


def lfw_root(data: str | Path | None = None) -> Path:
    """The LFW folder: ``data`` itself when given, else ``$DISTORTION_DATA/lfw`` (checked to hold ``pairs.txt``)."""
    return Path(data) if data else resolve_data_root(None, "lfw/pairs.txt") / "lfw"


def default_cache_dir(aligner: str) -> Path:
    """``$DISTORTION_CACHE/lfw_<aligner>``, default ``./cache/lfw_<aligner>``."""
    return Path(os.environ.get(CACHE_ENV, "cache")) / f"lfw_{aligner}"


def default_out(ckpt: str | None, embedding: str | None, folder: str) -> Path:
    """Where a command's report goes by default: ``<run folder of the checkpoint>/<folder>``, or
    ``runs/<F>_refined/<folder>`` for F alone."""
    if ckpt is not None:
        return Path(ckpt).resolve().parent.parent / folder
    return Path("runs") / f"{Path(str(embedding)).stem}_refined" / folder
