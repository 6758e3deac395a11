"""Where datasets live: a configured path, else the ``DISTORTION_DATA`` environment variable."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "DISTORTION_DATA"


def resolve_data_root(data_dir: str | None, required: str) -> Path:
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
